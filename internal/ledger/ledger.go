// Package ledger is superapp's double-entry ledger, after TigerBeetle's
// model: accounts in one currency each with debits/credits pending and
// posted, immutable transfers with 128-bit client ids, two-phase transfers
// (pending, then post in full or in part, void, or expiry), and linked
// chains that succeed or fail together. Batches of events are applied in
// order with one result code per event.
//
// It is pure and deterministic: the same batches in the same order give
// the same results and state on every node. It must never let debits and
// credits of a currency differ, never break an account's flags, and never
// apply a transfer id twice. It reads no clock: each batch carries its time.
package ledger

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"regexp"
	"sort"
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

type pending struct {
	t        uint32 // the pending transfer's index in Ledger.records
	state    PendingState
	deadline int64 // ns; 0: none
}

// Ledger is the state. It is not safe for concurrent use: one goroutine
// applies batches; readers go through the caller's lock.
type Ledger struct {
	accounts  map[ID]*Account
	transfers index // of records
	records   records
	// userData holds the transfers' user data; index 0 is none.
	userData []string
	pendings map[ID]*pending
	// expiring orders pending transfers with a timeout by deadline.
	expiring []ID
	now      int64
	// undo is reused by every chain: a batch of single transfers is
	// thousands of chains.
	undo undo
}

// New returns an empty ledger.
func New() *Ledger {
	l := &Ledger{accounts: map[ID]*Account{}, pendings: map[ID]*pending{}, userData: []string{""}}
	l.transfers = newIndex(&l.records)
	return l
}

// Account returns a copy of an account.
func (l *Ledger) Account(id ID) (Account, bool) {
	a, ok := l.accounts[id]
	if !ok {
		return Account{}, false
	}
	return *a, true
}

// Transfer returns a copy of a transfer.
func (l *Ledger) Transfer(id ID) (Transfer, bool) {
	i, ok := l.transfers.get(id)
	if !ok {
		return Transfer{}, false
	}
	return l.transferAt(i), true
}

// PendingStateOf returns where a pending transfer stands.
func (l *Ledger) PendingStateOf(id ID) (PendingState, bool) {
	p, ok := l.pendings[id]
	if !ok {
		return 0, false
	}
	return p.state, true
}

// undo records changes of a chain so a failing chain leaves no trace. It
// keeps slices, not maps, so that resetting it for the next chain costs
// nothing: an account touched twice is saved twice, and rollback restores
// in reverse order, so the copy taken first wins.
type undo struct {
	accounts  []Account // accounts as they were before the chain touched them
	created   []ID      // accounts created
	transfers []ID      // transfers created
	pendings  []pendingUndo
	expiring  int    // len(l.expiring) before
	records   uint32 // l.records.n before
	userData  int    // len(l.userData) before
}

type pendingUndo struct {
	id    ID
	state PendingState
}

// newUndo resets the ledger's undo for a new chain.
func (l *Ledger) newUndo() *undo {
	u := &l.undo
	u.accounts, u.created, u.transfers, u.pendings = u.accounts[:0], u.created[:0], u.transfers[:0], u.pendings[:0]
	u.expiring, u.records, u.userData = len(l.expiring), l.records.n, len(l.userData)
	return u
}

func (u *undo) touch(a *Account) { u.accounts = append(u.accounts, *a) }

func (u *undo) pending(id ID, st PendingState) {
	u.pendings = append(u.pendings, pendingUndo{id: id, state: st})
}

func (l *Ledger) rollback(u *undo) {
	for i := len(u.accounts) - 1; i >= 0; i-- {
		a := u.accounts[i]
		if cur, ok := l.accounts[a.ID]; ok {
			*cur = a
		}
	}
	for _, id := range u.created {
		delete(l.accounts, id)
	}
	for _, id := range u.transfers {
		l.transfers.delete(id)
		delete(l.pendings, id)
	}
	for i := len(u.pendings) - 1; i >= 0; i-- {
		if p, ok := l.pendings[u.pendings[i].id]; ok {
			p.state = u.pendings[i].state
		}
	}
	l.expiring = l.expiring[:u.expiring]
	// The chain's transfers are the last stored.
	l.records.n = u.records
	l.userData = l.userData[:u.userData]
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
func (l *Ledger) CreateAccounts(now int64, accounts []Account) []string {
	l.tick(now)
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
		l.accounts[a.ID] = &a
		u.created = append(u.created, a.ID)
		return OK
	})
}

// CreateTransfers applies a batch of transfers at time now (ns).
func (l *Ledger) CreateTransfers(now int64, transfers []Transfer) []string {
	l.tick(now)
	return l.run(len(transfers), func(i int) bool { return transfers[i].Flags&Linked != 0 }, func(i int, u *undo) string {
		return l.transfer(transfers[i], u)
	})
}

func (l *Ledger) transfer(t Transfer, u *undo) string {
	if t.ID.IsZero() {
		return IDMustNotBeZero
	}
	if i, ok := l.transfers.get(t.ID); ok {
		old := l.transferAt(i)
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
		return l.resolve(t, u)
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
	if r := l.check(dr, cr, t.Amount); r != OK {
		return r
	}
	u.touch(dr)
	u.touch(cr)
	t.Timestamp = l.now
	stored := l.storeTransfer(&t)
	l.transfers.put(t.ID, stored)
	u.transfers = append(u.transfers, t.ID)
	if phase == Pending {
		dr.DebitsPending += t.Amount
		cr.CreditsPending += t.Amount
		p := &pending{t: stored, state: StatePending}
		if t.Timeout > 0 {
			p.deadline = l.now + int64(t.Timeout)*1e9
			l.expiring = append(l.expiring, t.ID)
		}
		l.pendings[t.ID] = p
		return OK
	}
	dr.DebitsPosted += t.Amount
	cr.CreditsPosted += t.Amount
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
	p, ok := l.pendings[t.PendingID]
	if !ok {
		if _, isTransfer := l.transfers.get(t.PendingID); isTransfer {
			return PendingTransferNotPending
		}
		return PendingTransferNotFound
	}
	switch p.state {
	case StatePosted:
		return PendingTransferAlreadyPosted
	case StateVoided:
		return PendingTransferAlreadyVoided
	case StateExpired:
		return PendingTransferExpired
	}
	pt := l.records.at(p.t)
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
	dr, cr := l.accounts[pt.DebitAccountID], l.accounts[pt.CreditAccountID]
	u.touch(dr)
	u.touch(cr)
	u.pending(pt.ID, p.state)
	dr.DebitsPending -= pt.Amount
	cr.CreditsPending -= pt.Amount
	t.DebitAccountID, t.CreditAccountID, t.Currency, t.Amount = pt.DebitAccountID, pt.CreditAccountID, currencyName(pt.currency), amount
	t.Timestamp = l.now
	l.transfers.put(t.ID, l.storeTransfer(&t))
	u.transfers = append(u.transfers, t.ID)
	if t.Flags&PostPending != 0 {
		dr.DebitsPosted += amount
		cr.CreditsPosted += amount
		p.state = StatePosted
	} else {
		p.state = StateVoided
	}
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
	if len(l.expiring) == 0 {
		return
	}
	keep := l.expiring[:0]
	for _, id := range l.expiring {
		p := l.pendings[id]
		switch {
		case p == nil || p.state != StatePending:
		case p.deadline <= l.now:
			t := l.records.at(p.t)
			dr, cr := l.accounts[t.DebitAccountID], l.accounts[t.CreditAccountID]
			dr.DebitsPending -= t.Amount
			cr.CreditsPending -= t.Amount
			p.state = StateExpired
		default:
			keep = append(keep, id)
		}
	}
	l.expiring = keep
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
		if a.Flags&DebitsMustNotExceedCredits != 0 && a.DebitsPending+a.DebitsPosted > a.CreditsPosted {
			return fmt.Errorf("account %s: debits exceed credits", a.ID)
		}
		if a.Flags&CreditsMustNotExceedDebits != 0 && a.CreditsPending+a.CreditsPosted > a.DebitsPosted {
			return fmt.Errorf("account %s: credits exceed debits", a.ID)
		}
	}
	for cur, s := range sums {
		if s.DebitsPosted != s.CreditsPosted || s.DebitsPending != s.CreditsPending {
			return fmt.Errorf("%s: debits %d/%d pending/posted, credits %d/%d", cur, s.DebitsPending, s.DebitsPosted, s.CreditsPending, s.CreditsPosted)
		}
	}
	return nil
}

// Digest hashes the whole state (accounts and transfers, in id order), so
// nodes can be compared at the same position.
func (l *Ledger) Digest() string {
	h := sha256.New()
	ids := make([]ID, 0, len(l.accounts))
	for id := range l.accounts {
		ids = append(ids, id)
	}
	sortIDs(ids)
	var b [8]byte
	for _, id := range ids {
		a := l.accounts[id]
		h.Write(id[:])
		for _, v := range []uint64{a.DebitsPending, a.DebitsPosted, a.CreditsPending, a.CreditsPosted, uint64(a.Flags)} {
			binary.BigEndian.PutUint64(b[:], v)
			h.Write(b[:])
		}
	}
	stored := make([]*record, 0, l.transfers.n)
	l.transfers.all(func(i uint32) { stored = append(stored, l.records.at(i)) })
	sort.Slice(stored, func(i, j int) bool { return string(stored[i].ID[:]) < string(stored[j].ID[:]) })
	for _, t := range stored {
		id := t.ID
		h.Write(id[:])
		binary.BigEndian.PutUint64(b[:], t.Amount)
		h.Write(b[:])
		if p, ok := l.pendings[id]; ok {
			h.Write([]byte{byte(p.state)})
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

func sortIDs(ids []ID) {
	sort.Slice(ids, func(i, j int) bool { return string(ids[i][:]) < string(ids[j][:]) })
}
