package engine

import (
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

// TestTrimmedPastApplied: a node needs a checkpoint once the stream no
// longer holds the entry after the one it applied, also when a purge left
// the stream empty (its first sequence is then the one after its last).
func TestTrimmedPastApplied(t *testing.T) {
	for _, c := range []struct {
		first, last, applied uint64
		want                 bool
	}{
		{0, 0, 0, false},    // never written
		{1, 10, 0, false},   // untrimmed, nothing applied
		{5, 10, 4, false},   // trimmed up to what it applied
		{5, 10, 3, true},    // entry 4 is gone
		{11, 10, 10, false}, // emptied, everything applied
		{11, 10, 7, true},   // emptied before entries 8-10 were applied
		{20, 30, 25, false}, // ahead of the trim
	} {
		if got := trimmedPastApplied(jetstream.StreamState{FirstSeq: c.first, LastSeq: c.last}, c.applied); got != c.want {
			t.Errorf("first %d last %d applied %d: %v, want %v", c.first, c.last, c.applied, got, c.want)
		}
	}
}
