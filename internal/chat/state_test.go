package chat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"

	"superapp/internal/apperr"
	"superapp/internal/cmdlog"
	"superapp/internal/store/storetest"
)

// stream is a CHAT stream: it hands every entry to the nodes following it.
type stream struct {
	entries [][]byte
	nodes   []*node
}

func (s *stream) add(tb testing.TB, envs ...cmdlog.Envelope) []cmdlog.Outcome {
	tb.Helper()
	data, err := json.Marshal(envs)
	if err != nil {
		tb.Fatal(err)
	}
	s.entries = append(s.entries, data)
	var outs []cmdlog.Outcome
	for _, n := range s.nodes {
		n.apply(data)
		outs = outs[:0]
		for _, e := range envs {
			o, ok := n.m.Outcome(e.ID)
			if !ok {
				tb.Fatalf("no outcome for %s", e.ID)
			}
			outs = append(outs, o)
		}
	}
	return outs
}

// ok applies envs as one entry and fails unless every command succeeded.
func (s *stream) ok(tb testing.TB, envs ...cmdlog.Envelope) []cmdlog.Outcome {
	tb.Helper()
	outs := s.add(tb, envs...)
	for i, o := range outs {
		if o.Err != nil {
			tb.Fatalf("%s by %s: %v", envs[i].Kind, envs[i].Actor, o.Err)
		}
	}
	return outs
}

// refused applies env and checks that it was refused with code.
func (s *stream) refused(tb testing.TB, code string, env cmdlog.Envelope) {
	tb.Helper()
	o := s.add(tb, env)[0]
	if o.Err == nil || o.Err.Code != code {
		tb.Fatalf("%s by %s: got %+v, want %s", env.Kind, env.Actor, o.Err, code)
	}
}

var (
	users   = []string{"alice", "bob", "carol", "dave", "erin", "app:news"}
	direct  = DirectID("alice", "bob")
	group   = "g1"
	news    = OfficialID("dave", "news")
	attach1 = Attachment{ID: "a1", Name: "map.png", ContentType: "image/png", Size: 3, SHA256: "abc"}
)

func send(actor, conv string, at int, id, text string) cmdlog.Envelope {
	return cmd(kindSend, actor, at, sendCmd{ConversationID: conv, ID: id, Text: text})
}

// storyBefore is what happens before the restart: every kind of command,
// some refused, some batched in one entry.
func storyBefore(t *testing.T, s *stream) {
	s.ok(t, cmd(kindCreate, "alice", 0, createConv{ConversationID: direct, Kind: Direct, Members: []string{"bob"}}))
	s.ok(t, send("alice", direct, 1, "a-1", "hi bob"), send("bob", direct, 1, "b-1", "hi alice"), send("bob", direct, 2, "b-2", "lunch?"))
	s.ok(t, cmd(kindCreate, "alice", 3, createConv{ConversationID: group, Kind: Group, Title: "Trip", Members: []string{"bob", "carol"}}))
	s.ok(t, cmd(kindRole, "alice", 4, membersCmd{ConversationID: group, UserID: "bob", Admin: true}))
	s.ok(t, cmd(kindRename, "bob", 5, membersCmd{ConversationID: group, Title: "Trip to Jeju"}))
	s.refused(t, NotAdmin, cmd(kindRole, "bob", 5, membersCmd{ConversationID: group, UserID: "carol", Admin: true}))
	s.ok(t, cmd(kindAttach, "carol", 6, attachCmd{ConversationID: group, Attachment: attach1}))
	s.ok(t,
		cmd(kindSend, "carol", 7, sendCmd{ConversationID: group, ID: "c-1", Text: "route", AttachmentID: "a1"}),
		cmd(kindSend, "carol", 7, sendCmd{ConversationID: group, ID: "c-2", Text: "same map", AttachmentID: "a1"}),
		send("carol", group, 7, "c-3", "when do we leave?"),
		cmd(kindSend, "alice", 8, sendCmd{ConversationID: group, ID: "a-2", Text: "friday", ReplyTo: 5}))
	s.refused(t, apperr.Invalid, cmd(kindSend, "alice", 8, sendCmd{ConversationID: group, ID: "a-3", Text: "?", ReplyTo: 99}))
	s.refused(t, apperr.Invalid, cmd(kindSend, "bob", 8, sendCmd{ConversationID: group, ID: "b-3", Text: "x", AttachmentID: "a1"}))
	s.refused(t, NotMember, send("erin", group, 8, "e-1", "let me in"))
	s.refused(t, ConversationNotFound, send("erin", "nope", 8, "e-1", "anyone?"))
	s.ok(t, cmd(kindRead, "bob", 9, seqCmd{ConversationID: group, Seq: 4}), cmd(kindDelivered, "carol", 9, seqCmd{ConversationID: group, Seq: 6}))
	s.ok(t, cmd(kindAdd, "bob", 10, membersCmd{ConversationID: group, Users: []string{"dave", "carol", "dave"}}))
	s.ok(t, cmd(kindDelete, "carol", 11, seqCmd{ConversationID: group, Seq: 3}))
	s.refused(t, NotSender, cmd(kindDelete, "bob", 11, seqCmd{ConversationID: group, Seq: 6}))
	s.refused(t, MessageNotFound, cmd(kindDelete, "dave", 11, seqCmd{ConversationID: group, Seq: 6}))
	s.ok(t, cmd(kindRemove, "alice", 12, membersCmd{ConversationID: group, UserID: "alice"}))
	// The same client id again, in another command: the message as it is.
	if o := s.ok(t, send("carol", group, 13, "c-2", "same map")); !strings.Contains(string(o[0].Value), `"seq":4`) {
		t.Fatalf("resend: %s", o[0].Value)
	}
	s.ok(t, cmd(kindCreate, "app:news", 14, createConv{ConversationID: news, Kind: Official, Title: "News", Members: []string{"dave"}}))
	s.ok(t, send("app:news", news, 14, "n-1", "headline"))
	s.ok(t, cmd(kindSend, "alice", 15, sendCmd{ConversationID: direct, ID: "pay-1", Text: "for lunch",
		Payment: &PaymentCard{Type: "transfer", TransferID: "t1", To: "bob", Amount: 1200, Currency: "KRW"}}))
	if o := s.ok(t, cmd(kindCreate, "bob", 16, createConv{ConversationID: direct, Kind: Direct, Members: []string{"alice"}})); !strings.Contains(string(o[0].Value), `"existed":true`) {
		t.Fatalf("direct again: %s", o[0].Value)
	}
}

// storyAfter is what happens after the restart.
func storyAfter(t *testing.T, s *stream) {
	s.ok(t, send("dave", group, 20, "d-1", "hello all"), send("bob", group, 20, "b-4", "welcome"))
	s.ok(t, cmd(kindRead, "carol", 21, seqCmd{ConversationID: group, Seq: 9}))
	s.ok(t, cmd(kindDelete, "carol", 22, seqCmd{ConversationID: group, Seq: 4}))
	s.ok(t, cmd(kindRemove, "bob", 23, membersCmd{ConversationID: group, UserID: "dave"}))
	s.ok(t, cmd(kindAdd, "bob", 24, membersCmd{ConversationID: group, Users: []string{"erin"}}))
	s.ok(t, send("erin", group, 25, "e-2", "hi"), cmd(kindRead, "alice", 25, seqCmd{ConversationID: direct, Seq: 4}))
	s.ok(t, cmd(kindDelivered, "dave", 26, seqCmd{ConversationID: news, Seq: 1}))
}

// snapshot is every query's answer, for every user and conversation.
func snapshot(t *testing.T, n *node) string {
	t.Helper()
	var b strings.Builder
	put := func(label string, v any, err error) {
		var ae *apperr.Error
		if errors.As(err, &ae) {
			v = "error " + ae.Code
		} else if err != nil {
			t.Fatalf("%s: %v", label, err)
		}
		raw, jerr := json.Marshal(v)
		if jerr != nil {
			t.Fatal(jerr)
		}
		fmt.Fprintf(&b, "%s: %s\n", label, raw)
	}
	for _, u := range users {
		put("conversations "+u, n.st.Conversations(u), nil)
		evs, next, more := n.st.Sync(u, 0, 1000)
		put("sync "+u, []any{evs, next, more}, nil)
		// Paging yields the same feed, whole cursors at a time.
		paged := []*Event{}
		for cursor, more := uint64(0), true; more; {
			var evs []*Event
			evs, cursor, more = n.st.Sync(u, cursor, 2)
			paged = append(paged, evs...)
		}
		whole, _ := json.Marshal(evs)
		if p, _ := json.Marshal(paged); string(whole) != string(p) {
			t.Fatalf("%s: paged sync differs:\n%s\n%s", u, whole, p)
		}
	}
	for _, c := range []string{direct, group, news, "nope"} {
		put("members "+c, n.st.Members(c), nil)
		for _, u := range users {
			v, err := n.st.Conversation(c, u)
			put("conversation "+c+" "+u, v, err)
			ms, more, err := n.st.Messages(c, u, Page{Limit: 1000})
			put("messages "+c+" "+u, []any{ms, more}, err)
			ms, more, err = n.st.Messages(c, u, Page{Before: 6, Limit: 2})
			put("history "+c+" "+u, []any{ms, more}, err)
			put("member "+c+" "+u, n.st.IsMember(c, u), nil)
			a, rc, err := n.svc.Open(context.Background(), u, c, "a1")
			if rc != nil {
				data, _ := io.ReadAll(rc)
				rc.Close()
				a.Name += ":" + string(data)
			}
			put("attachment "+c+" "+u, a, err)
			peer, err := n.svc.PaymentPeer(c, u, "")
			put("payee "+c+" "+u, peer, err)
		}
	}
	return b.String()
}

func TestRestartResumesFromTheStore(t *testing.T) {
	db := storetest.Open(t)
	a := newNode(t, db)
	replayed := newNode(t, storetest.Open(t))
	s := &stream{nodes: []*node{a}}
	// The attachment's bytes, as the service would have stored them.
	for _, n := range []*node{a, replayed} {
		if err := n.svc.blobs.PutObject(context.Background(), AttachmentBucket, objectName(group, "a1"), "image/png", strings.NewReader("png")); err != nil {
			t.Fatal(err)
		}
	}
	storyBefore(t, s)
	before := snapshot(t, a)

	// A node restarted on its own disk: a fresh state and machine.
	b := newNode(t, db)
	if err := b.svc.blobs.PutObject(context.Background(), AttachmentBucket, objectName(group, "a1"), "image/png", strings.NewReader("png")); err != nil {
		t.Fatal(err)
	}
	if b.seq != uint64(len(s.entries)) {
		t.Fatalf("restarted at %d, want %d", b.seq, len(s.entries))
	}
	for _, e := range s.entries {
		replayed.apply(e)
	}
	if got := snapshot(t, b); got != before {
		t.Fatalf("after restart:\n%s\nbefore:\n%s", got, before)
	}
	if got := snapshot(t, replayed); got != before {
		t.Fatalf("replayed from the start:\n%s\nrestarted:\n%s", got, before)
	}
	pa, da := a.m.Digest()
	if pb, dgb := b.m.Digest(); pa != pb || da != dgb {
		t.Fatalf("restored digest %d %s, want %d %s", pb, dgb, pa, da)
	}

	// What the story says, so that equal snapshots are also right ones.
	v, err := b.st.Conversation(group, "bob")
	if err != nil {
		t.Fatal(err)
	}
	roles := map[string]string{}
	for _, m := range v.Members {
		roles[m.UserID] = m.Role
	}
	if v.Title != "Trip to Jeju" || roles["bob"] != "owner" || roles["alice"] != "" || roles["dave"] != "member" || len(roles) != 3 {
		t.Fatalf("group after the owner left: %+v", v)
	}
	// bob read up to 4 (c-2); c-3 and a-2 came after, then only system
	// messages.
	if v.Unread != 2 || v.ReadSeq != 4 || v.LastSeq != 8 {
		t.Fatalf("bob's unread: %+v", v)
	}
	if v, _ := b.st.Conversation(direct, "bob"); v.Unread != 1 || v.LastMessage == nil || v.LastMessage.Kind != KindPayment {
		t.Fatalf("bob's direct conversation: %+v", v)
	}
	// c-1 is deleted, c-2 still shares the attachment: bob sees it, dave
	// (who joined after) does not.
	if _, _, err := b.svc.Open(context.Background(), "bob", group, "a1"); err != nil {
		t.Fatalf("bob opens the attachment: %v", err)
	}
	if _, _, err := b.svc.Open(context.Background(), "dave", group, "a1"); !isCode(err, apperr.NotFound) {
		t.Fatalf("dave opens an attachment shared before he joined: %v", err)
	}

	s.nodes = []*node{b, replayed}
	storyAfter(t, s)
	after := snapshot(t, b)
	if got := snapshot(t, replayed); got != after {
		t.Fatalf("restarted node:\n%s\nreplayed node:\n%s", after, got)
	}
	pb, db2 := b.m.Digest()
	pr, dr := replayed.m.Digest()
	if pb != pr || db2 != dr || pb != uint64(len(s.entries)) {
		t.Fatalf("digests: restarted %d %s, replayed %d %s", pb, db2, pr, dr)
	}
	if _, _, err := b.svc.Open(context.Background(), "carol", group, "a1"); !isCode(err, apperr.NotFound) {
		t.Fatalf("attachment of deleted messages only: %v", err)
	}
	if v, _ := b.st.Conversation(group, "carol"); v.Unread != 2 {
		t.Fatalf("carol's unread after reading to 9: %+v", v)
	}
}

func isCode(err error, code string) bool {
	var ae *apperr.Error
	return errors.As(err, &ae) && ae.Code == code
}

// TestUnreadCountsWhatIsUnread checks every member's unread count, after
// every entry of a random history, against the messages they can see.
func TestUnreadCountsWhatIsUnread(t *testing.T) {
	n := newNode(t, storetest.Open(t))
	s := &stream{nodes: []*node{n}}
	r := rand.New(rand.NewPCG(1, 2))
	people := []string{"u0", "u1", "u2", "u3", "u4", "u5"}
	s.ok(t, cmd(kindCreate, "u0", 0, createConv{ConversationID: "g", Kind: Group, Members: people[1:4]}))
	sent := map[string][]uint64{} // live text messages by sender
	for i := range 600 {
		v, err := n.st.Conversation("g", "u0")
		if err != nil {
			t.Fatal(err)
		}
		var envs []cmdlog.Envelope
		for range 1 + r.IntN(3) {
			m := v.Members[r.IntN(len(v.Members))].UserID
			switch k := r.IntN(20); {
			case k < 10:
				envs = append(envs, send(m, "g", i, fmt.Sprintf("%s-%d-%d", m, i, len(envs)), "x"))
			case k < 14:
				envs = append(envs, cmd(kindRead, m, i, seqCmd{ConversationID: "g", Seq: uint64(r.IntN(int(v.LastSeq) + 1))}))
			case k < 16 && len(sent[m]) > 0:
				j := r.IntN(len(sent[m]))
				envs = append(envs, cmd(kindDelete, m, i, seqCmd{ConversationID: "g", Seq: sent[m][j]}))
				sent[m] = append(sent[m][:j], sent[m][j+1:]...)
			case k < 17:
				envs = append(envs, cmd(kindAdd, "u0", i, membersCmd{ConversationID: "g", Users: []string{people[1+r.IntN(5)]}}))
			case k < 18 && m != "u0":
				envs = append(envs, cmd(kindRemove, m, i, membersCmd{ConversationID: "g", UserID: m}))
				sent[m] = nil
			}
		}
		for k, o := range s.add(t, envs...) {
			if envs[k].Kind == kindSend && o.Err == nil {
				var msg Message
				_ = json.Unmarshal(o.Value, &msg)
				sent[msg.Sender] = append(sent[msg.Sender], msg.Seq)
			}
		}
		for _, u := range people {
			v, err := n.st.Conversation("g", u)
			if err != nil {
				continue
			}
			ms, _, err := n.st.Messages("g", u, Page{After: v.ReadSeq, Limit: 1 << 20})
			if err != nil {
				t.Fatal(err)
			}
			want := 0
			for _, m := range ms {
				if m.Kind != KindSystem && m.Sender != u && m.DeletedAt == nil {
					want++
				}
			}
			if v.Unread != want {
				t.Fatalf("entry %d: %s has %d unread, the messages say %d", i, u, v.Unread, want)
			}
		}
	}
}

// TestSyncFindsWhatThePushAnnounced: the live push runs after the commit,
// so a device that syncs on hearing of an event finds it, and the feed
// pages by cursor without splitting one.
func TestSyncFindsWhatThePushAnnounced(t *testing.T) {
	n := newNode(t, storetest.Open(t))
	pushed := 0
	n.st.Notify(func(ds []Delivery) {
		for _, d := range ds {
			for _, u := range d.Users {
				evs, _, _ := n.st.Sync(u, d.Event.Cursor-1, 10)
				if len(evs) == 0 || evs[0].Cursor != d.Event.Cursor {
					t.Errorf("%s was told of cursor %d, sync finds %+v", u, d.Event.Cursor, evs)
				}
				pushed++
			}
		}
	})
	s := &stream{nodes: []*node{n}}
	s.ok(t, cmd(kindCreate, "alice", 0, createConv{ConversationID: "g", Kind: Group, Members: []string{"bob"}}))
	s.ok(t, send("alice", "g", 1, "m1", "one"), send("bob", "g", 1, "m2", "two"))
	s.ok(t, cmd(kindDelete, "alice", 2, seqCmd{ConversationID: "g", Seq: 2}))
	if pushed != 10 {
		t.Fatalf("pushed %d deliveries, want 10", pushed)
	}
	// The group's creation is two events under one cursor: a page of one
	// holds both.
	evs, next, more := n.st.Sync("bob", 0, 1)
	if len(evs) != 2 || evs[0].Type != EvJoined || evs[1].Message == nil || evs[1].Message.System == nil || !more || next != evs[0].Cursor {
		t.Fatalf("first page: %+v next %d more %v", evs, next, more)
	}
	evs, next, more = n.st.Sync("bob", next, 10)
	if len(evs) != 3 || more || evs[2].Type != EvDeleted {
		t.Fatalf("rest: %+v more %v", evs, more)
	}
	// The feed shows a deleted message as deleted, as the conversation does.
	if m := evs[0].Message; m == nil || m.Text != "" || m.DeletedAt == nil {
		t.Fatalf("deleted message in the feed: %+v", m)
	}
	if evs, again, more := n.st.Sync("bob", next, 10); len(evs) != 0 || again != next || more {
		t.Fatalf("past the end: %+v %d %v", evs, again, more)
	}
}

// TestQueriesWhileApplying: queries read the committed store while the
// stream is applied (run with -race); what they see never goes back.
func TestQueriesWhileApplying(t *testing.T) {
	n := newNode(t, storetest.Open(t))
	s := &stream{nodes: []*node{n}}
	s.ok(t, cmd(kindCreate, "alice", 0, createConv{ConversationID: "g", Kind: Group, Members: []string{"bob", "carol"}}))
	done := make(chan struct{})
	errs := make(chan error, 1)
	go func() {
		defer close(errs)
		var last uint64
		var cursor uint64
		for {
			select {
			case <-done:
				return
			default:
			}
			v, err := n.st.Conversation("g", "bob")
			if err != nil || v.LastSeq < last || v.Unread < 0 || uint64(v.Unread) > v.LastSeq {
				errs <- fmt.Errorf("view %+v after last seq %d: %v", v, last, err)
				return
			}
			last = v.LastSeq
			evs, next, _ := n.st.Sync("bob", cursor, 50)
			for _, ev := range evs {
				if ev.Cursor <= cursor {
					errs <- fmt.Errorf("sync after %d returned cursor %d", cursor, ev.Cursor)
					return
				}
			}
			cursor = next
			n.st.Conversations("carol")
		}
	}()
	for i := range 200 {
		s.ok(t, send("alice", "g", i, fmt.Sprint("a", i), "x"), send("carol", "g", i, fmt.Sprint("c", i), "y"),
			cmd(kindRead, "bob", i, seqCmd{ConversationID: "g", Seq: uint64(2 * i)}))
	}
	close(done)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
}
