package ledger

import (
	"strconv"
	"sync/atomic"

	"superapp/internal/store"
)

// testLedger is a ledger on a real store that applies each call in a batch
// of its own, as a stream entry does, and reads transfers back from what
// was committed.
type testLedger struct {
	*Ledger
	space *store.Space
}

var spaces atomic.Int64

// newTestLedger returns an empty ledger in a space of its own of db.
func newTestLedger(db *store.DB) *testLedger {
	space := db.Space("L" + strconv.FormatInt(spaces.Add(1), 10))
	return &testLedger{Ledger: New(space), space: space}
}

func (l *testLedger) CreateAccounts(now int64, as []Account) []string {
	tx := l.space.Begin()
	defer tx.Commit()
	return l.Ledger.CreateAccounts(now, as)
}

func (l *testLedger) CreateTransfers(now int64, ts []Transfer) []string {
	tx := l.space.Begin()
	defer tx.Commit()
	return l.Ledger.CreateTransfers(now, ts)
}

func (l *testLedger) Transfer(id ID) (Transfer, bool) { return l.Ledger.Transfer(l.space, id) }

func (l *testLedger) PendingStateOf(id ID) (PendingState, bool) {
	return l.Ledger.PendingStateOf(l.space, id)
}

// restart returns a new ledger on the same space, loaded from it, as a
// restarted node's.
func (l *testLedger) restart() *testLedger {
	re := &testLedger{Ledger: New(l.space), space: l.space}
	re.Load()
	return re
}
