package cmdlog

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

func TestSoon(t *testing.T) {
	// A record applied a moment after the call is found.
	var there atomic.Bool
	time.AfterFunc(120*time.Millisecond, func() { there.Store(true) })
	v, ok := Soon(context.Background(), func() (string, bool) { return "pr_1", there.Load() })
	if !ok || v != "pr_1" {
		t.Fatalf("Soon = %q %v, want the record applied meanwhile", v, ok)
	}
	// One that never comes is not found, within the caller's deadline.
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	if _, ok := Soon(ctx, func() (string, bool) { return "", false }); ok {
		t.Fatal("Soon found a record that never was")
	}
	if ctx.Err() == nil {
		t.Fatal("Soon gave up before the caller's deadline")
	}
}
