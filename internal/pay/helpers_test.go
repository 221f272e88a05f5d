package pay

import (
	"sync/atomic"
	"testing"

	"superapp/internal/apperr"
	"superapp/internal/cmdlog"
	"superapp/internal/store/storetest"
)

// newTestState returns an empty state on a store of its own.
func newTestState(tb testing.TB) *State { return NewState(storetest.Space(tb, Stream)) }

// entries numbers the entries applyEntry makes: increasing, as a stream's.
var entries atomic.Uint64

// applyEntry applies one command as the only one of a stream entry: in
// the entry's batch, committed after, as a machine does; it answers what
// Apply answers.
func applyEntry(st *State, e *cmdlog.Envelope) (any, *apperr.Error) {
	seq := entries.Add(1)
	e.Cursor = cmdlog.CursorOf(seq, 0)
	var v any
	var err *apperr.Error
	inEntry(st, func() { v, err = st.Apply(seq, e) })
	return v, err
}

// inEntry runs fn in a batch of its own, as if applying an entry: set-up
// that calls the ledger directly.
func inEntry(st *State, fn func()) {
	tx := st.space.Begin()
	fn()
	tx.Commit()
	tx.RunAfterCommit()
}
