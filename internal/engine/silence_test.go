package engine

import (
	"slices"
	"testing"
	"time"
)

// TestSilenceWatch: a peer counts as silent once nothing came from it for
// silentAfter while another peer kept talking; once per silence; never
// when this node itself was the one stalled, or when nobody else talks.
func TestSilenceWatch(t *testing.T) {
	t0 := time.Unix(0, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	var w silenceWatch
	var got []string
	// dc2 talks all along; dc3 stops after 100 ms.
	for ms := 0; ms <= 1000; ms += 100 {
		dc3 := int64(min(ms, 100))
		if s := w.observe(at(ms), map[string]int64{"dc2": int64(ms), "dc3": dc3}); len(s) > 0 {
			if got != nil {
				t.Fatalf("at %d ms dc3 reported silent again: %v", ms, s)
			}
			got = s
			if ms < 100+int(silentAfter/time.Millisecond) {
				t.Fatalf("silent after %d ms of quiet, want at least %v", ms-100, silentAfter)
			}
		}
	}
	if !slices.Equal(got, []string{"dc3"}) {
		t.Fatalf("silent peers %v, want [dc3]", got)
	}
	// dc3 talks again, then goes quiet again: a second silence.
	if s := w.observe(at(1100), map[string]int64{"dc2": 1100, "dc3": 200}); len(s) > 0 {
		t.Fatalf("dc3 talked and is still silent: %v", s)
	}
	got = nil
	for ms := 1200; ms <= 1700; ms += 100 {
		got = append(got, w.observe(at(ms), map[string]int64{"dc2": int64(ms), "dc3": 200})...)
	}
	if !slices.Equal(got, []string{"dc3"}) {
		t.Fatalf("second silence: %v, want [dc3]", got)
	}

	// Both peers quiet: this node may be the one not reading. Nothing.
	var both silenceWatch
	for ms := 0; ms <= 1000; ms += 100 {
		if s := both.observe(at(ms), map[string]int64{"dc2": 5, "dc3": 7}); len(s) > 0 {
			t.Fatalf("at %d ms with every peer quiet: %v", ms, s)
		}
	}

	// This node stalled (its checks came 900 ms apart): what it counted
	// across the stall proves nothing.
	var stalled silenceWatch
	stalled.observe(at(0), map[string]int64{"dc2": 0, "dc3": 0})
	if s := stalled.observe(at(900), map[string]int64{"dc2": 10, "dc3": 0}); len(s) > 0 {
		t.Fatalf("after this node's own stall: %v", s)
	}

	// A peer whose routes closed is forgotten (campaignAfterLoss's case).
	var gone silenceWatch
	gone.observe(at(0), map[string]int64{"dc2": 0, "dc3": 0})
	for ms := 100; ms <= 1000; ms += 100 {
		if s := gone.observe(at(ms), map[string]int64{"dc2": int64(ms)}); len(s) > 0 {
			t.Fatalf("a peer without routes reported silent: %v", s)
		}
	}
}
