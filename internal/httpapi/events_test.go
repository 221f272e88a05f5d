package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"superapp/client"
)

// next returns the next frame of a stream that is not a typing indicator
// unless typing is wanted.
func next(t *testing.T, ch <-chan client.Frame, typing bool) client.Frame {
	t.Helper()
	for {
		select {
		case f, ok := <-ch:
			if !ok {
				t.Fatal("stream closed")
			}
			if f.Type == "typing" && !typing {
				continue
			}
			return f
		case <-time.After(10 * time.Second):
			t.Fatal("no frame within 10s")
		}
	}
}

func TestEventStream(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, aLogin := e.user("Ahn")
	b, _ := e.user("Baek")
	conv, err := a.CreateConversation(ctx, []string{b.UserID()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Send(ctx, conv.ConversationID, "b1", "before you connected", 0); err != nil {
		t.Fatal(err)
	}
	// Two devices of a: each replays what it missed, then goes live.
	tablet := client.New([]string{e.url})
	if _, err := tablet.Login(ctx, aLogin, goodPassword, "tablet"); err != nil {
		t.Fatal(err)
	}
	phoneCtx, phoneOff := context.WithCancel(ctx)
	phone := a.Stream(phoneCtx, 0)
	pad := tablet.Stream(ctx, 0)
	for _, s := range []<-chan client.Frame{phone, pad} {
		if f := next(t, s, false); f.Type != "events" || f.Events[0].Type != "conversation.joined" {
			t.Fatalf("first frame: %+v", f)
		}
		if f := next(t, s, false); f.Events[0].Message == nil || f.Events[0].Message.Text != "before you connected" {
			t.Fatalf("replayed message: %+v", f)
		}
		if f := next(t, s, false); f.Type != "sync.done" {
			t.Fatalf("end of replay: %+v", f)
		}
	}
	// Live: a message from b reaches both devices; typing too.
	m, err := b.Send(ctx, conv.ConversationID, "b2", "live now", 0)
	if err != nil {
		t.Fatal(err)
	}
	var lastCursor uint64
	for _, s := range []<-chan client.Frame{phone, pad} {
		f := next(t, s, false)
		if f.Events[0].Message == nil || f.Events[0].Message.Seq != m.Seq {
			t.Fatalf("live message: %+v", f)
		}
		lastCursor = f.Cursor
	}
	if r := e.do("POST", "/v1/conversations/"+conv.ConversationID+"/typing", b.AccessToken(), ""); r.status != 204 {
		t.Fatalf("typing: %d %s", r.status, r.raw)
	}
	if f := next(t, pad, true); f.Type != "typing" || f.UserID != b.UserID() {
		t.Fatalf("typing frame: %+v", f)
	}
	// Reading on the phone clears the unread count on the tablet.
	if _, err := a.MarkRead(ctx, conv.ConversationID, m.Seq); err != nil {
		t.Fatal(err)
	}
	f := next(t, pad, false)
	if f.Events[0].Type != "receipt.read" || f.Events[0].Unread == nil || *f.Events[0].Unread != 0 {
		t.Fatalf("read on another device: %+v", f)
	}
	// The phone goes offline; messages sent meanwhile arrive when it
	// resumes from its cursor, once each.
	phoneOff()
	for i := 0; i < 3; i++ {
		if _, err := b.Send(ctx, conv.ConversationID, fmt.Sprintf("off-%d", i), "while you were away", 0); err != nil {
			t.Fatal(err)
		}
	}
	resumed := a.Stream(ctx, lastCursor+1) // after the read receipt it also missed
	_ = resumed
	back := a.Stream(ctx, lastCursor)
	var texts []string
	for len(texts) < 3 {
		f := next(t, back, false)
		if f.Type != "events" {
			continue
		}
		for _, ev := range f.Events {
			if ev.Type == "message" {
				texts = append(texts, ev.Message.ID)
			}
		}
	}
	if strings.Join(texts, ",") != "off-0,off-1,off-2" {
		t.Fatalf("resumed: %v", texts)
	}
}

func TestEventStreamForbidden(t *testing.T) {
	e := newEnv(t)
	ws := "ws" + strings.TrimPrefix(e.url, "http") + "/v1/events"
	for _, h := range []http.Header{nil, {"Authorization": {"Bearer nope"}}} {
		_, resp, err := websocket.Dial(context.Background(), ws, &websocket.DialOptions{HTTPHeader: h})
		if err == nil || resp == nil || resp.StatusCode != 401 {
			t.Fatalf("event stream without a valid token: %v %v", err, resp)
		}
	}
	// Browsers offer the token as a subprotocol, never in the URL.
	a, _ := e.user("Q")
	if _, resp, err := websocket.Dial(context.Background(), ws+"?access_token="+a.AccessToken(), nil); err == nil || resp == nil || resp.StatusCode != 401 {
		t.Fatalf("a token in the URL was taken: %v %v", err, resp)
	}
	if _, resp, err := websocket.Dial(context.Background(), ws, &websocket.DialOptions{Subprotocols: []string{"superapp.v1", "superapp.bearer.nope"}}); err == nil || resp == nil || resp.StatusCode != 401 {
		t.Fatalf("a bad subprotocol token was taken: %v %v", err, resp)
	}
	c := dialEvents(t, context.Background(), e.url, a.AccessToken())
	if c.Subprotocol() != "superapp.v1" {
		t.Fatalf("subprotocol %q, want superapp.v1", c.Subprotocol())
	}
	// A browser cannot send WebSocket pings: it sends a ping frame and
	// hears a pong.
	if err := c.Write(context.Background(), websocket.MessageText, []byte(`{"type":"ping"}`)); err != nil {
		t.Fatal(err)
	}
	for {
		_, b, err := c.Read(context.Background())
		if err != nil {
			t.Fatalf("no pong: %v", err)
		}
		if strings.Contains(string(b), `"type":"pong"`) {
			break
		}
	}
	c.CloseNow()
	// Another user's events are never sent: b's stream stays silent when a
	// talks with someone else.
}

// TestEventStreamConcurrentSends: messages sent at the same time share
// stream entries; every one of them is still pushed, once.
func TestEventStreamConcurrentSends(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, _ := e.user("Many")
	b, _ := e.user("Senders")
	conv, err := a.CreateConversation(ctx, []string{b.UserID()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	stream := a.Stream(ctx, 0)
	for f := next(t, stream, false); f.Type != "sync.done"; f = next(t, stream, false) {
	}
	const n = 200
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() {
			_, err := b.Send(ctx, conv.ConversationID, fmt.Sprintf("c-%d", i), "at once", 0)
			errs <- err
		}()
	}
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	var lastSeq uint64
	for len(seen) < n {
		f := next(t, stream, false)
		for _, ev := range f.Events {
			if ev.Type != "message" {
				continue
			}
			if seen[ev.Message.ID] || ev.Message.Seq != lastSeq+1 {
				t.Fatalf("%s (seq %d) after seq %d: duplicate or gap", ev.Message.ID, ev.Message.Seq, lastSeq)
			}
			seen[ev.Message.ID], lastSeq = true, ev.Message.Seq
		}
	}
}

// dialEvents opens a user's event stream as the web app does: the token
// offered as a subprotocol.
func dialEvents(t *testing.T, ctx context.Context, url, token string) *websocket.Conn {
	t.Helper()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(url, "http")+"/v1/events",
		&websocket.DialOptions{Subprotocols: []string{"superapp.v1", "superapp.bearer." + token}})
	if err != nil {
		t.Fatal(err)
	}
	return ws
}
