package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"superapp/internal/chat"
)

// The event stream (GET /v1/events, a WebSocket) pushes a user's events to
// each of their online devices. Every node applies every CHAT entry, so
// each node pushes to the devices connected to it: delivery across DCs
// needs no extra hop. A device resumes from the cursor of the last event
// it saw: the node first replays the feed after it, then goes live, never
// skipping or repeating a cursor.

const (
	// eventQueue is how many cursors a slow device may fall behind before
	// the node drops it; it reconnects and resumes from its cursor.
	eventQueue   = 32
	pingInterval = 30 * time.Second
	writeTimeout = 10 * time.Second
)

// Hub routes applied events to the connected devices of their users.
type Hub struct {
	mu    sync.RWMutex
	conns map[string]map[*eventConn]struct{}
}

// NewHub returns an empty hub.
func NewHub() *Hub { return &Hub{conns: map[string]map[*eventConn]struct{}{}} }

// Notify is told of the events of each applied CHAT entry (chat.State.Notify).
func (h *Hub) Notify(ds []chat.Delivery) {
	byUser := map[string][]*chat.Event{}
	for _, d := range ds {
		for _, u := range d.Users {
			byUser[u] = append(byUser[u], d.Event)
		}
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	for u, evs := range byUser {
		for c := range h.conns[u] {
			c.push(evs[0].Cursor, evs)
		}
	}
}

// Typing tells the online members of a conversation that user is typing.
func (h *Hub) Typing(users []string, ev *chat.Event) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for _, u := range users {
		if u == ev.UserID {
			continue
		}
		for c := range h.conns[u] {
			c.pushEphemeral(ev)
		}
	}
}

// Connections counts the connected devices.
func (h *Hub) Connections() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	n := 0
	for _, cs := range h.conns {
		n += len(cs)
	}
	return n
}

func (h *Hub) each(fn func(*eventConn)) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for _, cs := range h.conns {
		for c := range cs {
			fn(c)
		}
	}
}

func (h *Hub) add(c *eventConn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.conns[c.user] == nil {
		h.conns[c.user] = map[*eventConn]struct{}{}
	}
	h.conns[c.user][c] = struct{}{}
}

func (h *Hub) remove(c *eventConn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.conns[c.user], c)
	if len(h.conns[c.user]) == 0 {
		delete(h.conns, c.user)
	}
}

// eventConn is one connected device. An idle one costs one goroutine (its
// reader): a writer goroutine runs only while there is something to send.
type eventConn struct {
	user string
	ws   *websocket.Conn
	ctx  context.Context
	drop context.CancelFunc

	mu      sync.Mutex
	live    bool
	sent    uint64
	held    [][]*chat.Event // live events that came while replaying
	queue   [][]*chat.Event // waiting for the writer
	ping    bool            // a ping is due
	pong    bool            // the device pinged: a pong frame is due
	writing bool
}

func (c *eventConn) push(cursor uint64, evs []*chat.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.live {
		c.held = append(c.held, evs)
		return
	}
	c.send(cursor, evs)
}

// send queues one cursor's events; the caller holds c.mu.
func (c *eventConn) send(cursor uint64, evs []*chat.Event) {
	if cursor <= c.sent || c.ctx.Err() != nil {
		// Once dropped, nothing more may be written: an event after a
		// dropped one would move the device's cursor past the gap.
		return
	}
	if len(c.queue) >= eventQueue {
		c.drop() // too slow: it will resume from its cursor
		return
	}
	c.queue = append(c.queue, evs)
	c.sent = cursor
	c.kick()
}

func (c *eventConn) pushEphemeral(ev *chat.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.live && len(c.queue) < eventQueue { // typing is best effort
		c.queue = append(c.queue, []*chat.Event{ev})
		c.kick()
	}
}

func (c *eventConn) pingDue() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.live {
		c.ping = true
		c.kick()
	}
}

// pongDue answers a device's ping frame.
func (c *eventConn) pongDue() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pong = true
	c.kick()
}

// kick starts the writer if it is not running; the caller holds c.mu.
func (c *eventConn) kick() {
	if !c.writing && c.ctx.Err() == nil {
		c.writing = true
		go c.write()
	}
}

// write sends what is queued, then exits.
func (c *eventConn) write() {
	for {
		c.mu.Lock()
		ping, pong := c.ping, c.pong
		var evs []*chat.Event
		if len(c.queue) > 0 {
			evs = c.queue[0]
			c.queue[0] = nil
			c.queue = c.queue[1:]
		}
		c.ping, c.pong = false, false
		if evs == nil && !ping && !pong {
			c.writing = false
			c.queue = nil // let an emptied backing array go
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		if c.ctx.Err() != nil {
			c.mu.Lock()
			c.writing, c.queue = false, nil
			c.mu.Unlock()
			return
		}
		if err := c.writeDue(ping, pong, evs); err != nil {
			c.drop()
		}
	}
}

// writeDue sends a pong the device asked for, then one cursor's events or,
// with none, a ping: events tell the device as well that its node lives.
func (c *eventConn) writeDue(ping, pong bool, evs []*chat.Event) error {
	if pong {
		if err := writeJSON(c.ctx, c.ws, frame{Type: "pong"}); err != nil {
			return err
		}
	}
	if evs != nil {
		return writeJSON(c.ctx, c.ws, frameOf(evs))
	}
	if !ping {
		return nil
	}
	pctx, cancel := context.WithTimeout(c.ctx, writeTimeout)
	defer cancel()
	return c.ws.Ping(pctx)
}

// goLive sends what was held while replaying and switches to live pushes.
func (c *eventConn) goLive() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.live = true
	for _, evs := range c.held {
		c.send(evs[0].Cursor, evs)
	}
	c.held = nil
}

// frame is what the event stream sends: the events of one cursor together,
// so a device that saw a frame saw all of its cursor; or an ephemeral
// typing indicator (no cursor).
type frame struct {
	Type           string        `json:"type"` // "events", "typing" or "pong"
	Cursor         uint64        `json:"cursor,omitempty"`
	Events         []*chat.Event `json:"events,omitempty"`
	ConversationID string        `json:"conversation_id,omitempty"`
	UserID         string        `json:"user_id,omitempty"`
}

func frameOf(evs []*chat.Event) frame {
	if len(evs) == 1 && evs[0].Type == chat.EvTyping {
		return frame{Type: chat.EvTyping, ConversationID: evs[0].ConversationID, UserID: evs[0].UserID}
	}
	return frame{Type: "events", Cursor: evs[0].Cursor, Events: evs}
}

// wsProtocol is the event stream's subprotocol. A browser, which cannot
// set an Authorization header on a WebSocket, offers it together with
// wsBearerPrefix+token: "Sec-WebSocket-Protocol: superapp.v1,
// superapp.bearer.<access token>". The node answers superapp.v1 only.
const (
	wsProtocol     = "superapp.v1"
	wsBearerPrefix = "superapp.bearer."
)

// wsBearer returns the access token a WebSocket handshake offers as a
// subprotocol.
func wsBearer(r *http.Request) (string, bool) {
	for _, h := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(h, ",") {
			if tok, ok := strings.CutPrefix(strings.TrimSpace(p), wsBearerPrefix); ok && tok != "" {
				return tok, true
			}
		}
	}
	return "", false
}

// wsOrigins are the browser origins (host patterns) that may open the
// event stream besides the node's own host: the configured ones and every
// DC's, whose web app moves here when its own DC fails.
func (s *Server) wsOrigins() []string {
	out := slices.Clone(s.cfg.WSOrigins)
	for _, o := range s.AppOrigins() {
		if u, err := url.Parse(o); err == nil {
			out = append(out, u.Host)
		}
	}
	return out
}

// typingFrame is what a device sends while its user types, or a ping
// ("ping"): a browser cannot send WebSocket pings, so it asks with a frame
// and the node answers {"type":"pong"}.
type typingFrame struct {
	Type           string `json:"type"`
	ConversationID string `json:"conversation_id"`
}

func (s *Server) events(c *call) error {
	cursor, err := uintParam(c, "cursor", 0)
	if err != nil {
		return err
	}
	ws, err := websocket.Accept(c.w, c.r, &websocket.AcceptOptions{OriginPatterns: s.wsOrigins(), Subprotocols: []string{wsProtocol}})
	if err != nil {
		c.wrote, c.status = true, http.StatusBadRequest // Accept answered
		return nil
	}
	c.wrote, c.status = true, http.StatusSwitchingProtocols
	ws.SetReadLimit(4 << 10)
	ctx, cancel := context.WithCancel(s.closing)
	ec := &eventConn{user: c.user.UserID, ws: ws, ctx: ctx, drop: cancel, sent: cursor}
	// Dropped, gone or shutting down: close the socket; the reader ends.
	context.AfterFunc(ctx, func() {
		if s.closing.Err() != nil {
			ws.CloseNow() // shutting down: no handshake to wait for
		} else {
			ws.Close(websocket.StatusTryAgainLater, "resume from your cursor")
		}
	})
	s.hub.add(ec)
	if err := s.replay(ctx, ws, ec, cursor); err != nil {
		s.hub.remove(ec)
		cancel()
		return nil
	}
	// This goroutine's stack grew while replaying; a fresh, small one
	// reads for the rest of the connection's life.
	go s.readFrames(ec)
	return nil
}

// replay sends the feed after cursor, then the events held meanwhile.
func (s *Server) replay(ctx context.Context, ws *websocket.Conn, ec *eventConn, cursor uint64) error {
	for {
		evs, next, more := s.cfg.Chat.State().Sync(ec.user, cursor, maxSyncPage)
		for len(evs) > 0 {
			n := 1
			for n < len(evs) && evs[n].Cursor == evs[0].Cursor {
				n++
			}
			if err := writeJSON(ctx, ws, frameOf(evs[:n])); err != nil {
				return err
			}
			evs = evs[n:]
		}
		ec.mu.Lock()
		ec.sent = max(ec.sent, next)
		ec.mu.Unlock()
		cursor = next
		if !more {
			break
		}
	}
	if err := writeJSON(ctx, ws, map[string]any{"type": "sync.done", "cursor": cursor}); err != nil {
		return err
	}
	ec.goLive()
	return nil
}

func writeJSON(ctx context.Context, ws *websocket.Conn, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	return ws.Write(wctx, websocket.MessageText, b)
}

// readFrames reads what the device sends (typing) until it goes away.
func (s *Server) readFrames(ec *eventConn) {
	defer s.hub.remove(ec)
	defer ec.drop()
	for {
		_, b, err := ec.ws.Read(ec.ctx)
		if err != nil {
			return
		}
		var f typingFrame
		if json.Unmarshal(b, &f) != nil {
			continue
		}
		if f.Type == "ping" {
			ec.pongDue()
			continue
		}
		if f.Type != chat.EvTyping {
			continue
		}
		if s.cfg.Chat.State().IsMember(f.ConversationID, ec.user) && s.cfg.Typing != nil {
			s.cfg.Typing(f.ConversationID, ec.user)
		}
	}
}

// pings asks every live connection, every pingInterval, for a pong: a
// device that stopped answering is dropped, and every device hears from
// its node at least that often.
func (s *Server) pings() {
	t := time.NewTicker(pingInterval)
	defer t.Stop()
	for {
		select {
		case <-s.closing.Done():
			return
		case <-t.C:
			s.hub.each(func(c *eventConn) { c.pingDue() })
		}
	}
}

// DeliverTyping pushes a typing indicator, from any node, to this node's
// devices of the conversation's members.
func (s *Server) DeliverTyping(convID, user string) {
	members := s.cfg.Chat.State().Members(convID)
	if members == nil {
		return
	}
	s.hub.Typing(members, &chat.Event{Type: chat.EvTyping, ConversationID: convID, UserID: user, At: time.Now().UTC()})
}

// Hub is the gateway's event hub, for the node to wire to chat.
func (s *Server) Hub() *Hub { return s.hub }
