package cmdlog

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"superapp/internal/apperr"
	"superapp/internal/store/storetest"
)

// memLog is an in-memory stream that applies each entry to a machine, the
// way a node's follower does, with JetStream's Nats-Msg-Id dedupe window
// switched off so the machine's own id index is what is tested.
type memLog struct {
	mu      sync.Mutex
	entries [][]byte
	m       *Machine
	fail    error
}

func (l *memLog) Append(_ context.Context, _, _ string, data []byte) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fail != nil {
		return 0, l.fail
	}
	l.entries = append(l.entries, data)
	seq := uint64(len(l.entries))
	go l.m.Apply(seq, data, 0)
	return seq, nil
}

type counter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counter) apply(_ uint64, e *Envelope) (any, *apperr.Error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var in struct{ Key string }
	_ = json.Unmarshal(e.Data, &in)
	if in.Key == "" {
		return nil, apperr.Field("key", "key is required")
	}
	c.n[in.Key]++
	return map[string]int{"count": c.n[in.Key]}, nil
}

func newTestSubmitter(t testing.TB) (*Submitter, *counter, *memLog) {
	c := &counter{n: map[string]int{}}
	m := NewMachine("TEST", storetest.Space(t, "TEST"), c.apply, slog.New(slog.NewTextHandler(io.Discard, nil)))
	l := &memLog{m: m}
	return &Submitter{Log: l, Machine: m, Subject: "test", Now: time.Now}, c, l
}

func TestSubmitAppliesOnceAndReplays(t *testing.T) {
	s, c, l := newTestSubmitter(t)
	ctx := context.Background()
	w := Write{ID: "u1/k1", Hash: "h"}
	r1, err := s.Submit(ctx, w, "inc", "u1", map[string]string{"Key": "a"})
	if err != nil || r1.Replayed {
		t.Fatalf("first: %v %+v", err, r1)
	}
	r2, err := s.Submit(ctx, w, "inc", "u1", map[string]string{"Key": "a"})
	if err != nil || !r2.Replayed || string(r2.Value) != string(r1.Value) || r2.Position != r1.Position {
		t.Fatalf("replay: %v %+v", err, r2)
	}
	if c.n["a"] != 1 || len(l.entries) != 1 {
		t.Fatalf("applied %d times, %d entries", c.n["a"], len(l.entries))
	}
	// The same id appended twice (a retry after a lost ack, past the
	// engine's dedupe window) is applied once.
	seq, _ := l.Append(ctx, "", "", l.entries[0])
	if err := l.m.WaitApplied(ctx, seq); err != nil {
		t.Fatal(err)
	}
	if c.n["a"] != 1 {
		t.Fatalf("duplicate entry applied: %d", c.n["a"])
	}
	// Same id, another request: refused.
	_, err = s.Submit(ctx, Write{ID: "u1/k1", Hash: "other"}, "inc", "u1", map[string]string{"Key": "b"})
	if apperr.From(err).Code != apperr.IdemReused {
		t.Fatalf("reused key: %v", err)
	}
	// A refused command does not use up its id: corrected, it applies.
	_, err = s.Submit(ctx, Write{ID: "u1/k2"}, "inc", "u1", map[string]string{})
	if apperr.From(err).Field != "key" {
		t.Fatalf("outcome error: %v", err)
	}
	r3, err := s.Submit(ctx, Write{ID: "u1/k2"}, "inc", "u1", map[string]string{"Key": "c"})
	if err != nil || r3.Replayed || c.n["c"] != 1 {
		t.Fatalf("corrected retry: %v %+v", err, r3)
	}
}

func TestSubmitUnavailable(t *testing.T) {
	s, c, l := newTestSubmitter(t)
	l.fail = errors.New("no quorum")
	_, err := s.Submit(context.Background(), Write{}, "inc", "u", map[string]string{"Key": "a"})
	if e := apperr.From(err); e.Code != apperr.Unavailable || e.RetryAfter == 0 {
		t.Fatalf("got %v", err)
	}
	if c.n["a"] != 0 {
		t.Fatal("applied without a commit")
	}
}

func TestMachineOrderAndPanics(t *testing.T) {
	var got []uint64
	m := NewMachine("T", storetest.Space(t, "T"), func(seq uint64, e *Envelope) (any, *apperr.Error) {
		got = append(got, seq)
		if e.Kind == "boom" {
			panic("bad apply")
		}
		return nil, nil
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	env := func(id, kind string) []byte {
		b, _ := json.Marshal(Envelope{ID: id, Kind: kind})
		return b
	}
	m.Apply(1, env("a", "x"), 0)
	m.Apply(2, env("b", "boom"), 0)
	m.Apply(2, env("c", "x"), 0) // redelivery of an applied position: ignored
	m.Apply(3, []byte("not json"), 0)
	m.Apply(4, env("d", "x"), 0)
	if len(got) != 3 || got[2] != 4 || m.Applied() != 4 {
		t.Fatalf("applied %v, at %d", got, m.Applied())
	}
	if o, _ := m.Outcome("b"); o.Err == nil || o.Err.Code != apperr.Internal {
		t.Fatalf("panic outcome: %+v", o)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := m.WaitApplied(ctx, 5); err == nil {
		t.Fatal("waited for an unapplied position")
	}
	if ok, _ := m.CaughtUp(); ok {
		t.Fatal("caught up before the stream tail was known")
	}
	m.SetTarget(9)
	if ok, _ := m.CaughtUp(); ok {
		t.Fatal("caught up below target")
	}
}

func TestPositions(t *testing.T) {
	ps, err := ParsePositions("SOCIAL:7, IDENTITY:42,IDENTITY:40")
	if err != nil || ps["IDENTITY"] != 42 || ps["SOCIAL"] != 7 || ps.String() != "IDENTITY:42,SOCIAL:7" {
		t.Fatalf("%v %v %q", ps, err, ps.String())
	}
	for _, bad := range []string{"X", "X:", ":1", "X:-1", "X:1,,", "X:abc"} {
		if _, err := ParsePositions(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestSameIDTwiceInOneEntry: a command id that comes twice in one entry
// (two appends that group commit put together) is applied once.
func TestSameIDTwiceInOneEntry(t *testing.T) {
	s, c, _ := newTestSubmitter(t)
	one, _ := json.Marshal(Envelope{ID: "u/k", Kind: "inc", Data: json.RawMessage(`{"Key":"a"}`)})
	entry := []byte("[" + string(one) + "," + string(one) + "]")
	s.Machine.Apply(1, entry, 0)
	s.Machine.Apply(2, entry, 0)
	if c.n["a"] != 1 {
		t.Fatalf("applied %d times", c.n["a"])
	}
	if o, ok := s.Machine.Outcome("u/k"); !ok || o.Seq != 1 {
		t.Fatalf("outcome %+v %v", o, ok)
	}
}
