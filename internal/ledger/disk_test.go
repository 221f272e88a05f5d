package ledger

import (
	"reflect"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// TestStoredRoundTrip: what the ledger writes for a transfer or an account
// reads back as it was, user data that no binary record holds included.
func TestStoredRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		long := func(s string) string {
			if rapid.Bool().Draw(t, "long") {
				return s + strings.Repeat("é\x00", rapid.IntRange(1, 40).Draw(t, "extra"))
			}
			return s
		}
		tr := genTransfer(t)
		tr.UserData = long(tr.UserData)
		r := recordOf(&tr)
		r.state = PendingState(rapid.IntRange(0, 4).Draw(t, "state"))
		// A stored transfer names its accounts by number.
		l := New(nil)
		r.dnum, r.cnum = numberFor(l, tr.DebitAccountID), numberFor(l, tr.CreditAccountID)
		var back record
		l.readTransfer(tr.ID, appendStoredTransfer(nil, &r), &back)
		if got := back.transfer(); !reflect.DeepEqual(got, tr) || back.state != r.state {
			t.Fatalf("transfer %+v (%d) came back %+v (%d)", tr, r.state, got, back.state)
		}
		flags, st := storedPendingState(appendStoredTransfer(nil, &r))
		if flags != tr.Flags || st != r.state {
			t.Fatalf("flags %d state %d, want %d %d", flags, st, tr.Flags, r.state)
		}
		a := genAccount(t)
		a.UserData = long(a.UserData)
		if got := decodeStoredAccount(appendStoredAccount(nil, &a)); !reflect.DeepEqual(got, a) {
			t.Fatalf("account %+v came back %+v", a, got)
		}
	})
}

// numberFor numbers an account id as the ledger does when it first writes
// the account, and returns its number.
func numberFor(l *Ledger, id ID) uint32 {
	if id.IsZero() {
		return 0
	}
	for n, known := range l.ids {
		if known == id {
			return uint32(n + 1)
		}
	}
	a := &account{Account: Account{ID: id}}
	l.number(a)
	return a.num
}
