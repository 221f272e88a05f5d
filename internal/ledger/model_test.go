package ledger

import (
	"maps"
	"testing"

	"pgregory.net/rapid"

	"superapp/internal/store/storetest"
)

// model is a plain reference ledger: it keeps the stored transfers and
// derives every balance from them, from scratch, each time; a linked
// chain works on a copy that is kept or thrown away whole.
type model struct {
	accounts  map[ID]Account
	transfers map[ID]Transfer
	order     []ID
	state     map[ID]PendingState
	deadline  map[ID]int64
	now       int64
}

func newModel() *model {
	return &model{accounts: map[ID]Account{}, transfers: map[ID]Transfer{}, state: map[ID]PendingState{}, deadline: map[ID]int64{}}
}

func (m *model) clone() *model {
	c := *m
	c.accounts, c.transfers, c.state, c.deadline = maps.Clone(m.accounts), maps.Clone(m.transfers), maps.Clone(m.state), maps.Clone(m.deadline)
	c.order = append([]ID(nil), m.order...)
	return &c
}

func (m *model) balance(id ID) Account {
	a := m.accounts[id]
	for _, tid := range m.order {
		t := m.transfers[tid]
		var amt, pend uint64
		switch {
		case t.Flags&Pending != 0:
			if m.state[tid] == StatePending {
				pend = t.Amount
			}
		case t.Flags&VoidPending != 0:
		default: // single phase, or a post
			amt = t.Amount
		}
		if t.DebitAccountID == id {
			a.DebitsPosted += amt
			a.DebitsPending += pend
		}
		if t.CreditAccountID == id {
			a.CreditsPosted += amt
			a.CreditsPending += pend
		}
	}
	return a
}

func (m *model) tick(now int64) {
	if now > m.now {
		m.now = now
	}
	for id, d := range m.deadline {
		if m.state[id] == StatePending && d > 0 && d <= m.now {
			m.state[id] = StateExpired
		}
	}
}

func (m *model) transfer(t Transfer) string {
	if t.ID.IsZero() {
		return IDMustNotBeZero
	}
	if old, ok := m.transfers[t.ID]; ok {
		if !sameTransfer(&old, &t) {
			return ExistsWithDifferentFields
		}
		return Exists
	}
	phase := t.Flags & (Pending | PostPending | VoidPending)
	if phase != 0 && phase&(phase-1) != 0 {
		return FlagsAreMutuallyExclusive
	}
	if phase == PostPending || phase == VoidPending {
		switch {
		case t.PendingID.IsZero():
			return PendingIDMustNotBeZero
		case t.PendingID == t.ID:
			return PendingIDMustBeDifferent
		case t.Timeout != 0:
			return TimeoutReservedForPending
		}
		pt, ok := m.transfers[t.PendingID]
		if !ok {
			return PendingTransferNotFound
		}
		if pt.Flags&Pending == 0 {
			return PendingTransferNotPending
		}
		switch m.state[t.PendingID] {
		case StatePosted:
			return PendingTransferAlreadyPosted
		case StateVoided:
			return PendingTransferAlreadyVoided
		case StateExpired:
			return PendingTransferExpired
		}
		if (!t.DebitAccountID.IsZero() && t.DebitAccountID != pt.DebitAccountID) || (!t.CreditAccountID.IsZero() && t.CreditAccountID != pt.CreditAccountID) {
			return PendingTransferHasDifferent
		}
		if t.Currency != "" && t.Currency != pt.Currency {
			return CurrencyMismatch
		}
		amt := t.Amount
		if amt == 0 {
			amt = pt.Amount
		}
		if amt > pt.Amount || (phase == VoidPending && amt != pt.Amount) {
			return ExceedsPendingAmount
		}
		t.DebitAccountID, t.CreditAccountID, t.Currency, t.Amount = pt.DebitAccountID, pt.CreditAccountID, pt.Currency, amt
		m.store(t)
		if phase == PostPending {
			m.state[t.PendingID] = StatePosted
		} else {
			m.state[t.PendingID] = StateVoided
		}
		return OK
	}
	switch {
	case !t.PendingID.IsZero():
		return PendingIDMustBeZero
	case t.Timeout != 0 && phase != Pending:
		return TimeoutReservedForPending
	case t.DebitAccountID == t.CreditAccountID:
		return AccountsMustBeDifferent
	case t.Amount == 0:
		return AmountMustNotBeZero
	}
	da, ok := m.accounts[t.DebitAccountID]
	if !ok {
		return DebitAccountNotFound
	}
	ca, ok := m.accounts[t.CreditAccountID]
	if !ok {
		return CreditAccountNotFound
	}
	if da.Currency != ca.Currency || t.Currency != da.Currency {
		return CurrencyMismatch
	}
	dr, cr := m.balance(t.DebitAccountID), m.balance(t.CreditAccountID)
	if da.Flags&DebitsMustNotExceedCredits != 0 && dr.DebitsPending+dr.DebitsPosted+t.Amount > dr.CreditsPosted {
		return ExceedsCredits
	}
	if ca.Flags&CreditsMustNotExceedDebits != 0 && cr.CreditsPending+cr.CreditsPosted+t.Amount > cr.DebitsPosted {
		return ExceedsDebits
	}
	m.store(t)
	if phase == Pending {
		m.state[t.ID] = StatePending
		if t.Timeout > 0 {
			m.deadline[t.ID] = m.now + int64(t.Timeout)*1e9
		}
	}
	return OK
}

func (m *model) store(t Transfer) {
	m.transfers[t.ID] = t
	m.order = append(m.order, t.ID)
}

// chains splits events into linked chains: an event with the linked flag
// belongs to the chain of the event after it.
func chains(n int, linked func(i int) bool) [][2]int {
	var out [][2]int
	start := 0
	for i := 0; i < n; i++ {
		if !linked(i) || i == n-1 {
			out = append(out, [2]int{start, i + 1})
			start = i + 1
		}
	}
	return out
}

// apply applies a batch of transfers, chain by chain, on copies.
func (m *model) apply(now int64, ts []Transfer) (*model, []string) {
	m.tick(now)
	res := make([]string, len(ts))
	for _, ch := range chains(len(ts), func(i int) bool { return ts[i].Flags&Linked != 0 }) {
		work := m.clone()
		failed := -1
		for i := ch[0]; i < ch[1]; i++ {
			r := work.transfer(ts[i])
			if i == ch[1]-1 && ts[i].Flags&Linked != 0 && r == OK {
				r = LinkedEventChainOpen
			}
			res[i] = r
			if r != OK {
				failed = i
				break
			}
		}
		if failed < 0 {
			m = work
			continue
		}
		if ch[1]-ch[0] > 1 {
			for i := ch[0]; i < ch[1]; i++ {
				if i != failed {
					res[i] = LinkedEventFailed
				}
			}
		}
	}
	return m, res
}

func idN(n int) ID {
	var id ID
	id[15] = byte(n)
	return id
}

var resultCounts = map[string]int{}

func TestLedgerAgainstModel(t *testing.T) {
	defer func() {
		// The generator must reach the interesting outcomes, or the test
		// proves little.
		for _, code := range []string{OK, Exists, LinkedEventFailed, ExceedsCredits, PendingTransferAlreadyPosted, PendingTransferExpired} {
			if resultCounts[code] == 0 {
				t.Errorf("no event ended %s; counts: %v", code, resultCounts)
			}
		}
	}()
	db := storetest.Open(t)
	rapid.Check(t, func(t *rapid.T) {
		l, m := newTestLedger(db), newModel()
		twin := newTestLedger(db) // a second node applying the same batches
		var accs []Account
		currency := map[int]string{}
		for i := 1; i <= 6; i++ {
			cur := "KRW"
			if i > 4 {
				cur = "USD"
			}
			currency[i] = cur
			a := Account{ID: idN(i), Currency: cur,
				Flags: rapid.SampledFrom([]AccountFlags{0, 0, DebitsMustNotExceedCredits, CreditsMustNotExceedDebits}).Draw(t, "aflags")}
			accs = append(accs, a)
			m.accounts[a.ID] = a
		}
		now := int64(1e12)
		if r := l.CreateAccounts(now, accs); r[0] != OK {
			t.Fatalf("accounts: %v", r)
		}
		twin.CreateAccounts(now, accs)
		nextID := 1
		var used, pendingIDs []int
		var sent []Transfer
		steps := rapid.IntRange(1, 40).Draw(t, "batches")
		for s := 0; s < steps; s++ {
			now += rapid.Int64Range(0, 2e9).Draw(t, "dt")
			n := rapid.IntRange(1, 6).Draw(t, "n")
			batch := make([]Transfer, n)
			for i := range batch {
				var tr Transfer
				// Mostly fresh ids; now and then a retry or a zero.
				switch k := rapid.IntRange(0, 19).Draw(t, "idkind"); {
				case k == 0:
					tr.ID = ID{}
				case k <= 2 && len(used) > 0:
					tr.ID = idN(rapid.SampledFrom(used).Draw(t, "reuse"))
				default:
					tr.ID = idN(nextID)
					used = append(used, nextID)
					nextID++
				}
				dr := rapid.IntRange(1, 6).Draw(t, "dr")
				cr := rapid.IntRange(1, 6).Draw(t, "cr")
				if rapid.IntRange(0, 9).Draw(t, "same") > 1 && currency[dr] != currency[cr] {
					cr = dr%4 + 1 // keep it within KRW most of the time
					if dr > 4 {
						cr = 11 - dr
					}
				}
				tr.DebitAccountID, tr.CreditAccountID = idN(dr), idN(cr)
				tr.Amount = uint64(rapid.IntRange(0, 60).Draw(t, "amt"))
				tr.Currency = currency[dr]
				if rapid.IntRange(0, 19).Draw(t, "badcur") == 0 {
					tr.Currency = "EUR"
				}
				switch k := rapid.IntRange(0, 19).Draw(t, "phase"); {
				case k < 9:
				case k < 13:
					tr.Flags = Pending
					tr.Timeout = uint32(rapid.IntRange(0, 3).Draw(t, "timeout"))
					pendingIDs = append(pendingIDs, int(tr.ID[15]))
				case k < 16:
					tr.Flags = PostPending
				case k < 19:
					tr.Flags = VoidPending
				default:
					tr.Flags = Pending | PostPending
				}
				if tr.Flags&(PostPending|VoidPending) != 0 && len(pendingIDs) > 0 {
					tr.PendingID = idN(rapid.SampledFrom(pendingIDs).Draw(t, "pid"))
					if rapid.Bool().Draw(t, "infer") {
						tr.DebitAccountID, tr.CreditAccountID, tr.Currency = ID{}, ID{}, ""
					}
					if rapid.Bool().Draw(t, "full") {
						tr.Amount = 0
					}
				}
				if rapid.IntRange(0, 4).Draw(t, "link") == 0 {
					tr.Flags |= Linked
				}
				// A client retrying an earlier transfer as it was.
				if len(sent) > 0 && rapid.IntRange(0, 9).Draw(t, "retry") == 0 {
					tr = rapid.SampledFrom(sent).Draw(t, "again")
				}
				sent = append(sent, tr)
				batch[i] = tr
			}
			if rapid.IntRange(0, 9).Draw(t, "restart") == 0 {
				// The node restarts: a new ledger loads what the store holds.
				digest, clock := l.Digest(), l.now
				l = l.restart()
				if l.Digest() != digest || l.now != clock {
					t.Fatal("a restarted ledger differs")
				}
			}
			got := l.CreateTransfers(now, batch)
			twin.CreateTransfers(now, batch)
			var want []string
			m, want = m.apply(now, batch)
			for i := range got {
				resultCounts[got[i]]++
				if got[i] != want[i] {
					t.Fatalf("batch %d event %d %+v: got %s, model says %s", s, i, batch[i], got[i], want[i])
				}
			}
			if err := l.Check(); err != nil {
				t.Fatalf("invariant: %v", err)
			}
			for _, a := range accs {
				g, _ := l.Account(a.ID)
				w := m.balance(a.ID)
				if g.DebitsPending != w.DebitsPending || g.DebitsPosted != w.DebitsPosted ||
					g.CreditsPending != w.CreditsPending || g.CreditsPosted != w.CreditsPosted {
					t.Fatalf("account %d: got %+v, model %+v", a.ID[15], g, w)
				}
			}
			if l.Digest() != twin.Digest() {
				t.Fatal("two ledgers fed the same batches differ")
			}
		}
	})
}
