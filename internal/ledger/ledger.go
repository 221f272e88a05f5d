// Package ledger is superapp's double-entry ledger, after TigerBeetle's
// model: accounts in one currency each with debits/credits pending and
// posted, immutable transfers with 128-bit client ids, two-phase transfers
// (pending, then post in full or in part, void, or expiry), and linked
// chains that succeed or fail together. Batches of events are applied in
// order with one result code per event.
//
// It is deterministic: the same batches in the same order give the same
// results and state on every node. Its state lives in the node's store
// (keys.go), written in the batch of the entry being applied; only the
// accounts (with their balances, numbers and place in the journal) stay in
// memory too. It must never let debits and credits of a currency differ,
// never break an account's flags, never apply a transfer id twice, and
// never keep in memory what grows with history (transfers, pending
// states): those are on disk only, but for the transfers the entry being
// applied changed (overlay.go). It reads no clock: each batch carries its
// time.
package ledger

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"regexp"
	"slices"
	"sync"

	"superapp/internal/store"
)

// ID is a 128-bit identifier chosen by the client; zero is invalid.
type ID [16]byte

// IsZero reports whether id is zero.
func (id ID) IsZero() bool { return id == ID{} }

// String is the id in hex.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// MarshalText encodes the id as 32 hex digits.
func (id ID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText decodes 32 hex digits (or fewer, left-padded with zeros).
func (id *ID) UnmarshalText(b []byte) error {
	if len(b) == 0 || len(b) > 32 {
		return fmt.Errorf("id must be 1 to 32 hex digits")
	}
	s := string(b)
	for len(s) < 32 {
		s = "0" + s
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return fmt.Errorf("id must be hex: %w", err)
	}
	return nil
}

// IDFrom derives an id from a string (a client's key, a user id...).
func IDFrom(s string) ID {
	h := sha256.Sum256([]byte(s))
	var id ID
	copy(id[:], h[:16])
	return id
}

// AccountFlags constrain an account.
type AccountFlags uint16

// Account flags.
const (
	// Linked chains this account's creation to the next event's.
	AccountLinked AccountFlags = 1 << iota
	// DebitsMustNotExceedCredits: a wallet cannot go below zero.
	DebitsMustNotExceedCredits
	// CreditsMustNotExceedDebits: e.g. a bank settlement account.
	CreditsMustNotExceedDebits
)

// TransferFlags shape a transfer.
type TransferFlags uint16

// Transfer flags.
const (
	// Linked chains this transfer to the next event: all or none.
	Linked TransferFlags = 1 << iota
	// Pending reserves the amount (phase one of two).
	Pending
	// PostPending posts a pending transfer, in full or in part.
	PostPending
	// VoidPending releases a pending transfer.
	VoidPending
)

// Account is an account with its balances, in minor units.
type Account struct {
	ID             ID           `json:"id"`
	Currency       string       `json:"currency"`
	Code           uint16       `json:"code"`
	Flags          AccountFlags `json:"flags"`
	UserData       string       `json:"user_data,omitempty"`
	DebitsPending  uint64       `json:"debits_pending"`
	DebitsPosted   uint64       `json:"debits_posted"`
	CreditsPending uint64       `json:"credits_pending"`
	CreditsPosted  uint64       `json:"credits_posted"`
	Timestamp      int64        `json:"timestamp"`
}

// Transfer moves an amount from a debit account to a credit account.
type Transfer struct {
	ID              ID            `json:"id"`
	DebitAccountID  ID            `json:"debit_account_id"`
	CreditAccountID ID            `json:"credit_account_id"`
	Amount          uint64        `json:"amount"`
	PendingID       ID            `json:"pending_id"`
	Timeout         uint32        `json:"timeout"` // seconds a pending transfer may stay pending; 0: forever
	Currency        string        `json:"currency"`
	Code            uint16        `json:"code"`
	Flags           TransferFlags `json:"flags"`
	UserData        string        `json:"user_data,omitempty"`
	Timestamp       int64         `json:"timestamp"`
}

// PendingState is where a pending transfer stands.
type PendingState uint8

// Pending states.
const (
	StatePending PendingState = iota + 1
	StatePosted
	StateVoided
	StateExpired
)

// Result codes: a public contract, never renamed.
const (
	OK                           = "ok"
	LinkedEventFailed            = "linked_event_failed"
	LinkedEventChainOpen         = "linked_event_chain_open"
	IDMustNotBeZero              = "id_must_not_be_zero"
	Exists                       = "exists"
	ExistsWithDifferentFields    = "exists_with_different_fields"
	FlagsAreMutuallyExclusive    = "flags_are_mutually_exclusive"
	CurrencyInvalid              = "currency_invalid"
	AccountsMustBeDifferent      = "accounts_must_be_different"
	DebitAccountNotFound         = "debit_account_not_found"
	CreditAccountNotFound        = "credit_account_not_found"
	CurrencyMismatch             = "currency_mismatch"
	AmountMustNotBeZero          = "amount_must_not_be_zero"
	ExceedsCredits               = "exceeds_credits"
	ExceedsDebits                = "exceeds_debits"
	Overflow                     = "overflows"
	PendingIDMustBeZero          = "pending_id_must_be_zero"
	PendingIDMustNotBeZero       = "pending_id_must_not_be_zero"
	PendingIDMustBeDifferent     = "pending_id_must_be_different"
	TimeoutReservedForPending    = "timeout_reserved_for_pending_transfer"
	PendingTransferNotFound      = "pending_transfer_not_found"
	PendingTransferNotPending    = "pending_transfer_not_pending"
	PendingTransferAlreadyPosted = "pending_transfer_already_posted"
	PendingTransferAlreadyVoided = "pending_transfer_already_voided"
	PendingTransferExpired       = "pending_transfer_expired"
	PendingTransferHasDifferent  = "pending_transfer_has_different_accounts"
	ExceedsPendingAmount         = "exceeds_pending_transfer_amount"
)

// MaxBatch is the most events one batch may hold.
const MaxBatch = 8190

var currencyRE = regexp.MustCompile(`^[A-Z]{3}$`)

// Ledger is the state. It is not safe for concurrent use: one goroutine
// applies batches, inside the apply of a stream entry (it writes to the
// space's current batch); readers of accounts go through the caller's
// lock, readers of transfers read the committed store.
type Ledger struct {
	space *store.Space
	// accounts are every account with its balances: bounded by the number
	// of accounts, not by history. Every change is written to the store in
	// the batch of the entry that makes it (flush); Load reads them back.
	accounts map[ID]*account
	now      int64
	// meta is what the store's meta key holds (now as of the last flush).
	meta meta
	// nextExpiry is the earliest deadline in the store's expiry queue (0:
	// none), a cache of its first key: a call looks at the queue only when
	// something is due.
	nextExpiry int64
	// journal is the store's journal of accounts (journal.go), oldest
	// chunk first, with the accounts each chunk holds; journaled counts
	// them. Bounded by journalLimit (twice the accounts, and some) plus
	// one call's accounts. spare keeps folded chunks' slices for reuse.
	journal   []journalChunk
	journaled int
	spare     [][]*account
	// testJournal replaces journalMin and journalLimit when set (tests).
	testJournal struct{ min, limit int }
	// ids are the accounts' ids by number (ids[n-1]: account n), for
	// reading stored transfers (disk.go): bounded by the accounts.
	// Guarded by idsMu: queries read transfers while apply numbers.
	idsMu sync.RWMutex
	ids   []ID

	// The overlay (overlay.go): what the entry etx changed among the
	// transfers; bounded by an entry's size, reset by the next entry.
	etx   *store.Tx
	cur   records
	index index // of cur
	// What one call changes, until flush writes it to tx; bounded by a
	// call's size, reused by the next: the overlay's records from first
	// on, the earlier calls' records it restated, the accounts in dirty.
	tx       *store.Tx
	first    uint32
	restated []uint32
	scratch  record // a transfer read from the store, until the next find
	// absent is a transfer id the store does not hold, as found in the
	// batch absentIn (notStored): one id, not asked for twice.
	absent   ID
	absentIn *store.Tx
	dirty    []*account
	gen      uint64 // the call; an account or a record marked with it is in dirty or restated
	buf      []byte // scratch: a record to write
	jbuf     []byte // scratch: a journal chunk
	// checked: prefetch looked up the ids of this call's transfers in the
	// store, and present holds those it found (almost always none).
	checked bool
	present map[ID]struct{}
	order   []int32   // scratch: prefetch's events in key order
	keys    []sortKey // scratch: ids to sort (prefetch, flush)
	// undo is reused by every chain: a batch of single transfers is
	// thousands of chains.
	undo undo
}

// account is an account and the call that last marked it changed.
type account struct {
	Account
	gen uint64
	// chunk is the newest journal chunk holding it (0: none, it is as
	// acct/ holds it); base is the chunk holding its whole record (0:
	// acct/ does), the others hold its balances.
	chunk, base uint64
	// written: the store holds it (under acct/ or in the journal).
	written bool
	// num is its number (0 until written; journal.go).
	num uint32
	// gone: created by a chain that failed; flush skips it.
	gone bool
}

// New returns a ledger keeping its state in space; Load fills it from
// what space holds.
func New(space *store.Space) *Ledger {
	l := &Ledger{space: space, accounts: map[ID]*account{}, present: map[ID]struct{}{}}
	l.index = newIndex(&l.cur)
	return l
}

// Account returns a copy of an account.
func (l *Ledger) Account(id ID) (Account, bool) {
	a, ok := l.accounts[id]
	if !ok {
		return Account{}, false
	}
	return a.Account, true
}

// Transfer returns a transfer as r holds it: the committed store for a
// query, the entry's batch for apply code around the ledger's calls (a
// call writes its transfers to the batch before it returns; the overlay
// answers for them).
func (l *Ledger) Transfer(r Reader, id ID) (Transfer, bool) {
	if rec := l.inEntry(r, id); rec != nil {
		return rec.transfer(), true
	}
	v, ok := r.Get(transferKey(id))
	if !ok {
		l.notStored(r, id)
		return Transfer{}, false
	}
	var rec record
	l.readTransfer(id, v, &rec)
	return rec.transfer(), true
}

// notStored remembers that the store does not hold transfer id, when r is
// an entry's batch: apply code asks whether a payment's id is taken just
// before the call that makes the payment asks again, and what the store
// holds does not change until the entry is committed (what the ledger
// writes meanwhile is in the overlay, which find asks first).
func (l *Ledger) notStored(r Reader, id ID) {
	if tx, ok := r.(*store.Tx); ok {
		l.absent, l.absentIn = id, tx
	}
}

// PendingStateOf returns where a pending transfer stands, as r holds it.
func (l *Ledger) PendingStateOf(r Reader, id ID) (PendingState, bool) {
	var flags TransferFlags
	var st PendingState
	if rec := l.inEntry(r, id); rec != nil {
		flags, st = rec.Flags, rec.state
	} else {
		v, ok := r.Get(transferKey(id))
		if !ok {
			l.notStored(r, id)
			return 0, false
		}
		flags, st = storedPendingState(v)
	}
	if flags&Pending == 0 {
		return 0, false
	}
	return st, true
}

// inEntry returns the overlay's record of transfer id when r is the batch
// of the entry the overlay belongs to (written blind, the batch itself
// would not find it), or nil. A query's r is never that batch: it reads no
// field apply writes.
func (l *Ledger) inEntry(r Reader, id ID) *record {
	if tx, ok := r.(*store.Tx); !ok || tx != l.etx {
		return nil
	}
	if i, ok := l.index.get(id); ok {
		return l.cur.at(i)
	}
	return nil
}

// begin starts a call: it works on the entry's batch, and on the overlay
// of the entry (a new one if the entry is).
func (l *Ledger) begin(now int64) {
	l.tx = l.space.Tx()
	if l.tx != l.etx {
		// Holding the last entry's batch keeps its address from being
		// reused by the next one's.
		l.etx = l.tx
		l.cur.reset()
		l.index.reset()
	}
	l.gen++
	l.first = l.cur.n
	l.restated = l.restated[:0]
	l.dirty = l.dirty[:0]
	l.checked = false
	l.tick(now)
}

// prefetchMin is the smallest call whose ids prefetch looks up ahead.
const prefetchMin = 64

// prefetch looks up the ids of a call's transfers in the store ahead of
// applying them, in key order. First it walks the stored transfers from
// the call's lowest id alongside the call's ids: a batch of time-ordered
// ids (the kind clients are told to make) owns a range of keys of its own,
// which one seek finds empty. Ids spread over the whole key space meet a
// stored transfer at almost every step, so the walk soon gives up and the
// rest are looked up one by one, still in key order: neighbours share most
// of the path down the memtables and the same blocks of the tables. What
// the store holds does not change until flush, so the answer holds for
// the whole call.
func (l *Ledger) prefetch(ts []Transfer) {
	if len(ts) < prefetchMin {
		return
	}
	keys := l.keys[:0]
	for i := range ts {
		keys = append(keys, keyOf(&ts[i].ID, int32(i)))
	}
	sortKeys(keys)
	order := l.order[:0]
	for _, k := range keys {
		order = append(order, k.i)
	}
	l.keys, l.order = keys, order
	clear(l.present)
	k, steps, gaveUp := 0, 0, false
	l.tx.Scan(transferPrefix, transferKey(ts[order[0]].ID), false, func(key string, _ []byte) bool {
		var stored ID
		copy(stored[:], key[len(transferPrefix):])
		for k < len(order) && compareID(&ts[order[k]].ID, &stored) < 0 {
			k++ // below the next stored id: not stored
		}
		for k < len(order) && ts[order[k]].ID == stored {
			l.present[stored] = struct{}{}
			k++
		}
		if k == len(order) {
			return false
		}
		// A step costs a tenth of a lookup: walking past a few other
		// transfers per id of ours (those of other clients sending
		// time-ordered ids at the same time) still pays.
		steps++
		if steps > walkPatience && steps > 8*k {
			gaveUp = true // walking past others' transfers, not ours
			return false
		}
		return true
	})
	if gaveUp {
		for j := k; j < len(order); j++ {
			id := ts[order[j]].ID
			if j > k && ts[order[j-1]].ID == id {
				continue
			}
			if l.tx.Has(transferKey(id)) {
				l.present[id] = struct{}{}
			}
		}
	}
	l.checked = true
}

// walkPatience is how many stored transfers prefetch walks past before it
// may give up on walking.
const walkPatience = 64

// compareID orders ids as their keys sort.
func compareID(a, b *ID) int {
	if x, y := binary.BigEndian.Uint64(a[:8]), binary.BigEndian.Uint64(b[:8]); x != y {
		return cmp.Compare(x, y)
	}
	return cmp.Compare(binary.BigEndian.Uint64(a[8:]), binary.BigEndian.Uint64(b[8:]))
}

// findNew is find for the id of one of the call's transfers: after
// prefetch, only an id it found is read from the store again.
func (l *Ledger) findNew(id ID) *record {
	if l.checked {
		if i, ok := l.index.get(id); ok {
			return l.cur.at(i)
		}
		if _, ok := l.present[id]; !ok {
			return nil
		}
	}
	return l.find(id)
}

// find returns the transfer id, from the overlay or else from the store
// (then in l.scratch, valid until the next find), or nil.
func (l *Ledger) find(id ID) *record {
	if i, ok := l.index.get(id); ok {
		return l.cur.at(i)
	}
	if l.absentIn == l.tx && l.absent == id {
		return nil
	}
	v, ok := l.tx.Get(transferKey(id))
	if !ok {
		return nil
	}
	l.readTransfer(id, v, &l.scratch)
	l.scratch.written, l.scratch.writtenState = true, l.scratch.state
	return &l.scratch
}

// put adds r to the overlay as changed by this call; u (nil outside a
// chain) drops it if the chain fails.
func (l *Ledger) put(r *record, u *undo) *record {
	i := l.cur.add(r)
	l.index.put(r.ID, i)
	if u != nil {
		u.transfers = append(u.transfers, r.ID)
	}
	rec := l.cur.at(i)
	rec.gen = l.gen
	return rec
}

// adopt makes a transfer found in the store part of the overlay, so that
// its state may change; one already there is returned as is, marked for
// flush if an earlier call of the entry put it there.
func (l *Ledger) adopt(r *record, u *undo) *record {
	if r == &l.scratch {
		return l.put(r, u)
	}
	if r.gen != l.gen {
		i, _ := l.index.get(r.ID)
		r.gen = l.gen
		l.restated = append(l.restated, i)
	}
	return r
}

// mark notes an account changed by this call, for flush.
func (l *Ledger) mark(a *account) {
	if a.gen != l.gen {
		a.gen = l.gen
		l.dirty = append(l.dirty, a)
	}
}

// undo records changes of a chain so a failing chain leaves no trace. It
// keeps slices, not maps, so that resetting it for the next chain costs
// nothing: an account touched twice is saved twice, and rollback restores
// in reverse order, so the copy taken first wins.
type undo struct {
	accounts  []Account // accounts as they were before the chain touched them
	created   []ID      // accounts created
	transfers []ID      // transfers put in the overlay
	pendings  []pendingUndo
	records   uint32 // l.cur.n before
}

type pendingUndo struct {
	id    ID
	state PendingState
}

// newUndo resets the ledger's undo for a new chain.
func (l *Ledger) newUndo() *undo {
	u := &l.undo
	u.accounts, u.created, u.transfers, u.pendings = u.accounts[:0], u.created[:0], u.transfers[:0], u.pendings[:0]
	u.records = l.cur.n
	return u
}

func (u *undo) touch(a *account) { u.accounts = append(u.accounts, a.Account) }

func (u *undo) pending(id ID, st PendingState) {
	u.pendings = append(u.pendings, pendingUndo{id: id, state: st})
}

func (l *Ledger) rollback(u *undo) {
	for i := len(u.accounts) - 1; i >= 0; i-- {
		a := u.accounts[i]
		if cur, ok := l.accounts[a.ID]; ok {
			cur.Account = a
		}
	}
	for _, id := range u.created {
		l.accounts[id].gone = true
		delete(l.accounts, id)
	}
	for _, id := range u.transfers {
		l.index.delete(id)
	}
	for i := len(u.pendings) - 1; i >= 0; i-- {
		if j, ok := l.index.get(u.pendings[i].id); ok {
			l.cur.at(j).state = u.pendings[i].state
		}
	}
	// The chain's transfers are the last in the overlay.
	for i := u.records; i < l.cur.n; i++ {
		l.cur.at(i).userData = ""
	}
	l.cur.n = u.records
}

// run applies events in linked chains (an event with the linked flag
// belongs to the chain of the event after it); a chain with a failure is
// rolled back and its other events answer linked_event_failed.
func (l *Ledger) run(n int, linked func(i int) bool, apply func(i int, u *undo) string) []string {
	res := make([]string, n)
	for start := 0; start < n; {
		end := start + 1
		for end < n && linked(end-1) {
			end++
		}
		u := l.newUndo()
		failed := -1
		for i := start; i < end; i++ {
			r := apply(i, u)
			if i == end-1 && linked(i) && r == OK {
				r = LinkedEventChainOpen // the batch ended inside a chain
			}
			res[i] = r
			if r != OK {
				failed = i
				break
			}
		}
		if failed >= 0 {
			l.rollback(u)
			if end-start > 1 {
				for i := start; i < end; i++ {
					if i != failed {
						res[i] = LinkedEventFailed
					}
				}
			}
		}
		start = end
	}
	return res
}

// CreateAccounts applies a batch of account creations at time now (ns).
// It must be called while the ledger's stream applies an entry: it writes
// to the entry's batch.
func (l *Ledger) CreateAccounts(now int64, accounts []Account) []string {
	l.begin(now)
	defer l.flush()
	return l.run(len(accounts), func(i int) bool { return accounts[i].Flags&AccountLinked != 0 }, func(i int, u *undo) string {
		a := accounts[i]
		switch {
		case a.ID.IsZero():
			return IDMustNotBeZero
		case a.Flags&DebitsMustNotExceedCredits != 0 && a.Flags&CreditsMustNotExceedDebits != 0:
			return FlagsAreMutuallyExclusive
		case !currencyRE.MatchString(a.Currency):
			return CurrencyInvalid
		}
		if old, ok := l.accounts[a.ID]; ok {
			if old.Currency != a.Currency || old.Code != a.Code || old.Flags&^AccountLinked != a.Flags&^AccountLinked || old.UserData != a.UserData {
				return ExistsWithDifferentFields
			}
			return Exists
		}
		a.DebitsPending, a.DebitsPosted, a.CreditsPending, a.CreditsPosted = 0, 0, 0, 0
		a.Timestamp = l.now
		acc := &account{Account: a}
		l.accounts[a.ID] = acc
		l.mark(acc)
		u.created = append(u.created, a.ID)
		return OK
	})
}

// CreateTransfers applies a batch of transfers at time now (ns). It must be
// called while the ledger's stream applies an entry, as CreateAccounts.
func (l *Ledger) CreateTransfers(now int64, transfers []Transfer) []string {
	l.begin(now)
	defer l.flush()
	l.prefetch(transfers)
	return l.run(len(transfers), func(i int) bool { return transfers[i].Flags&Linked != 0 }, func(i int, u *undo) string {
		return l.transfer(&transfers[i], u)
	})
}

func (l *Ledger) transfer(t *Transfer, u *undo) string {
	if t.ID.IsZero() {
		return IDMustNotBeZero
	}
	if r := l.findNew(t.ID); r != nil {
		old := r.transfer()
		if !sameTransfer(&old, t) {
			return ExistsWithDifferentFields
		}
		return Exists
	}
	phase := t.Flags & (Pending | PostPending | VoidPending)
	if phase != 0 && phase&(phase-1) != 0 {
		return FlagsAreMutuallyExclusive
	}
	if phase == PostPending || phase == VoidPending {
		return l.resolve(*t, u)
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
	dr, ok := l.accounts[t.DebitAccountID]
	if !ok || t.DebitAccountID.IsZero() {
		return DebitAccountNotFound
	}
	cr, ok := l.accounts[t.CreditAccountID]
	if !ok || t.CreditAccountID.IsZero() {
		return CreditAccountNotFound
	}
	if dr.Currency != cr.Currency || t.Currency != dr.Currency {
		return CurrencyMismatch
	}
	if r := l.check(&dr.Account, &cr.Account, t.Amount); r != OK {
		return r
	}
	u.touch(dr)
	u.touch(cr)
	l.mark(dr)
	l.mark(cr)
	rec := recordOf(t)
	rec.Timestamp = l.now
	rec.dnum, rec.cnum = dr.num, cr.num
	if phase == Pending {
		rec.state = StatePending
		dr.DebitsPending += t.Amount
		cr.CreditsPending += t.Amount
	} else {
		dr.DebitsPosted += t.Amount
		cr.CreditsPosted += t.Amount
	}
	l.put(&rec, u)
	return OK
}

// check reports whether adding amount to the debit and credit sides keeps
// both accounts within their flags and within range.
func (l *Ledger) check(dr, cr *Account, amount uint64) string {
	if dr.DebitsPending+dr.DebitsPosted > math.MaxUint64-amount || cr.CreditsPending+cr.CreditsPosted > math.MaxUint64-amount {
		return Overflow
	}
	if dr.Flags&DebitsMustNotExceedCredits != 0 && dr.DebitsPending+dr.DebitsPosted+amount > dr.CreditsPosted {
		return ExceedsCredits
	}
	if cr.Flags&CreditsMustNotExceedDebits != 0 && cr.CreditsPending+cr.CreditsPosted+amount > cr.DebitsPosted {
		return ExceedsDebits
	}
	return OK
}

// resolve posts or voids a pending transfer.
func (l *Ledger) resolve(t Transfer, u *undo) string {
	if t.PendingID.IsZero() {
		return PendingIDMustNotBeZero
	}
	if t.PendingID == t.ID {
		return PendingIDMustBeDifferent
	}
	if t.Timeout != 0 {
		return TimeoutReservedForPending
	}
	pt := l.find(t.PendingID)
	if pt == nil {
		return PendingTransferNotFound
	}
	if pt.Flags&Pending == 0 {
		return PendingTransferNotPending
	}
	switch pt.state {
	case StatePosted:
		return PendingTransferAlreadyPosted
	case StateVoided:
		return PendingTransferAlreadyVoided
	case StateExpired:
		return PendingTransferExpired
	}
	if (!t.DebitAccountID.IsZero() && t.DebitAccountID != pt.DebitAccountID) ||
		(!t.CreditAccountID.IsZero() && t.CreditAccountID != pt.CreditAccountID) {
		return PendingTransferHasDifferent
	}
	if t.Currency != "" && t.Currency != string(pt.currency[:]) {
		return CurrencyMismatch
	}
	amount := t.Amount
	if amount == 0 {
		amount = pt.Amount // zero means all of it
	}
	if amount > pt.Amount {
		return ExceedsPendingAmount
	}
	if t.Flags&VoidPending != 0 && amount != pt.Amount {
		return ExceedsPendingAmount // a void releases all of it
	}
	pt = l.adopt(pt, u)
	dr, cr := l.accounts[pt.DebitAccountID], l.accounts[pt.CreditAccountID]
	u.touch(dr)
	u.touch(cr)
	l.mark(dr)
	l.mark(cr)
	u.pending(pt.ID, pt.state)
	dr.DebitsPending -= pt.Amount
	cr.CreditsPending -= pt.Amount
	if t.Flags&PostPending != 0 {
		dr.DebitsPosted += amount
		cr.CreditsPosted += amount
		pt.state = StatePosted
	} else {
		pt.state = StateVoided
	}
	t.DebitAccountID, t.CreditAccountID, t.Currency, t.Amount = pt.DebitAccountID, pt.CreditAccountID, currencyName(pt.currency), amount
	rec := recordOf(&t)
	rec.Timestamp = l.now
	rec.dnum, rec.cnum = pt.dnum, pt.cnum
	l.put(&rec, u) // may move no record: pt stays valid
	return OK
}

// sameTransfer reports whether b, a retry, asks for what a, stored, did.
// A post or void is stored with the accounts, currency and amount filled in
// from its pending transfer; the retry may leave them zero as the original
// request did.
func sameTransfer(a, b *Transfer) bool {
	if a.PendingID != b.PendingID || a.Timeout != b.Timeout || a.Code != b.Code ||
		a.Flags&^Linked != b.Flags&^Linked || a.UserData != b.UserData {
		return false
	}
	if a.Flags&(PostPending|VoidPending) != 0 {
		return (b.DebitAccountID.IsZero() || b.DebitAccountID == a.DebitAccountID) &&
			(b.CreditAccountID.IsZero() || b.CreditAccountID == a.CreditAccountID) &&
			(b.Currency == "" || b.Currency == a.Currency) &&
			(b.Amount == 0 || b.Amount == a.Amount)
	}
	return a.DebitAccountID == b.DebitAccountID && a.CreditAccountID == b.CreditAccountID && a.Amount == b.Amount
}

// tick advances the ledger's time and expires pending transfers whose
// deadline has passed, releasing their amounts.
func (l *Ledger) tick(now int64) {
	if now > l.now {
		l.now = now
	}
	if l.nextExpiry == 0 || l.nextExpiry > l.now {
		return
	}
	var due []ID
	next := int64(0)
	l.tx.Scan(expiryPrefix, "", false, func(k string, _ []byte) bool {
		deadline, id, ok := parseExpiryKey(k)
		if !ok {
			corrupt("expiry key", fmt.Errorf("%d bytes", len(k)))
		}
		if deadline > l.now {
			next = deadline
			return false
		}
		due = append(due, id)
		return true
	})
	l.nextExpiry = next
	for _, id := range due {
		// Queued means pending: resolving a transfer takes it out of the
		// queue in the same batch.
		p := l.find(id)
		if p == nil || p.Flags&Pending == 0 || p.state != StatePending {
			corrupt("expiry queue", fmt.Errorf("transfer %s is queued but not pending", id))
		}
		p = l.adopt(p, nil)
		dr, cr := l.accounts[p.DebitAccountID], l.accounts[p.CreditAccountID]
		l.mark(dr)
		l.mark(cr)
		dr.DebitsPending -= p.Amount
		cr.CreditsPending -= p.Amount
		p.state = StateExpired
	}
}

// Totals are a currency's sums over all accounts.
type Totals struct {
	DebitsPending, DebitsPosted, CreditsPending, CreditsPosted uint64
}

// Check verifies the invariants: per currency, debits equal credits
// (pending and posted), and no account breaks its flags. It returns the
// first violation, or nil.
func (l *Ledger) Check() error {
	sums := map[string]*Totals{}
	var broken *Account
	for _, a := range l.accounts {
		s := sums[a.Currency]
		if s == nil {
			s = &Totals{}
			sums[a.Currency] = s
		}
		s.DebitsPending += a.DebitsPending
		s.DebitsPosted += a.DebitsPosted
		s.CreditsPending += a.CreditsPending
		s.CreditsPosted += a.CreditsPosted
		if (a.Flags&DebitsMustNotExceedCredits != 0 && a.DebitsPending+a.DebitsPosted > a.CreditsPosted) ||
			(a.Flags&CreditsMustNotExceedDebits != 0 && a.CreditsPending+a.CreditsPosted > a.DebitsPosted) {
			// The lowest id: the same answer on every node.
			if broken == nil || string(a.ID[:]) < string(broken.ID[:]) {
				broken = &a.Account
			}
		}
	}
	if broken != nil {
		if broken.Flags&DebitsMustNotExceedCredits != 0 {
			return fmt.Errorf("account %s: debits exceed credits", broken.ID)
		}
		return fmt.Errorf("account %s: credits exceed debits", broken.ID)
	}
	curs := make([]string, 0, len(sums))
	for cur := range sums {
		curs = append(curs, cur)
	}
	slices.Sort(curs)
	for _, cur := range curs {
		if s := sums[cur]; s.DebitsPosted != s.CreditsPosted || s.DebitsPending != s.CreditsPending {
			return fmt.Errorf("%s: debits %d/%d pending/posted, credits %d/%d", cur, s.DebitsPending, s.DebitsPosted, s.CreditsPending, s.CreditsPosted)
		}
	}
	return nil
}

// Digest hashes the whole state, so nodes can be compared at the same
// position: every account (id, balances, flags) and every transfer (id,
// amount, pending state), through the order-free sums of disk.go. The
// transfers' sum is kept as they are stored; the accounts' is made here.
func (l *Ledger) Digest() string {
	var accounts [2]uint64
	for id, a := range l.accounts {
		accounts = add(accounts, hash2(le.Uint64(id[0:8]), le.Uint64(id[8:16]), a.DebitsPending, a.DebitsPosted,
			a.CreditsPending, a.CreditsPosted, uint64(a.Flags)))
	}
	var b [8 * 6]byte
	for i, v := range []uint64{uint64(len(l.accounts)), accounts[0], accounts[1], l.meta.stored, l.meta.sum[0], l.meta.sum[1]} {
		binary.BigEndian.PutUint64(b[8*i:], v)
	}
	h := sha256.Sum256(b[:])
	return hex.EncodeToString(h[:])
}
