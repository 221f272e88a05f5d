package client

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"
)

// Frame is one message of the event stream: the events of one cursor
// ("events"), a typing indicator ("typing"), or the end of the replay of
// missed events ("sync.done").
type Frame struct {
	Type           string  `json:"type"`
	Cursor         uint64  `json:"cursor,omitempty"`
	Events         []Event `json:"events,omitempty"`
	ConversationID string  `json:"conversation_id,omitempty"`
	UserID         string  `json:"user_id,omitempty"`
}

// Stream opens the event stream (GET /v1/events) from cursor and delivers
// its frames until ctx ends. When a connection drops or its DC dies, it
// reconnects, failing over between endpoints, and resumes after the last
// cursor it delivered: no event is skipped and none delivered twice. The
// channel is closed when ctx ends.
func (c *Client) Stream(ctx context.Context, cursor uint64) <-chan Frame {
	out := make(chan Frame, 64)
	go func() {
		defer close(out)
		backoff := 50 * time.Millisecond
		for ctx.Err() == nil {
			c.mu.Lock()
			idx := c.preferred
			c.mu.Unlock()
			got, err := c.streamOnce(ctx, c.endpoints[idx], &cursor, out)
			if ctx.Err() != nil {
				return
			}
			if err != nil && !got {
				// This endpoint failed before giving anything: try the next.
				c.mu.Lock()
				if c.preferred == idx {
					c.preferred = (idx + 1) % len(c.endpoints)
				}
				c.mu.Unlock()
			}
			if got {
				backoff = 50 * time.Millisecond
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 2*time.Second)
		}
	}()
	return out
}

// The event stream's liveness check (see the package doc).
const (
	streamPing        = time.Second
	streamPingTimeout = 2 * time.Second
)

func (c *Client) streamOnce(ctx context.Context, base string, cursor *uint64, out chan<- Frame) (bool, error) {
	u := "ws" + strings.TrimPrefix(base, "http") + "/v1/events?cursor=" + strconv.FormatUint(*cursor, 10)
	h := http.Header{}
	c.mu.Lock()
	h.Set("Authorization", "Bearer "+c.access)
	c.mu.Unlock()
	// A silent DC accepts the connection (its kernel does) and never
	// answers the upgrade: wait a few hedge delays, not the HTTP timeout.
	dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	ws, _, err := websocket.Dial(dctx, u, &websocket.DialOptions{HTTPHeader: h, HTTPClient: c.hc})
	cancel()
	if err != nil {
		return false, err
	}
	defer ws.CloseNow()
	ws.SetReadLimit(16 << 20)
	// The stream pings its DC every second; one unanswered for two
	// seconds means the DC went silent: close, and move on.
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		t := time.NewTicker(streamPing)
		defer t.Stop()
		for {
			select {
			case <-sctx.Done():
				return
			case <-t.C:
			}
			pctx, cancel := context.WithTimeout(sctx, streamPingTimeout)
			err := ws.Ping(pctx)
			cancel()
			if err != nil && sctx.Err() == nil {
				ws.CloseNow()
				return
			}
		}
	}()
	got := false
	for {
		_, b, err := ws.Read(sctx)
		if err != nil {
			return got, err
		}
		var f Frame
		if err := json.Unmarshal(b, &f); err != nil {
			return got, err
		}
		got = true
		if f.Type == "events" {
			if f.Cursor <= *cursor {
				continue
			}
			*cursor = f.Cursor
		}
		select {
		case out <- f:
		case <-sctx.Done():
			return got, ctx.Err()
		}
	}
}
