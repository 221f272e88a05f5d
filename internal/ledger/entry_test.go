package ledger

import (
	"bytes"
	"testing"

	"pgregory.net/rapid"

	"superapp/internal/store"
	"superapp/internal/store/storetest"
)

// calls generates the ledger calls of a test: transfers among accounts
// 1..accounts (numbered ids), fresh ones mostly, retries, pending ones with
// short timeouts, posts and voids of them, linked chains, and now and then
// a few accounts created.
type calls struct {
	accounts int
	next     int
	sent     []Transfer
	pending  []ID
}

func (c *calls) id() ID {
	c.next++
	var id ID
	id[0] = 0x7f
	id[14], id[15] = byte(c.next>>8), byte(c.next)
	return id
}

func acctID(n int) ID {
	var id ID
	id[0] = 0xac
	id[14], id[15] = byte(n>>8), byte(n)
	return id
}

// newAccounts are accounts from..to, every third a wallet that cannot go
// below zero.
func newAccounts(from, to int) []Account {
	var as []Account
	for i := from; i <= to; i++ {
		a := Account{ID: acctID(i), Currency: "KRW"}
		if i%3 == 0 {
			a.Flags = DebitsMustNotExceedCredits
		}
		as = append(as, a)
	}
	return as
}

func (c *calls) transfers(t *rapid.T, max int) []Transfer {
	ts := make([]Transfer, rapid.IntRange(1, max).Draw(t, "n"))
	for i := range ts {
		var tr Transfer
		switch k := rapid.IntRange(0, 19).Draw(t, "kind"); {
		case k < 2 && len(c.sent) > 0: // a retry
			tr = rapid.SampledFrom(c.sent).Draw(t, "retry")
		case k < 5 && len(c.pending) > 0: // resolve a pending one
			tr = Transfer{ID: c.id(), PendingID: rapid.SampledFrom(c.pending).Draw(t, "pid"), Flags: PostPending}
			if rapid.Bool().Draw(t, "void") {
				tr.Flags = VoidPending
			} else if rapid.Bool().Draw(t, "part") {
				tr.Amount = uint64(rapid.IntRange(1, 5).Draw(t, "partial"))
			}
		default:
			dr := rapid.IntRange(1, c.accounts).Draw(t, "dr")
			cr := rapid.IntRange(1, c.accounts).Draw(t, "cr")
			tr = Transfer{ID: c.id(), DebitAccountID: acctID(dr), CreditAccountID: acctID(cr), Currency: "KRW",
				Amount: uint64(rapid.IntRange(1, 9).Draw(t, "amount"))}
			if rapid.IntRange(0, 3).Draw(t, "pending") == 0 {
				tr.Flags, tr.Timeout = Pending, uint32(rapid.IntRange(0, 3).Draw(t, "timeout"))
				c.pending = append(c.pending, tr.ID)
			}
		}
		if rapid.IntRange(0, 5).Draw(t, "link") == 0 {
			tr.Flags |= Linked
		}
		c.sent = append(c.sent, tr)
		ts[i] = tr
	}
	return ts
}

// entryLedger applies calls grouped in entries, as a machine applies an
// entry of several commands: in one batch, committed when the entry ends.
type entryLedger struct {
	*Ledger
	space *store.Space
	tx    *store.Tx
}

func (e *entryLedger) begin()  { e.tx = e.space.Begin() }
func (e *entryLedger) commit() { e.tx.Commit(); e.tx = nil }

// TestEntryOfManyCalls applies the same calls to a ledger whose entries
// hold several calls each and to one whose every call is an entry: the
// same results, and within an entry, the transfers of its earlier calls
// found through the entry's batch as the other ledger finds them
// committed (a transfer id an earlier command of the entry used is taken).
// The grouped ledger also writes its accounts to the journal from the
// first one changed, and restarts now and then.
func TestEntryOfManyCalls(t *testing.T) {
	db := storetest.Open(t)
	rapid.Check(t, func(t *rapid.T) {
		single := newTestLedger(db)
		gl := newTestLedger(db)
		grouped := &entryLedger{Ledger: gl.Ledger, space: gl.space}
		knobs := func(l *Ledger) {
			l.testJournal.min = rapid.IntRange(1, 4).Draw(t, "journalMin")
			l.testJournal.limit = rapid.IntRange(1, 40).Draw(t, "journalLimit")
		}
		knobs(grouped.Ledger)
		c := &calls{accounts: 6}
		now := int64(1e12)
		single.CreateAccounts(now, newAccounts(1, c.accounts))
		grouped.begin()
		grouped.CreateAccounts(now, newAccounts(1, c.accounts))
		grouped.commit()
		for e := range rapid.IntRange(1, 12).Draw(t, "entries") {
			if rapid.IntRange(0, 5).Draw(t, "restart") == 0 {
				digest := grouped.Digest()
				grouped.Ledger = New(grouped.space)
				grouped.Load()
				knobs(grouped.Ledger)
				if grouped.Digest() != digest {
					t.Fatal("a restarted ledger differs")
				}
			}
			grouped.begin()
			for range rapid.IntRange(1, 5).Draw(t, "calls") {
				now += rapid.Int64Range(0, 2e9).Draw(t, "dt")
				var got, want []string
				if rapid.IntRange(0, 9).Draw(t, "accounts") == 0 {
					as := newAccounts(c.accounts-1, c.accounts+2) // two exist already
					c.accounts += 2
					got, want = grouped.CreateAccounts(now, as), single.CreateAccounts(now, as)
				} else {
					ts := c.transfers(t, 6)
					got, want = grouped.CreateTransfers(now, ts), single.CreateTransfers(now, ts)
				}
				if !equal(got, want) {
					t.Fatalf("entry %d: %v, one call an entry: %v", e, got, want)
				}
				for _, tr := range c.sent {
					g, gok := grouped.Transfer(grouped.tx, tr.ID)
					w, wok := single.Transfer(tr.ID)
					gs, gsok := grouped.PendingStateOf(grouped.tx, tr.ID)
					ws, wsok := single.PendingStateOf(tr.ID)
					if g != w || gok != wok || gs != ws || gsok != wsok {
						t.Fatalf("entry %d: transfer %s in the entry %+v %v (%d %v), committed %+v %v (%d %v)", e, tr.ID, g, gok, gs, gsok, w, wok, ws, wsok)
					}
				}
			}
			grouped.commit()
			if grouped.Digest() != single.Digest() {
				t.Fatalf("entry %d: the ledgers differ", e)
			}
			for i := 1; i <= c.accounts; i++ {
				g, _ := grouped.Account(acctID(i))
				w, _ := single.Account(acctID(i))
				if g != w {
					t.Fatalf("entry %d: account %d %+v, one call an entry: %+v", e, i, g, w)
				}
			}
			for _, tr := range c.sent {
				g, gok := grouped.Ledger.Transfer(grouped.space, tr.ID)
				w, wok := single.Transfer(tr.ID)
				if g != w || gok != wok {
					t.Fatalf("entry %d: transfer %s committed %+v %v, one call an entry: %+v %v", e, tr.ID, g, gok, w, wok)
				}
			}
		}
		if err := grouped.Check(); err != nil {
			t.Fatal(err)
		}
	})
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestJournal applies the same calls, big and small, over many accounts
// to two ledgers that journal their accounts and fold the journal often,
// one of them restarting now and then, and to a third that never
// journals: the same state everywhere, a ledger loaded from any of their
// stores equal to it, and the two journaling ledgers' stores equal key for
// key (a restarted node writes what the others write).
func TestJournal(t *testing.T) {
	db := storetest.Open(t)
	rapid.Check(t, func(t *rapid.T) {
		a, b, plain := newTestLedger(db), newTestLedger(db), newTestLedger(db)
		min := rapid.IntRange(2, 20).Draw(t, "journalMin")
		limit := rapid.IntRange(1, 200).Draw(t, "journalLimit")
		knobs := func(l *testLedger) { l.testJournal.min, l.testJournal.limit = min, limit }
		knobs(a)
		knobs(b)
		plain.testJournal.min = 1 << 30
		c := &calls{accounts: rapid.IntRange(2, 60).Draw(t, "accounts")}
		now := int64(1e12)
		for _, l := range []*testLedger{a, b, plain} {
			l.CreateAccounts(now, newAccounts(1, c.accounts))
		}
		for range rapid.IntRange(1, 25).Draw(t, "calls") {
			now += rapid.Int64Range(0, 2e9).Draw(t, "dt")
			if rapid.IntRange(0, 7).Draw(t, "restart") == 0 {
				b = b.restart()
				knobs(b)
			}
			if rapid.IntRange(0, 9).Draw(t, "accounts") == 0 {
				as := newAccounts(c.accounts+1, c.accounts+rapid.IntRange(1, 30).Draw(t, "new"))
				c.accounts += len(as)
				for _, l := range []*testLedger{a, b, plain} {
					l.CreateAccounts(now, as)
				}
				continue
			}
			ts := c.transfers(t, 40)
			want := plain.CreateTransfers(now, ts)
			if got := a.CreateTransfers(now, ts); !equal(got, want) {
				t.Fatalf("%v, without the journal %v", got, want)
			}
			if got := b.CreateTransfers(now, ts); !equal(got, want) {
				t.Fatalf("restarting: %v, without the journal %v", got, want)
			}
		}
		for _, l := range []*testLedger{a, b, a.restart(), b.restart()} {
			if l.Digest() != plain.Digest() {
				t.Fatal("a journaling ledger differs")
			}
			for i := 1; i <= c.accounts; i++ {
				if got, _ := l.Account(acctID(i)); got != must(plain.Account(acctID(i))) {
					t.Fatalf("account %d: %+v, without the journal %+v", i, got, must(plain.Account(acctID(i))))
				}
			}
		}
		var keysA, keysB [][2][]byte
		a.space.Scan("", "", false, func(k string, v []byte) bool {
			keysA = append(keysA, [2][]byte{[]byte(k), bytes.Clone(v)})
			return true
		})
		b.space.Scan("", "", false, func(k string, v []byte) bool {
			keysB = append(keysB, [2][]byte{[]byte(k), bytes.Clone(v)})
			return true
		})
		if len(keysA) != len(keysB) {
			t.Fatalf("%d keys, restarting %d", len(keysA), len(keysB))
		}
		for i := range keysA {
			if !bytes.Equal(keysA[i][0], keysB[i][0]) || !bytes.Equal(keysA[i][1], keysB[i][1]) {
				t.Fatalf("key %d: %q = %x, restarting %q = %x", i, keysA[i][0], keysA[i][1], keysB[i][0], keysB[i][1])
			}
		}
	})
}

func must(a Account, _ bool) Account { return a }

// TestJournalRecordRoundTrip: a journal record reads back as the account
// it was made of, whole or its balances.
func TestJournalRecordRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a := genAccount(t)
		if a.ID.IsZero() {
			a.ID[0] = 1
		}
		l := New(nil)
		acc := &account{Account: a}
		l.number(acc)
		acc.written = rapid.Bool().Draw(t, "written")
		v := appendJournalRecord([]byte{9}, acc)[1:]
		back := New(nil)
		ids := []ID{a.ID}
		if acc.written { // a balances record: the account is known already
			back.accounts = map[ID]*account{a.ID: {Account: Account{ID: a.ID, Currency: a.Currency, Code: a.Code,
				Flags: a.Flags, UserData: a.UserData, Timestamp: a.Timestamp, DebitsPosted: 1}, num: 1}}
		} else {
			back.accounts, ids = map[ID]*account{}, nil
		}
		got, ids, rest := back.nextJournalRecord(v, 7, ids)
		if got == nil || len(rest) != 0 || got.Account != a || got.num != 1 || len(ids) != 1 || ids[0] != a.ID {
			t.Fatalf("account %+v (written %v) came back %+v, rest %d", a, acc.written, got, len(rest))
		}
		if want := uint64(7); !acc.written && got.base != want {
			t.Fatalf("whole record of chunk %d, base %d", want, got.base)
		}
	})
}
