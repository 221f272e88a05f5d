package client

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// keys records the Idempotency-Key of every request a server got.
type keys struct {
	mu  sync.Mutex
	got []string
}

func (k *keys) add(r *http.Request) {
	k.mu.Lock()
	k.got = append(k.got, r.Header.Get("Idempotency-Key"))
	k.mu.Unlock()
}

func (k *keys) list() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]string(nil), k.got...)
}

// TestHedgesPastASilentDC: the preferred DC takes the request and never
// answers (frozen); the client sends it again, with the same key, to the
// next DC, returns that answer, and prefers that DC from then on.
func TestHedgesPastASilentDC(t *testing.T) {
	var silentKeys, liveKeys keys
	release := make(chan struct{})
	silent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		silentKeys.add(r)
		select { // frozen until the test ends or the client gives up
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer silent.Close()
	defer close(release)
	live := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		liveKeys.add(r)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	defer live.Close()

	c := New([]string{silent.URL, live.URL})
	// Well under one attempt's timeout (10 s): only a hedge answers in time.
	ctx, cancel := context.WithTimeout(context.Background(), attemptTimeout/2)
	defer cancel()
	var out struct{ OK bool }
	if err := c.Do(ctx, Request{Method: "POST", Path: "/v1/things", Body: map[string]int{"n": 1}, IdempotencyKey: "k-1"}, &out); err != nil || !out.OK {
		t.Fatalf("hedged write: %v %+v", err, out)
	}
	if s, l := silentKeys.list(), liveKeys.list(); len(s) != 1 || len(l) != 1 || s[0] != "k-1" || l[0] != "k-1" {
		t.Fatalf("keys: silent DC got %v, live DC got %v; want one request each with k-1", s, l)
	}
	if c.Endpoint() != live.URL {
		t.Fatalf("prefers %s after the silent DC was hedged past", c.Endpoint())
	}
}

// TestAHedgeRefusedMovesOnAtOnce: the preferred DC is silent, the hedge's
// DC answers 503 (it has no leader for the stream yet): the third DC is
// asked at once, not after the next hedge delay (a second, by then). A
// drill saw chat writes wait 1.25 s for that.
func TestAHedgeRefusedMovesOnAtOnce(t *testing.T) {
	release := make(chan struct{})
	silent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer silent.Close()
	defer close(release)
	var mu sync.Mutex
	var refusedAt, askedAt time.Time
	busy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		refusedAt = time.Now()
		mu.Unlock()
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer busy.Close()
	var liveKeys keys
	live := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		askedAt = time.Now()
		mu.Unlock()
		liveKeys.add(r)
		_, _ = w.Write([]byte(`{}`))
	}))
	defer live.Close()

	c := New([]string{silent.URL, busy.URL, live.URL})
	ctx, cancel := context.WithTimeout(context.Background(), attemptTimeout/2)
	defer cancel()
	if err := c.Do(ctx, Request{Method: "POST", Path: "/v1/things", IdempotencyKey: "k-3"}, nil); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if l := liveKeys.list(); len(l) != 1 || l[0] != "k-3" {
		t.Fatalf("live DC got %v, want one request with k-3", l)
	}
	// Asked at once after the refusal: well before the next hedge.
	if refusedAt.IsZero() || askedAt.Sub(refusedAt) >= hedgeMax/2 {
		t.Fatalf("the third DC was asked %v after the second refused; want at once", askedAt.Sub(refusedAt))
	}
}

// TestFailsOverAtOnceAndStopsOnARefusal: a 503 moves the request to the
// next DC without waiting; a 4xx refusal is the answer, not tried
// elsewhere.
func TestFailsOverAtOnceAndStopsOnARefusal(t *testing.T) {
	var downKeys, upKeys keys
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		downKeys.add(r)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer down.Close()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		upKeys.add(r)
		if r.URL.Path == "/v1/bad" {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":{"code":"invalid","message":"no"}}`))
			return
		}
		_, _ = w.Write([]byte(`{}`))
	}))
	defer up.Close()

	c := New([]string{down.URL, up.URL})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Do(ctx, Request{Method: "POST", Path: "/v1/good", IdempotencyKey: "k-2"}, nil); err != nil {
		t.Fatal(err)
	}
	if d, u := downKeys.list(), upKeys.list(); len(d) != 1 || len(u) != 1 || d[0] != u[0] {
		t.Fatalf("keys: down %v, up %v", d, u)
	}
	err := c.Do(ctx, Request{Method: "POST", Path: "/v1/bad"}, nil)
	if Code(err) != "invalid" {
		t.Fatalf("refusal: %v", err)
	}
	if d := downKeys.list(); len(d) != 1 {
		t.Fatalf("a refusal was tried again elsewhere: the down DC got %d requests", len(d))
	}
}
