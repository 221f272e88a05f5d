package chat

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"superapp/internal/cmdlog"
	"superapp/internal/store"
)

// node is one node's chat service over a store, fed entries by hand the
// way the engine's follower feeds it.
type node struct {
	svc *Service
	st  *State
	m   *cmdlog.Machine
	seq uint64
}

// memBlobs is an object store in memory.
type memBlobs struct {
	mu   sync.Mutex
	objs map[string][]byte
}

func (b *memBlobs) PutObject(_ context.Context, bucket, name, _ string, r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.objs == nil {
		b.objs = map[string][]byte{}
	}
	b.objs[bucket+"/"+name] = data
	return nil
}

func (b *memBlobs) GetObject(_ context.Context, bucket, name string) (io.ReadCloser, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	data, ok := b.objs[bucket+"/"+name]
	if !ok {
		return nil, fmt.Errorf("no object %s", name)
	}
	return io.NopCloser(bytes.NewReader(data)), nil
}

// newNode builds the chat service on db and restores its machine to the
// position db holds, as a node does at start.
func newNode(tb testing.TB, db *store.DB) *node {
	tb.Helper()
	svc := New(Config{Store: db, Blobs: &memBlobs{}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		UserExists: func(string) bool { return true }, Blocked: func(a, b string) bool { return false }})
	if err := svc.Machine().Restore(); err != nil {
		tb.Fatal(err)
	}
	return &node{svc: svc, st: svc.State(), m: svc.Machine(), seq: svc.Machine().Applied()}
}

// entry applies envs as the next stream entry and returns their outcomes.
func (n *node) entry(tb testing.TB, envs ...cmdlog.Envelope) []cmdlog.Outcome {
	tb.Helper()
	data, err := json.Marshal(envs)
	if err != nil {
		tb.Fatal(err)
	}
	n.apply(data)
	outs := make([]cmdlog.Outcome, len(envs))
	for i, e := range envs {
		o, ok := n.m.Outcome(e.ID)
		if !ok {
			tb.Fatalf("entry %d: no outcome for %s", n.seq, e.ID)
		}
		outs[i] = o
	}
	return outs
}

// apply applies one encoded entry at the next position.
func (n *node) apply(data []byte) {
	n.seq++
	n.m.Apply(n.seq, data, 0)
}

var t0 = time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)

var cmdN int

// cmd builds a command envelope; at is minutes after t0.
func cmd(kind, actor string, at int, data any) cmdlog.Envelope {
	raw, err := json.Marshal(data)
	if err != nil {
		panic(err)
	}
	cmdN++
	return cmdlog.Envelope{ID: fmt.Sprintf("c%d", cmdN), Kind: kind, Actor: actor, At: t0.Add(time.Duration(at) * time.Minute), Data: raw}
}
