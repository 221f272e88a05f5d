package httpapi_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"superapp/client"
)

func ptr[T any](v T) *T { return &v }

func TestDirectConversationAndMessages(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	a, _ := e.user("Ara")
	b, _ := e.user("Bo")
	conv, err := a.CreateConversation(ctx, []string{b.UserID()}, nil)
	if err != nil || conv.Kind != "direct" || len(conv.Members) != 2 {
		t.Fatalf("create: %v %+v", err, conv)
	}
	// The other side opening "the" conversation gets the same one.
	again, err := b.CreateConversation(ctx, []string{a.UserID()}, nil)
	if err != nil || again.ConversationID != conv.ConversationID || !again.Existed {
		t.Fatalf("reopen: %v %+v", err, again)
	}
	// Contract: POST → 201 {"seq"}; the same id again → 200 and the original.
	r := e.do("POST", "/v1/conversations/"+conv.ConversationID+"/messages", a.AccessToken(), `{"id":"m-1","text":"hello"}`)
	if r.status != 201 || r.body["seq"] != float64(1) || r.body["sender"] != a.UserID() {
		t.Fatalf("send: %d %s", r.status, r.raw)
	}
	r = e.do("POST", "/v1/conversations/"+conv.ConversationID+"/messages", a.AccessToken(), `{"id":"m-1","text":"hello again?"}`)
	if r.status != 200 || r.body["seq"] != float64(1) || r.body["text"] != "hello" {
		t.Fatalf("resend: %d %s", r.status, r.raw)
	}
	for i := 2; i <= 5; i++ {
		if _, err := b.Send(ctx, conv.ConversationID, fmt.Sprintf("b-%d", i), fmt.Sprintf("reply %d", i), 1); err != nil {
			t.Fatal(err)
		}
	}
	r = e.do("GET", "/v1/conversations/"+conv.ConversationID+"/messages?after=2&limit=2", a.AccessToken(), "")
	msgs, _ := r.body["messages"].([]any)
	if r.status != 200 || len(msgs) != 2 || msgs[0].(map[string]any)["seq"] != float64(3) || r.body["more"] != true {
		t.Fatalf("page: %d %s", r.status, r.raw)
	}
	m0 := msgs[0].(map[string]any)
	for _, f := range []string{"id", "seq", "sender", "text"} {
		if _, ok := m0[f]; !ok {
			t.Fatalf("message lacks %q: %v", f, m0)
		}
	}
	// History backwards.
	hist, more, err := a.Messages(ctx, conv.ConversationID, 0, 5, 2)
	if err != nil || len(hist) != 2 || hist[0].Seq != 3 || hist[1].Seq != 4 || !more {
		t.Fatalf("history: %v %+v %v", err, hist, more)
	}
	// Unread, read on one device clears it for the others.
	convs, _ := a.Conversations(ctx)
	if len(convs) != 1 || convs[0].Unread != 4 || convs[0].LastMessage == nil || convs[0].LastMessage.Seq != 5 {
		t.Fatalf("unread: %+v", convs)
	}
	if rc, err := a.MarkRead(ctx, conv.ConversationID, 5); err != nil || rc.Unread != 0 || rc.ReadSeq != 5 {
		t.Fatalf("read: %v %+v", err, rc)
	}
	if c2, _ := a.Conversation(ctx, conv.ConversationID); c2.Unread != 0 {
		t.Fatalf("unread after read: %+v", c2)
	}
	// Delete for everyone: only the sender.
	_, err = b.DeleteMessage(ctx, conv.ConversationID, 1)
	wantCode(t, err, "not_sender")
	del, err := a.DeleteMessage(ctx, conv.ConversationID, 1)
	if err != nil || del.DeletedAt == nil || del.Text != "" {
		t.Fatalf("delete: %v %+v", err, del)
	}
	if got, _, _ := b.Messages(ctx, conv.ConversationID, 0, 0, 1); got[0].Text != "" || got[0].DeletedAt == nil {
		t.Fatalf("deleted message still readable: %+v", got[0])
	}
	_, err = a.DeleteMessage(ctx, conv.ConversationID, 99)
	wantCode(t, err, "message_not_found")
	// Bad input.
	for body, field := range map[string]string{
		`{"id":"","text":"x"}`:                                   "id",
		`{"id":"has space","text":"x"}`:                          "id",
		`{"id":"x1","text":"   "}`:                               "text",
		`{"id":"x2","text":"` + strings.Repeat("가", 4097) + `"}`: "text",
		`{"id":"x3","text":"ok","reply_to":999}`:                 "reply_to",
		`{"id":"x4","text":"ok","extra":1}`:                      "extra",
	} {
		r := e.do("POST", "/v1/conversations/"+conv.ConversationID+"/messages", a.AccessToken(), body)
		if r.status != 400 || r.errField() != field {
			t.Errorf("%s: %d %s, want 400 on %s", body, r.status, r.raw, field)
		}
	}
	if r := e.do("GET", "/v1/conversations/"+conv.ConversationID+"/messages?limit=0", a.AccessToken(), ""); r.status != 400 || r.errField() != "limit" {
		t.Fatalf("limit=0: %d %s", r.status, r.raw)
	}
}

func TestChatForbidden(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	a, _ := e.user("Owner")
	b, _ := e.user("Member")
	x, _ := e.user("Stranger")
	conv, err := a.CreateConversation(ctx, []string{b.UserID()}, ptr("Team"))
	if err != nil || conv.Kind != "group" {
		t.Fatalf("group: %v %+v", err, conv)
	}
	if _, err := a.Send(ctx, conv.ConversationID, "a1", "secret plans", 0); err != nil {
		t.Fatal(err)
	}
	// A non-member can neither read nor write nor see the conversation.
	_, _, err = x.Messages(ctx, conv.ConversationID, 0, 0, 10)
	wantCode(t, err, "not_member")
	_, err = x.Send(ctx, conv.ConversationID, "x1", "let me in", 0)
	wantCode(t, err, "not_member")
	_, err = x.Conversation(ctx, conv.ConversationID)
	wantCode(t, err, "not_member")
	_, err = x.MarkRead(ctx, conv.ConversationID, 1)
	wantCode(t, err, "not_member")
	_, err = x.AddMembers(ctx, conv.ConversationID, []string{x.UserID()})
	wantCode(t, err, "not_member")
	if evs, _, _, _ := x.Sync(ctx, 0, 100); len(evs) != 0 {
		t.Fatalf("stranger's feed has %d events", len(evs))
	}
	_, _, err = x.Messages(ctx, "gdoesnotexist", 0, 0, 10)
	wantCode(t, err, "conversation_not_found")
	// Members are not admins.
	_, err = b.AddMembers(ctx, conv.ConversationID, []string{x.UserID()})
	wantCode(t, err, "not_admin")
	_, err = b.Rename(ctx, conv.ConversationID, "Mine now")
	wantCode(t, err, "not_admin")
	_, err = b.RemoveMember(ctx, conv.ConversationID, a.UserID())
	wantCode(t, err, "not_admin")
	// Joining later shows only what comes after.
	if _, err := a.AddMembers(ctx, conv.ConversationID, []string{x.UserID()}); err != nil {
		t.Fatal(err)
	}
	got, _, err := x.Messages(ctx, conv.ConversationID, 0, 0, 10)
	if err != nil || len(got) != 1 || got[0].Kind != "system" || got[0].System.Event != "joined" {
		t.Fatalf("new member sees: %v %+v", err, got)
	}
	// Removed: no more access.
	if _, err := a.RemoveMember(ctx, conv.ConversationID, x.UserID()); err != nil {
		t.Fatal(err)
	}
	_, _, err = x.Messages(ctx, conv.ConversationID, 0, 0, 10)
	wantCode(t, err, "not_member")
	// Blocks: no direct conversation, no messages, no adding.
	d, err := a.CreateConversation(ctx, []string{x.UserID()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := x.Block(ctx, a.UserID()); err != nil {
		t.Fatal(err)
	}
	_, err = a.Send(ctx, d.ConversationID, "a-blocked", "hello?", 0)
	wantCode(t, err, "blocked")
	_, err = x.Send(ctx, d.ConversationID, "x-blocked", "hello?", 0)
	wantCode(t, err, "blocked")
	_, err = a.AddMembers(ctx, conv.ConversationID, []string{x.UserID()})
	wantCode(t, err, "blocked")
	y, _ := e.user("Y")
	if _, err := y.Block(ctx, a.UserID()); err != nil {
		t.Fatal(err)
	}
	_, err = a.CreateConversation(ctx, []string{y.UserID()}, nil)
	wantCode(t, err, "blocked")
	// Unauthenticated.
	if r := e.do("GET", "/v1/conversations", "", ""); r.status != 401 {
		t.Fatalf("no token: %d", r.status)
	}
}

func TestGroupLifecycleAndSync(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	owner, _ := e.user("O")
	m1, _ := e.user("M1")
	m2, _ := e.user("M2")
	conv, err := owner.CreateConversation(ctx, []string{m1.UserID(), m2.UserID()}, ptr("Trip"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := owner.SetAdmin(ctx, conv.ConversationID, m1.UserID(), true); err != nil {
		t.Fatal(err)
	}
	_, err = m1.SetAdmin(ctx, conv.ConversationID, m2.UserID(), true)
	wantCode(t, err, "not_admin")
	if _, err := m1.Rename(ctx, conv.ConversationID, "Trip to Jeju"); err != nil {
		t.Fatalf("admin rename: %v", err)
	}
	if _, err := m2.Send(ctx, conv.ConversationID, "m2-1", "when do we leave?", 0); err != nil {
		t.Fatal(err)
	}
	// The owner leaves: the admin owns the group now.
	left, err := owner.RemoveMember(ctx, conv.ConversationID, owner.UserID())
	if err != nil {
		t.Fatal(err)
	}
	roles := map[string]string{}
	for _, m := range left.Members {
		roles[m.UserID] = m.Role
	}
	if roles[m1.UserID()] != "owner" || len(roles) != 2 {
		t.Fatalf("after owner left: %+v", roles)
	}
	// m2's feed tells the whole story in order, across pages.
	var all []client.Event
	cursor := uint64(0)
	for {
		evs, next, more, err := m2.Sync(ctx, cursor, 2)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, evs...)
		cursor = next
		if !more {
			break
		}
	}
	var kinds []string
	for i, ev := range all {
		if i > 0 && ev.Cursor < all[i-1].Cursor {
			t.Fatalf("feed out of order: %+v", all)
		}
		k := ev.Type
		if ev.Message != nil && ev.Message.System != nil {
			k += ":" + ev.Message.System.Event
		}
		kinds = append(kinds, k)
	}
	want := "conversation.joined message:created conversation.members conversation.renamed message:renamed message message:left"
	if strings.Join(kinds, " ") != want {
		t.Fatalf("feed:\n got %s\nwant %s", strings.Join(kinds, " "), want)
	}
	// Resuming at the last cursor yields nothing new.
	if evs, next, _, _ := m2.Sync(ctx, cursor, 10); len(evs) != 0 || next != cursor {
		t.Fatalf("resume: %+v %d", evs, next)
	}
	// The owner's feed ends with leaving; it no longer lists the group.
	if convs, _ := owner.Conversations(ctx); len(convs) != 0 {
		t.Fatalf("left group still listed: %+v", convs)
	}
}

// pngBytes is a 1x1 PNG.
var pngBytes = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82")

func TestAttachments(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	a, _ := e.user("Uploader")
	b, _ := e.user("Viewer")
	x, _ := e.user("Outsider")
	conv, err := a.CreateConversation(ctx, []string{b.UserID()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	att, err := a.Upload(ctx, conv.ConversationID, "dot.png", "image/png", pngBytes)
	if err != nil || att.ContentType != "image/png" || att.Size != int64(len(pngBytes)) {
		t.Fatalf("upload: %v %+v", err, att)
	}
	m, err := a.SendAttachment(ctx, conv.ConversationID, "pic-1", "", att.ID)
	if err != nil || m.Attachment == nil || m.Attachment.ID != att.ID {
		t.Fatalf("send: %v %+v", err, m)
	}
	got, err := b.Download(ctx, conv.ConversationID, att.ID)
	if err != nil || string(got) != string(pngBytes) {
		t.Fatalf("download: %v %d bytes", err, len(got))
	}
	r := e.do("GET", "/v1/conversations/"+conv.ConversationID+"/attachments/"+att.ID, b.AccessToken(), "")
	if r.header.Get("Content-Type") != "image/png" || r.header.Get("X-Content-Type-Options") != "nosniff" ||
		!strings.HasPrefix(r.header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("download headers: %v", r.header)
	}
	// The same bytes from another member are that member's own upload.
	batt, err := b.Upload(ctx, conv.ConversationID, "dot.png", "image/png", pngBytes)
	if err != nil || batt.ID == att.ID {
		t.Fatalf("second uploader: %v %+v", err, batt)
	}
	if _, err := b.SendAttachment(ctx, conv.ConversationID, "pic-b", "mine too", batt.ID); err != nil {
		t.Fatalf("send own upload of the same bytes: %v", err)
	}
	// Outsiders can neither download nor upload.
	_, err = x.Download(ctx, conv.ConversationID, att.ID)
	wantCode(t, err, "not_member")
	_, err = x.Upload(ctx, conv.ConversationID, "x.png", "image/png", pngBytes)
	wantCode(t, err, "not_member")
	// A member cannot send someone else's upload or an unknown one.
	_, err = b.SendAttachment(ctx, conv.ConversationID, "steal", "", att.ID)
	wantCode(t, err, "invalid_field")
	_, err = a.SendAttachment(ctx, conv.ConversationID, "ghost", "", "anothing")
	wantCode(t, err, "invalid_field")
	// Content is checked: HTML is refused, a lie about an image too.
	_, err = a.Upload(ctx, conv.ConversationID, "x.html", "text/html", []byte("<html><script>alert(1)</script></html>"))
	wantCode(t, err, "unsupported_media_type")
	_, err = a.Upload(ctx, conv.ConversationID, "fake.png", "image/png", []byte("just some text, not a picture"))
	wantCode(t, err, "unsupported_media_type")
	_, err = a.Upload(ctx, conv.ConversationID, "../etc/passwd", "text/plain", []byte("hello"))
	wantCode(t, err, "invalid_field")
	// Deleted for everyone: no one downloads it any more.
	if _, err := b.DeleteMessage(ctx, conv.ConversationID, 2); err != nil {
		t.Fatal(err)
	}
	_, err = a.Download(ctx, conv.ConversationID, batt.ID)
	wantCode(t, err, "not_found")
	// Someone who joins later does not get what was shared before.
	g, err := a.CreateConversation(ctx, []string{b.UserID()}, ptr("album"))
	if err != nil {
		t.Fatal(err)
	}
	gatt, err := a.Upload(ctx, g.ConversationID, "dot.png", "image/png", pngBytes)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.SendAttachment(ctx, g.ConversationID, "g1", "", gatt.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := a.AddMembers(ctx, g.ConversationID, []string{x.UserID()}); err != nil {
		t.Fatal(err)
	}
	_, err = x.Download(ctx, g.ConversationID, gatt.ID)
	wantCode(t, err, "not_found")
	if _, err := b.Download(ctx, g.ConversationID, gatt.ID); err != nil {
		t.Fatalf("member from the start: %v", err)
	}
	if r := e.do("POST", "/v1/conversations/"+conv.ConversationID+"/attachments", a.AccessToken(), ""); r.status != 400 || r.errField() != "body" {
		t.Fatalf("empty upload: %d %s", r.status, r.raw)
	}
	// 10 MB at most.
	big := make([]byte, 10<<20+1)
	_, err = a.Upload(ctx, conv.ConversationID, "big.bin", "application/octet-stream", big)
	wantCode(t, err, "body_too_large")
	ok := make([]byte, 10<<20)
	copy(ok, "%PDF-1.4\n")
	if att, err := a.Upload(ctx, conv.ConversationID, "big.pdf", "application/pdf", ok); err != nil || att.ContentType != "application/pdf" {
		t.Fatalf("10 MB pdf: %v %+v", err, att)
	}
}

// TestConversationListCursor: the list says which feed cursor it
// reflects, so a new device streams from there instead of replaying the
// whole feed, and misses nothing.
func TestConversationListCursor(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	a, _ := e.user("Cur")
	b, _ := e.user("Sor")
	conv, err := a.CreateConversation(ctx, []string{b.UserID()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := a.Send(ctx, conv.ConversationID, fmt.Sprintf("c-%d", i), "hi", 0); err != nil {
			t.Fatal(err)
		}
	}
	r := e.do("GET", "/v1/conversations", b.AccessToken(), "", "X-Superapp-Position", a.Position())
	cursor, ok := r.body["cursor"].(float64)
	if r.status != 200 || !ok || cursor == 0 {
		t.Fatalf("list: %d %s", r.status, r.raw)
	}
	s := e.do("GET", "/v1/sync?cursor=0&limit=500", b.AccessToken(), "")
	evs := s.body["events"].([]any)
	if last := evs[len(evs)-1].(map[string]any)["cursor"].(float64); last != cursor {
		t.Fatalf("list cursor %v, the feed's last event %v", cursor, last)
	}
	if s := e.do("GET", fmt.Sprintf("/v1/sync?cursor=%d", int(cursor)), b.AccessToken(), ""); len(s.body["events"].([]any)) != 0 {
		t.Fatalf("events after the list's cursor before anything new: %s", s.raw)
	}
	// Someone without a feed yet gets cursor 0.
	c, _ := e.user("New")
	if r := e.do("GET", "/v1/conversations", c.AccessToken(), ""); r.body["cursor"] != float64(0) {
		t.Fatalf("empty feed: %s", r.raw)
	}
}
