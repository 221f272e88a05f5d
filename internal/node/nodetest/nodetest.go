// Package nodetest starts a real single superapp node for tests: embedded
// NATS with JetStream on a temp dir, HTTP on a free loopback port.
package nodetest

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"superapp/internal/engine"
	"superapp/internal/node"
)

// Clock is a settable clock for tests.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// NewClock returns a clock at the current time.
func NewClock() *Clock { return &Clock{t: time.Now()} }

// Start runs a node until the test ends and returns it once it is ready.
// A nil now uses the wall clock.
func Start(tb testing.TB, now func() time.Time) *node.Node {
	tb.Helper()
	return StartConfig(tb, node.Config{Now: now})
}

// StartConfig is Start with more of the node's config given; the engine,
// HTTP address and logger are filled in.
func StartConfig(tb testing.TB, cfg node.Config) *node.Node {
	tb.Helper()
	cfg.Engine = engine.Config{DC: "dc1", DataDir: tb.TempDir()}
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	n, err := node.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := n.Run(ctx); err != nil {
			tb.Errorf("node: %v", err)
		}
	}()
	tb.Cleanup(func() {
		cancel()
		<-done
		n.Close()
	})
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(URL(n) + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return n
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	tb.Fatal("node not ready after 30s")
	return nil
}

// URL is the node's HTTP base URL.
func URL(n *node.Node) string { return "http://" + n.HTTPAddr() }
