// Package streamtest writes a stream's entries and applies them through a
// cmdlog.Machine on a real store, for the features' tests and benchmarks:
// a node's life (apply, stop, restart on the same store) without a log.
//
// It is apart from storetest because cmdlog's own tests open stores with
// storetest, so storetest must not import cmdlog. It must never import a
// feature package: every feature's tests import it.
package streamtest

import (
	"encoding/json"
	"io"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"superapp/internal/cmdlog"
	"superapp/internal/store"
)

// Machine is the machine of stream over sp, as a feature's service builds
// it, logging nothing.
func Machine(stream string, sp *store.Space, apply cmdlog.ApplyFunc) *cmdlog.Machine {
	return cmdlog.NewMachine(stream, sp, apply, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// Restore restores m (cmdlog.Machine.Restore), as a node does at start,
// and fails the test unless it resumes after entry applied (0: a new
// store).
func Restore(tb testing.TB, m *cmdlog.Machine, applied uint64) {
	tb.Helper()
	if err := m.Restore(); err != nil {
		tb.Fatal(err)
	}
	if got := m.Applied(); got != applied {
		tb.Fatalf("%s restored at %d, want %d", m.Name(), got, applied)
	}
}

// Apply applies entries through m, the first at sequence first.
func Apply(m *cmdlog.Machine, first uint64, entries [][]byte) {
	for i, e := range entries {
		m.Apply(first+uint64(i), e, 0)
	}
}

// SameDigest fails the test unless a and b applied the same entries the
// same way: the same position and digest.
func SameDigest(tb testing.TB, a, b *cmdlog.Machine) {
	tb.Helper()
	seq1, d1 := a.Digest()
	seq2, d2 := b.Digest()
	if seq1 != seq2 || d1 != d2 {
		tb.Fatalf("digests differ: %d %s vs %d %s", seq1, d1, seq2, d2)
	}
}

// Entry is an entry of one command, with a fresh random id (as a
// service's Submit makes it).
func Entry(tb testing.TB, kind, actor string, at time.Time, data any) []byte {
	tb.Helper()
	raw, err := json.Marshal(data)
	if err != nil {
		tb.Fatal(err)
	}
	b, err := json.Marshal(&cmdlog.Envelope{ID: cmdlog.NewID(), Kind: kind, Actor: actor, At: at, Data: raw})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// Batch is one entry holding the commands of entries, each an entry of
// one command, in order (as a submitter batches them).
func Batch(entries ...[]byte) []byte {
	raws := make([]json.RawMessage, len(entries))
	for i, e := range entries {
		raws[i] = e
	}
	b, _ := json.Marshal(raws)
	return b
}

// Script writes a stream's entries: its commands have the ids "e1", "e2",
// … in the order they are written, so that a test can ask for their
// outcomes, and the clock At, which the test moves.
type Script struct {
	At time.Time
	// Step, when set, moves At forward before each command.
	Step time.Duration
	// Entries is what Add and Together wrote.
	Entries [][]byte
	n       int
	queued  []cmdlog.Envelope
}

// Command is the next command.
func (sc *Script) Command(kind, actor string, data any) cmdlog.Envelope {
	raw, err := json.Marshal(data)
	if err != nil {
		panic("streamtest: encode " + kind + ": " + err.Error())
	}
	sc.n++
	sc.At = sc.At.Add(sc.Step)
	return cmdlog.Envelope{ID: "e" + strconv.Itoa(sc.n), Kind: kind, Actor: actor, At: sc.At, Data: raw}
}

// Entry is the next command as an entry of its own, not kept in Entries.
func (sc *Script) Entry(kind, actor string, data any) []byte {
	b, _ := json.Marshal(sc.Command(kind, actor, data))
	return b
}

// Add adds the next command to Entries as an entry of its own.
func (sc *Script) Add(kind, actor string, data any) {
	sc.Entries = append(sc.Entries, sc.Entry(kind, actor, data))
}

// Queue holds the next command for the entry Together adds.
func (sc *Script) Queue(kind, actor string, data any) {
	sc.queued = append(sc.queued, sc.Command(kind, actor, data))
}

// Together adds the queued commands to Entries as one entry.
func (sc *Script) Together() {
	b, _ := json.Marshal(sc.queued)
	sc.Entries, sc.queued = append(sc.Entries, b), nil
}

// Feeder applies each command it is given through M as an entry of its
// own, at the sequence after M's last: for benchmarks, which keep no
// history.
type Feeder struct {
	Script
	M *cmdlog.Machine
}

// Apply applies the next command.
func (f *Feeder) Apply(kind, actor string, data any) {
	f.M.Apply(f.M.Applied()+1, f.Entry(kind, actor, data), 0)
}
