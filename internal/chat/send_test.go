package chat

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"

	"superapp/internal/cmdlog"
	"superapp/internal/store/storetest"
)

// named is a send as the service names it (sendID).
func named(actor, conv string, at int, id, text string) cmdlog.Envelope {
	e := send(actor, conv, at, id, text)
	e.ID = sendID(conv, actor, id)
	return e
}

// sentSeq is the seq of the message a send's outcome holds.
func sentSeq(tb testing.TB, o cmdlog.Outcome) uint64 {
	tb.Helper()
	var m Message
	if o.Err != nil || json.Unmarshal(o.Value, &m) != nil {
		tb.Fatalf("send: %+v", o)
	}
	return m.Seq
}

// TestClientIDOnceWhateverTheCommandID: a client id stores one message
// whether its sends are named after it (as the service names them, which
// spares the client id's look-up) or not, in any order, in one entry or
// several.
func TestClientIDOnceWhateverTheCommandID(t *testing.T) {
	n := newNode(t, storetest.Open(t))
	s := &stream{nodes: []*node{n}}
	s.ok(t, cmd(kindCreate, "alice", 0, createConv{ConversationID: direct, Kind: Direct, Members: []string{"bob"}}))
	s.ok(t, cmd(kindCreate, "alice", 0, createConv{ConversationID: group, Kind: Group, Members: []string{"bob"}}))
	want := map[string]uint64{} // seq by client id, in direct
	check := func(o cmdlog.Outcome, id string) {
		t.Helper()
		if got := sentSeq(t, o); got != want[id] {
			t.Fatalf("%s: seq %d, want %d", id, got, want[id])
		}
	}
	o := s.ok(t, named("alice", direct, 1, "x1", "first"))[0]
	want["x1"] = 1
	check(o, "x1")
	// The same named send again: the machine answers it.
	s.ok(t, named("alice", direct, 2, "x1", "again"))
	if o, _ := n.m.Outcome(sendID(direct, "alice", "x1")); sentSeq(t, o) != 1 {
		t.Fatalf("named resend: %+v", o)
	}
	// Named otherwise, the same client id: the message as it is.
	check(s.ok(t, send("alice", direct, 3, "x1", "again"))[0], "x1")
	// A new client id named otherwise, then as the service names it.
	o = s.ok(t, send("alice", direct, 4, "y1", "second"))[0]
	want["y1"] = 2
	check(o, "y1")
	check(s.ok(t, named("alice", direct, 5, "y1", "second"))[0], "y1")
	// Both in one entry, either order.
	outs := s.ok(t, send("alice", direct, 6, "z1", "third"), named("alice", direct, 6, "z1", "third"),
		named("alice", direct, 6, "w1", "fourth"), send("alice", direct, 6, "w1", "fourth"))
	want["z1"], want["w1"] = 3, 4
	check(outs[0], "z1")
	check(outs[1], "z1")
	check(outs[2], "w1")
	check(outs[3], "w1")
	// Another sender's client ids are theirs; another conversation's too.
	if got := sentSeq(t, s.ok(t, named("bob", direct, 7, "x1", "mine"))[0]); got != 5 {
		t.Fatalf("bob's x1: seq %d", got)
	}
	if got := sentSeq(t, s.ok(t, named("alice", group, 7, "x1", "group"))[0]); got != 2 { // after "created"
		t.Fatalf("alice's x1 in the group: seq %d", got)
	}
	ms, _, err := n.st.Messages(direct, "bob", Page{Limit: 100})
	if err != nil || len(ms) != 5 {
		t.Fatalf("messages: %+v %v", ms, err)
	}
	for _, m := range ms {
		if m.Seq <= 4 && want[m.ID] != m.Seq {
			t.Fatalf("message %+v", m)
		}
	}
}

// TestAbortedEntryLeavesNoTrace: an entry whose batch is dropped (the
// store failed under it) leaves nothing in the records apply keeps in
// memory: the entry applied again at the same position starts from the
// store.
func TestAbortedEntryLeavesNoTrace(t *testing.T) {
	db := storetest.Open(t)
	a, b := newNode(t, db), newNode(t, storetest.Open(t))
	s := &stream{nodes: []*node{a, b}}
	s.ok(t, cmd(kindCreate, "alice", 0, createConv{ConversationID: direct, Kind: Direct, Members: []string{"bob"}}))
	s.ok(t, cmd(kindCreate, "alice", 0, createConv{ConversationID: group, Kind: Group, Members: []string{"bob"}}))
	s.ok(t, named("alice", direct, 1, "m1", "one"), named("alice", group, 1, "m1", "one"))

	// a applies the next entry, which is not committed.
	tx := a.st.space.Begin()
	for _, e := range []cmdlog.Envelope{named("bob", direct, 2, "lost", "lost"), named("bob", group, 2, "lost", "lost"),
		cmd(kindAdd, "alice", 2, membersCmd{ConversationID: group, Users: []string{"carol"}})} {
		e.Cursor = cmdlog.CursorOf(a.seq+1, 0)
		if _, err := a.st.Apply(a.seq+1, &e); err != nil {
			t.Fatal(err)
		}
	}
	tx.Abort()

	s.ok(t, named("alice", direct, 3, "m2", "two"), named("alice", group, 3, "m2", "two"))
	s.ok(t, cmd(kindRead, "bob", 4, seqCmd{ConversationID: direct, Seq: 2}))
	for _, conv := range []string{direct, group} {
		for _, u := range []string{"alice", "bob", "carol"} {
			va, erra := a.st.Conversation(conv, u)
			vb, errb := b.st.Conversation(conv, u)
			ja, _ := json.Marshal([]any{va, fmt.Sprint(erra)})
			jb, _ := json.Marshal([]any{vb, fmt.Sprint(errb)})
			if string(ja) != string(jb) {
				t.Fatalf("%s as %s after an aborted entry:\n%s\nwant\n%s", conv, u, ja, jb)
			}
		}
	}
	if pa, da := a.m.Digest(); true {
		if pb, db := b.m.Digest(); pa != pb || da != db {
			t.Fatalf("digests %d %s, %d %s", pa, da, pb, db)
		}
	}
}

// TestUnreadCountsWhatIsUnreadOneToOne is TestUnreadCountsWhatIsUnread in
// a one-to-one conversation, whose receipts live in its record.
func TestUnreadCountsWhatIsUnreadOneToOne(t *testing.T) {
	n := newNode(t, storetest.Open(t))
	s := &stream{nodes: []*node{n}}
	r := rand.New(rand.NewPCG(3, 4))
	people := []string{"alice", "bob"}
	s.ok(t, cmd(kindCreate, "alice", 0, createConv{ConversationID: direct, Kind: Direct, Members: people[1:]}))
	sent := map[string][]uint64{} // live messages by sender
	for i := range 400 {
		v, err := n.st.Conversation(direct, "alice")
		if err != nil {
			t.Fatal(err)
		}
		var envs []cmdlog.Envelope
		for range 1 + r.IntN(3) {
			m := people[r.IntN(2)]
			switch k := r.IntN(20); {
			case k < 10:
				envs = append(envs, named(m, direct, i, fmt.Sprintf("%s-%d-%d", m, i, len(envs)), "x"))
			case k < 14:
				envs = append(envs, cmd(kindRead, m, i, seqCmd{ConversationID: direct, Seq: uint64(r.IntN(int(v.LastSeq) + 1))}))
			case k < 16:
				envs = append(envs, cmd(kindDelivered, m, i, seqCmd{ConversationID: direct, Seq: uint64(r.IntN(int(v.LastSeq) + 1))}))
			case k < 18 && len(sent[m]) > 0:
				j := r.IntN(len(sent[m]))
				envs = append(envs, cmd(kindDelete, m, i, seqCmd{ConversationID: direct, Seq: sent[m][j]}))
				sent[m] = append(sent[m][:j], sent[m][j+1:]...)
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
			v, err := n.st.Conversation(direct, u)
			if err != nil {
				t.Fatal(err)
			}
			ms, _, err := n.st.Messages(direct, u, Page{After: v.ReadSeq, Limit: 1 << 20})
			if err != nil {
				t.Fatal(err)
			}
			want := 0
			for _, m := range ms {
				if m.Sender != u && m.DeletedAt == nil {
					want++
				}
			}
			if v.Unread != want {
				t.Fatalf("entry %d: %s has %d unread, the messages say %d", i, u, v.Unread, want)
			}
		}
	}
}
