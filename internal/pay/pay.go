// Package pay is superapp's money: wallets per user and currency on the
// double-entry ledger (package ledger), top-ups through a bank rail,
// transfers between users, and the raw batch API. Its state is derived only
// from the LEDGER stream: every node applies the same batches in the same
// order, so every DC holds the same balances. The state lives in the
// node's store (keys.go, and the ledger's own), written in the batch of the
// entry that changes it, so a restarted node resumes at the next entry.
//
// It must never move money it has not committed on a quorum, never apply a
// transfer id twice, never let anyone spend or see another's money, never
// keep in memory what grows with history (statements, holds, envelopes,
// sales, codes: they are on disk only), and never import net/http or the
// NATS client.
package pay

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"superapp/internal/apperr"
	"superapp/internal/cmdlog"
	"superapp/internal/ledger"
	"superapp/internal/store"
)

// Stream is the name of the ledger stream.
const Stream = "LEDGER"

// Account codes: what an account is for.
const (
	CodeWallet     uint16 = 1
	CodeSettlement uint16 = 2 // the bank rail's settlement account, one per currency
	CodeEnvelope   uint16 = 3 // a red envelope's money while it waits to be claimed
)

// Limits.
const (
	// MaxAmount bounds one payment, in minor units.
	MaxAmount = 100_000_000_000
)

// write names a money write for idempotency: its id, and a fingerprint of
// what it asks, so one id reused for another request is refused
// (idempotency_key_reused) instead of answered with the first one.
func write(id string, what ...any) cmdlog.Write {
	b, _ := json.Marshal(what)
	h := sha256.Sum256(b)
	return cmdlog.Write{ID: id, Hash: hex.EncodeToString(h[:16])}
}

// refusal is the client error for a ledger result code other than ok.
func refusal(code string) *apperr.Error {
	e := &apperr.Error{Code: code, Message: "the ledger refused the payment: " + code}
	if code == ledger.ExceedsCredits {
		e.Field, e.Message = "amount", "not enough money in the wallet"
	}
	return e
}

// IsLedgerCode reports whether an error code is a ledger result code.
func IsLedgerCode(code string) bool { return ledgerCodes[code] }

var ledgerCodes = map[string]bool{}

func init() {
	for _, c := range []string{ledger.LinkedEventFailed, ledger.LinkedEventChainOpen, ledger.IDMustNotBeZero,
		ledger.FlagsAreMutuallyExclusive, ledger.CurrencyInvalid, ledger.AccountsMustBeDifferent,
		ledger.DebitAccountNotFound, ledger.CreditAccountNotFound, ledger.CurrencyMismatch, ledger.AmountMustNotBeZero,
		ledger.ExceedsCredits, ledger.ExceedsDebits, ledger.Overflow, ledger.PendingIDMustBeZero, ledger.PendingIDMustNotBeZero,
		ledger.PendingIDMustBeDifferent, ledger.TimeoutReservedForPending, ledger.PendingTransferNotFound,
		ledger.PendingTransferNotPending, ledger.PendingTransferAlreadyPosted, ledger.PendingTransferAlreadyVoided,
		ledger.PendingTransferExpired, ledger.PendingTransferHasDifferent, ledger.ExceedsPendingAmount} {
		ledgerCodes[c] = true
		apperr.Register(c, http.StatusUnprocessableEntity)
	}
	ledgerCodes[ledger.ExistsWithDifferentFields] = true
	apperr.Register(ledger.ExistsWithDifferentFields, http.StatusConflict)
	ledgerCodes[LimitExceeded] = true
	apperr.Register(LimitExceeded, http.StatusUnprocessableEntity)
}

// WalletID is the ledger account of a user's wallet in a currency.
func WalletID(user, currency string) ledger.ID {
	return ledger.IDFrom("wallet/" + user + "/" + currency)
}

// SettlementID is the bank rail's settlement account in a currency.
func SettlementID(currency string) ledger.ID { return ledger.IDFrom("settlement/" + currency) }

// TransferID is the ledger id of a user's payment with a client id.
func TransferID(user, clientID string) ledger.ID {
	return ledger.IDFrom("transfer/" + user + "/" + clientID)
}

// State is the ledger read model. It is safe for concurrent use: apply
// holds mu for each command; queries of what is in memory (balances, open
// bank operations, the digest) hold it for reading, queries of the rest
// read the committed store.
type State struct {
	space *store.Space
	mu    sync.RWMutex
	l     *ledger.Ledger
	// open lists the envelopes still open, oldest first (envopen/ on
	// disk): bounded by design, an envelope is open EnvelopeLifetime at most.
	open []openEnvelope
	// bankOps are the bank operations not yet settled (reconcile.go;
	// bankop/ on disk): bounded by the operations in flight, each settled
	// by its request or, within minutes, by the reconciler.
	bankOps map[ledger.ID]*BankOp
	// codeHead is where the payment codes' order begins (no code issued
	// before it is left): a cache of codeorder/'s first key, so forgetting
	// old codes never reads past what it forgot before.
	codeHead uint64
	// applying is the entry whose commands were last applied, announced the
	// last whose commit was announced: Inspect waits until they agree.
	applying, announced uint64
	// overlay is the entry being applied as apply reads and writes the
	// records every payment reads (wallets, what a user spent today, the
	// logs' lengths: cachedKey): every write of those goes through it.
	// Bounded: the entry's writes, and recentSize records.
	overlay *store.Overlay
}

// NewState returns a state kept in space (the LEDGER stream's); load fills
// its in-memory parts from what space holds.
func NewState(space *store.Space) *State {
	return &State{space: space, l: ledger.New(space), bankOps: map[ledger.ID]*BankOp{},
		overlay: store.NewOverlay(space, recentSize, cachedKey)}
}

// recentSize bounds the overlay's cache: the records of the last few
// thousand payers and payees.
const recentSize = 8192

// cachedKey says which records the overlay keeps.
func cachedKey(key string) bool {
	return strings.HasPrefix(key, walletFamily) || strings.HasPrefix(key, spentFamily) || strings.HasPrefix(key, linesFamily)
}

// load fills what the state keeps in memory from the store: the ledger's
// accounts, the open envelopes and the open bank operations.
func (s *State) load() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.overlay = store.NewOverlay(s.space, recentSize, cachedKey) // nothing cached from before
	s.l.Load()
	s.open = nil
	s.space.Scan(openEnvelopePrefix, "", false, func(k string, v []byte) bool {
		s.open = append(s.open, decodeOpenEnvelope(k, v))
		return true
	})
	s.bankOps = map[ledger.ID]*BankOp{}
	s.space.Scan(bankOpPrefix, "", false, func(k string, v []byte) bool {
		var op BankOp
		decode(k, v, &op)
		s.bankOps[op.TransferID] = &op
		return true
	})
	s.codeHead = 0
	s.space.Scan(codeOrderPrefix, "", false, func(k string, _ []byte) bool {
		s.codeHead = store.ParseSeq(k[len(codeOrderPrefix):])
		return false
	})
	s.applying, s.announced = 0, 0
}

// decode decodes a stored JSON value; one that does not decode stops the
// node as a broken store does.
func decode(key string, raw []byte, v any) {
	if err := json.Unmarshal(raw, v); err != nil {
		panic(store.Failure{Err: fmt.Errorf("pay: decode %q: %w", key, err)})
	}
}

// tx is the batch of the entry being applied: only apply calls it.
func (s *State) tx() *store.Tx { return s.space.Tx() }

// Entry is one line of a user's statement.
type Entry struct {
	TransferID   ledger.ID `json:"transfer_id"`
	Kind         string    `json:"kind"` // topup, sent, received, hold, captured, released
	Amount       uint64    `json:"amount"`
	Currency     string    `json:"currency"`
	Counterparty string    `json:"counterparty,omitempty"`
	ClientID     string    `json:"id,omitempty"`
	At           time.Time `json:"at"`
}

// Hold is money reserved from a payer for a payee, until captured (in
// full or in part), released, or expired.
type Hold struct {
	HoldID    ledger.ID `json:"hold_id"`
	Payer     string    `json:"payer"`
	Payee     string    `json:"payee"`
	Amount    uint64    `json:"amount"`
	Currency  string    `json:"currency"`
	Status    string    `json:"status"` // pending, captured, released, expired
	Captured  uint64    `json:"captured"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Limits on what one user may send (payments and holds), in minor units
// of the currency.
const (
	PerTransferLimit = 2_000_000
	PerDayLimit      = 5_000_000
)

// LimitExceeded is the error code of a payment over a limit.
const LimitExceeded = "limit_exceeded"

// spend is a payment's share of its sender's day: checked against the
// limits by withinLimits, added by book once the payment is made.
type spend struct {
	key            string
	before, amount uint64
}

// withinLimits checks what user sends at time at.
func (s *State) withinLimits(user, currency string, amount uint64, at time.Time) (spend, *apperr.Error) {
	if amount > PerTransferLimit {
		return spend{}, &apperr.Error{Code: LimitExceeded, Field: "amount", Message: fmt.Sprintf("at most %d per payment", PerTransferLimit)}
	}
	sp := spend{key: spentKey(user, currency, at.UTC().Format("2006-01-02")), amount: amount}
	if v, ok := s.overlay.Get(sp.key); ok && len(v) == 8 {
		sp.before = binary.BigEndian.Uint64(v)
	}
	if sp.before+amount > PerDayLimit {
		return spend{}, &apperr.Error{Code: LimitExceeded, Field: "amount", Message: fmt.Sprintf("at most %d a day", PerDayLimit)}
	}
	return sp, nil
}

// book adds a payment withinLimits let through to its sender's day.
func (s *State) book(sp spend) {
	s.overlay.Set(sp.key, binary.BigEndian.AppendUint64(nil, sp.before+sp.amount))
}

// record adds a line to user's statement.
func (s *State) record(user string, e Entry) { s.appendLine(statementPrefix(user), e) }

// appendLine writes v, as JSON, as the next line of the log under prefix
// (a statement): lines are numbered from 0 with no gap. The log's length
// is a record of its own (linesKey), read through the overlay: a payment
// writes two lines, and the users who pay are mostly the ones who just
// did. Apply never reads a line back.
func (s *State) appendLine(prefix string, v any) {
	var next uint64
	if n, ok := s.overlay.Get(linesKey(prefix)); ok {
		if len(n) != 8 {
			s.overlay.Fail("lines of "+prefix, fmt.Errorf("%d bytes", len(n)))
		}
		next = binary.BigEndian.Uint64(n)
	}
	raw, err := json.Marshal(v)
	if err != nil {
		panic("pay: encode a line: " + err.Error()) // only our own types
	}
	s.overlay.SetIndex(prefix+store.Seq(next), raw)
	s.overlay.Set(linesKey(prefix), binary.BigEndian.AppendUint64(nil, next+1))
}

const (
	kindBatch    = "ledger.batch"
	kindTopUp    = "wallet.topup"
	kindTransfer = "wallet.transfer"
	kindHold     = "hold.place"
	kindCapture  = "hold.capture"
	kindRelease  = "hold.release"
)

// Batch is the raw batch API's command, as JSON clients send it. In the
// log a batch is ledger's binary form, packed (ledger.PackBatch), so
// that every node applies it without parsing JSON.
type Batch struct {
	Accounts  []ledger.Account  `json:"accounts,omitempty"`
	Transfers []ledger.Transfer `json:"transfers,omitempty"`
}

// BatchResult is a result code per account and per transfer, in order.
type BatchResult struct {
	Accounts  []string `json:"accounts,omitempty"`
	Transfers []string `json:"transfers,omitempty"`
}

type moneyCmd struct {
	ID       ledger.ID `json:"id"`
	ClientID string    `json:"client_id"`
	From     string    `json:"from,omitempty"`
	To       string    `json:"to"`
	Amount   uint64    `json:"amount"`
	Currency string    `json:"currency"`
	// Timeout is a hold's lifetime in seconds.
	Timeout uint32 `json:"timeout,omitempty"`
	// HoldID names the hold a capture or release resolves.
	HoldID ledger.ID `json:"hold_id,omitempty"`
	// DC is where a withdrawal began (its reconciler's home).
	DC string `json:"dc,omitempty"`
}

// Payment is the outcome of a top-up or a transfer.
type Payment struct {
	Status     string    `json:"status"` // "ok" or a ledger result code
	TransferID ledger.ID `json:"transfer_id"`
	Amount     uint64    `json:"amount"`
	Currency   string    `json:"currency"`
	To         string    `json:"to_user,omitempty"`
	At         time.Time `json:"at"`
}

// Apply applies one LEDGER command. It is deterministic.
func (s *State) Apply(seq uint64, e *cmdlog.Envelope) (any, *apperr.Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if seq != s.applying {
		s.applying = seq
		s.tx().AfterCommit(func() {
			s.mu.Lock()
			s.announced = seq
			s.mu.Unlock()
		})
	}
	now := e.At.UnixNano()
	s.expireEnvelopes(now, e.At)
	switch e.Kind {
	case kindWithdrawBegin, kindWithdrawEnd:
		return s.applyBank(now, e)
	case kindTopUpBegin:
		return s.applyTopUpBegin(e)
	case kindBankAbort:
		return s.applyBankAbort(e)
	case kindSplit:
		return s.applySplit(now, e)
	case kindMerchant, kindQR, kindCode, kindSale, kindRefund:
		return s.applyMerchant(now, e)
	case kindEnvelope:
		var c envelopeCmd
		if err := json.Unmarshal(e.Data, &c); err != nil {
			return nil, apperr.New(apperr.Malformed, "bad command")
		}
		return s.createEnvelope(now, e, c)
	case kindClaim:
		var c struct {
			ID ledger.ID `json:"id"`
		}
		if err := json.Unmarshal(e.Data, &c); err != nil {
			return nil, apperr.New(apperr.Malformed, "bad command")
		}
		return s.claim(now, e, c.ID)
	case kindBatch:
		accounts, transfers, err := decodeBatch(e.Data)
		if err != nil {
			return nil, apperr.New(apperr.Malformed, "bad command")
		}
		var r BatchResult
		if len(accounts) > 0 {
			r.Accounts = s.l.CreateAccounts(now, accounts)
		}
		if len(transfers) > 0 {
			r.Transfers = s.l.CreateTransfers(now, transfers)
		}
		return r, nil
	case kindTopUp, kindTransfer, kindHold:
		var c moneyCmd
		if err := json.Unmarshal(e.Data, &c); err != nil {
			return nil, apperr.New(apperr.Malformed, "bad command")
		}
		return s.move(now, e, c)
	case kindCapture, kindRelease:
		var c moneyCmd
		if err := json.Unmarshal(e.Data, &c); err != nil {
			return nil, apperr.New(apperr.Malformed, "bad command")
		}
		return s.resolve(now, e, c)
	}
	return nil, apperr.New(apperr.Invalid, "unknown command %q", e.Kind)
}

// move applies a top-up, a payment or a hold.
func (s *State) move(now int64, e *cmdlog.Envelope, c moneyCmd) (any, *apperr.Error) {
	tx := s.tx()
	if old, ok := s.l.Transfer(tx, c.ID); ok {
		// The same payment, applied once before: the original answer.
		if old.Amount != c.Amount || old.CreditAccountID != WalletID(c.To, c.Currency) {
			return nil, refusal(ledger.ExistsWithDifferentFields)
		}
		return Payment{Status: ledger.OK, TransferID: c.ID, Amount: c.Amount, Currency: c.Currency, To: c.To, At: time.Unix(0, old.Timestamp).UTC()}, nil
	}
	var sp spend
	if e.Kind != kindTopUp {
		var err *apperr.Error
		if sp, err = s.withinLimits(c.From, c.Currency, c.Amount, e.At); err != nil {
			return nil, err
		}
	}
	s.ensureWallet(now, c.To, c.Currency)
	t := ledger.Transfer{ID: c.ID, CreditAccountID: WalletID(c.To, c.Currency), Amount: c.Amount, Currency: c.Currency}
	if e.Kind == kindTopUp {
		s.ensureSettlement(now, c.Currency)
		t.DebitAccountID = SettlementID(c.Currency)
	} else {
		s.ensureWallet(now, c.From, c.Currency)
		t.DebitAccountID = WalletID(c.From, c.Currency)
	}
	if e.Kind == kindHold {
		t.Flags, t.Timeout = ledger.Pending, c.Timeout
	}
	if status := s.l.CreateTransfers(now, []ledger.Transfer{t})[0]; status != ledger.OK {
		// Refused: nothing moved, so the id is not used up; the same
		// payment may come back once the wallet holds enough.
		return nil, refusal(status)
	}
	entry := Entry{TransferID: c.ID, Amount: c.Amount, Currency: c.Currency, ClientID: c.ClientID, At: e.At}
	switch e.Kind {
	case kindTopUp:
		entry.Kind = "topup"
		s.record(c.To, entry)
		s.closeBankOp(c.ID)
	case kindTransfer:
		s.book(sp)
		sent, got := entry, entry
		sent.Kind, sent.Counterparty = "sent", c.To
		got.Kind, got.Counterparty, got.ClientID = "received", c.From, ""
		s.record(c.From, sent)
		s.record(c.To, got)
	case kindHold:
		s.book(sp)
		h := Hold{HoldID: c.ID, Payer: c.From, Payee: c.To, Amount: c.Amount, Currency: c.Currency, Status: "pending",
			ExpiresAt: e.At.Add(time.Duration(c.Timeout) * time.Second)}
		tx.SetJSON(holdKey(c.ID), h)
		entry.Kind, entry.Counterparty = "hold", c.To
		s.record(c.From, entry)
		return h, nil
	}
	return Payment{Status: ledger.OK, TransferID: c.ID, Amount: c.Amount, Currency: c.Currency, To: c.To, At: e.At}, nil
}

// resolve captures or releases a hold; only its payee may.
func (s *State) resolve(now int64, e *cmdlog.Envelope, c moneyCmd) (any, *apperr.Error) {
	tx := s.tx()
	var h Hold
	if !tx.GetJSON(holdKey(c.HoldID), &h) || h.Payee != e.Actor {
		return nil, apperr.New(apperr.NotFound, "no such hold for you to resolve")
	}
	t := ledger.Transfer{ID: c.ID, PendingID: c.HoldID, Amount: c.Amount, Flags: ledger.PostPending}
	if e.Kind == kindRelease {
		t.Flags, t.Amount = ledger.VoidPending, 0
	}
	status := s.l.CreateTransfers(now, []ledger.Transfer{t})[0]
	if status == ledger.Exists {
		return h, nil // resolved by this very command before
	}
	if status != ledger.OK {
		// Nothing is written: a hold that expired says so when read
		// (HoldOf asks the ledger).
		return nil, refusal(status)
	}
	entry := Entry{TransferID: c.ID, Currency: h.Currency, At: e.At}
	if e.Kind == kindCapture {
		posted, _ := s.l.Transfer(tx, c.ID)
		h.Status, h.Captured = "captured", posted.Amount
		entry.Amount = posted.Amount
		paid, got := entry, entry
		paid.Kind, paid.Counterparty = "captured", h.Payee
		got.Kind, got.Counterparty = "received", h.Payer
		s.record(h.Payer, paid)
		s.record(h.Payee, got)
	} else {
		h.Status = "released"
		entry.Kind, entry.Amount, entry.Counterparty = "released", h.Amount, h.Payee
		s.record(h.Payer, entry)
	}
	tx.SetJSON(holdKey(h.HoldID), h)
	return h, nil
}

// Statement returns a user's entries in currency ("" for all), newest
// first, before index before (0: from the newest), and the index to page on.
func (s *State) Statement(user, currency string, before, limit int) ([]Entry, int) {
	prefix := statementPrefix(user)
	start := ""
	if before > 0 {
		start = prefix + store.Seq(uint64(before-1))
	}
	out := []Entry{}
	i, first := 0, true
	s.space.Scan(prefix, start, true, func(k string, v []byte) bool {
		n := int(store.ParseSeq(k[len(prefix):]))
		if first {
			i, first = n+1, false // the page starts below min(before, lines)
		}
		if len(out) >= limit {
			return false
		}
		i = n
		var e Entry
		decode(k, v, &e)
		if currency == "" || e.Currency == currency {
			out = append(out, e)
		}
		return true
	})
	return out, i
}

// HoldOf returns a hold if user is its payer or payee.
func (s *State) HoldOf(id ledger.ID, user string) (Hold, bool) {
	var h Hold
	if !s.space.GetJSON(holdKey(id), &h) || (h.Payer != user && h.Payee != user) {
		return Hold{}, false
	}
	if st, ok := s.l.PendingStateOf(s.space, id); ok && st == ledger.StateExpired {
		h.Status = "expired"
	}
	return h, true
}

func (s *State) ensureWallet(now int64, user, currency string) {
	key := walletKey(user, currency)
	if s.overlay.Has(key) {
		return
	}
	s.l.CreateAccounts(now, []ledger.Account{{ID: WalletID(user, currency), Currency: currency, Code: CodeWallet, Flags: ledger.DebitsMustNotExceedCredits}})
	s.overlay.Set(key, nil)
}

func (s *State) ensureSettlement(now int64, currency string) {
	// The bank owes what it settled in: its account may go negative (no
	// flags); the ledger still balances.
	s.l.CreateAccounts(now, []ledger.Account{{ID: SettlementID(currency), Currency: currency, Code: CodeSettlement}})
}

// Balance is one wallet's balance.
type Balance struct {
	Currency  string `json:"currency"`
	Available uint64 `json:"available"`
	Pending   uint64 `json:"pending"` // held for payments not yet captured
}

// Balances returns a user's wallet balances, by currency.
func (s *State) Balances(user string) []Balance {
	prefix := walletPrefix(user)
	var currencies []string // in key order: by currency
	s.space.Scan(prefix, "", false, func(k string, _ []byte) bool {
		currencies = append(currencies, k[len(prefix):])
		return true
	})
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := []Balance{}
	for _, cur := range currencies {
		a, _ := s.l.Account(WalletID(user, cur))
		out = append(out, Balance{Currency: cur, Available: a.CreditsPosted - a.DebitsPosted - a.DebitsPending, Pending: a.DebitsPending})
	}
	return out
}

// Check verifies the ledger's invariants.
func (s *State) Check() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.l.Check()
}

// Inspect reports, consistently, the machine's position and digest (from
// position), the ledger's state digest and its invariant check: all of
// them as of the applied position. While an entry is being applied (its
// commands are in memory, its position not yet announced) it waits for
// the entry, a little, and then answers anyway (a machine stopped by a
// broken store never announces it).
func (s *State) Inspect(fn func(applied uint64, digest, state string, check error), position func() (uint64, string)) {
	giveUp := time.Now().Add(inspectWait)
	for {
		s.mu.RLock()
		if s.applying == s.announced || time.Now().After(giveUp) {
			defer s.mu.RUnlock()
			applied, digest := position()
			fn(applied, digest, s.l.Digest(), s.l.Check())
			return
		}
		s.mu.RUnlock()
		time.Sleep(200 * time.Microsecond)
	}
}

// inspectWait bounds how long Inspect waits for the entry being applied.
const inspectWait = 2 * time.Second

// Digest is the ledger's state digest.
func (s *State) Digest() string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.l.Digest()
}

// Config configures a Service.
type Config struct {
	Log cmdlog.Appender
	// Store keeps the read model (the node's state store).
	Store *store.DB
	// Rail is the bank rail of top-ups and withdrawals (nil: top-ups are
	// credited without one, withdrawals are unavailable).
	Rail BankRail
	// DC is this node's DC: it reconciles the bank operations it began.
	DC     string
	Now    func() time.Time
	Logger *slog.Logger
}

// Service is pay's use cases.
type Service struct {
	state   *State
	machine *cmdlog.Machine
	sub     *cmdlog.Submitter
	rail    BankRail
	dc      string
	log     *slog.Logger
}

// New returns a service; the node must feed Machine() the LEDGER stream.
func New(cfg Config) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	st := NewState(cfg.Store.Space(Stream))
	m := cmdlog.NewMachine(Stream, st.space, st.Apply, cfg.Logger)
	m.SetLoader(st.load)
	return &Service{state: st, machine: m, sub: &cmdlog.Submitter{Log: cfg.Log, Machine: m, Subject: "ledger", Now: cfg.Now}, rail: cfg.Rail,
		dc: cfg.DC, log: cfg.Logger.With("component", "pay")}
}

// Close stops the service's writers; call it before the engine closes.
func (s *Service) Close() { s.sub.Close() }

// Machine is the state machine of the LEDGER stream.
func (s *Service) Machine() *cmdlog.Machine { return s.machine }

// State is the ledger read model.
func (s *Service) State() *State { return s.state }

var currencyRE = regexp.MustCompile(`^[A-Z]{3}$`)
var clientIDRE = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)

// MoneyInput is a top-up or a transfer as a client asks for it.
type MoneyInput struct {
	ID       string `json:"id"`
	ToUser   string `json:"to_user,omitempty"`
	Amount   uint64 `json:"amount"`
	Currency string `json:"currency"`
}

func (in *MoneyInput) check() *apperr.Error {
	if in.Currency == "" {
		in.Currency = "KRW"
	}
	switch {
	case !clientIDRE.MatchString(in.ID):
		return apperr.Field("id", "id must be 1-64 characters of letters, digits and . _ : -")
	case in.Amount == 0:
		return apperr.Field("amount", "amount must be a positive integer in minor units")
	case in.Amount > MaxAmount:
		return apperr.Field("amount", "amount must be at most %d", MaxAmount)
	case !currencyRE.MatchString(in.Currency):
		return apperr.Field("currency", "currency must be an ISO 4217 code such as KRW")
	}
	return nil
}

// TopUp moves money from the user's bank (through the bank rail) into
// their wallet. The client id makes it idempotent forever.
func (s *Service) TopUp(ctx context.Context, user string, in MoneyInput) (Payment, cmdlog.Result, error) {
	if err := in.check(); err != nil {
		return Payment{}, cmdlog.Result{}, err
	}
	if in.ToUser != "" {
		return Payment{}, cmdlog.Result{}, apperr.Field("to_user", "a top-up goes to your own wallet")
	}
	c := moneyCmd{ID: TransferID(user, "topup/"+in.ID), ClientID: in.ID, To: user, Amount: in.Amount, Currency: in.Currency}
	if o, done := s.machine.Outcome("topup/" + user + "/" + in.ID); (!done || o.Err != nil) && s.rail != nil {
		// The intent goes in the log first, then the bank is asked
		// (idempotent on the reference, which names the amount too), then
		// the wallet credited: a crash or a lost answer in between is
		// healed by the client's retry or, if it never comes, by the
		// reconciler (reconcile.go).
		ref := c.ID.String() + "/" + strconv.FormatUint(in.Amount, 10) + in.Currency
		if _, err := s.sub.Submit(ctx, cmdlog.Write{ID: "topup-begin/" + user + "/" + in.ID}, kindTopUpBegin, user, topUpBegin{c, ref, s.dc}); err != nil {
			return Payment{}, cmdlog.Result{}, err
		}
		if err := s.rail.Collect(ctx, user, in.Amount, in.Currency, ref); err != nil {
			return Payment{}, cmdlog.Result{}, bankError(err)
		}
	}
	return s.submit(ctx, write("topup/"+user+"/"+in.ID, kindTopUp, in.Amount, in.Currency), kindTopUp, user, c)
}

// Transfer sends money from the user's wallet to another user's. Errors:
// invalid_field, and the ledger's refusals as their result codes
// (exceeds_credits: not enough money).
func (s *Service) Transfer(ctx context.Context, user string, in MoneyInput) (Payment, cmdlog.Result, error) {
	if err := in.check(); err != nil {
		return Payment{}, cmdlog.Result{}, err
	}
	if in.ToUser == "" || in.ToUser == user {
		return Payment{}, cmdlog.Result{}, apperr.Field("to_user", "name another user to pay")
	}
	c := moneyCmd{ID: TransferID(user, in.ID), ClientID: in.ID, From: user, To: in.ToUser, Amount: in.Amount, Currency: in.Currency}
	return s.submit(ctx, write("pay/"+user+"/"+in.ID, kindTransfer, in.ToUser, in.Amount, in.Currency), kindTransfer, user, c)
}

func (s *Service) submit(ctx context.Context, w cmdlog.Write, kind, user string, c moneyCmd) (Payment, cmdlog.Result, error) {
	res, err := s.sub.Submit(ctx, w, kind, user, c)
	if err != nil {
		return Payment{}, res, err
	}
	var p Payment
	err = json.Unmarshal(res.Value, &p)
	return p, res, err
}

// HoldInput is a hold as a feature asks for it.
type HoldInput struct {
	ID        string `json:"id"`
	Payee     string `json:"payee"`
	Amount    uint64 `json:"amount"`
	Currency  string `json:"currency"`
	ExpiresIn uint32 `json:"expires_in,omitempty"` // seconds; default a day
}

// MaxHold is the longest a hold may last.
const MaxHold = 7 * 24 * 3600

// PlaceHold reserves money in the user's wallet for a payee (a driver, a
// restaurant) until the payee captures it, releases it, or it expires.
func (s *Service) PlaceHold(ctx context.Context, user string, in HoldInput) (Hold, cmdlog.Result, error) {
	mi := MoneyInput{ID: in.ID, ToUser: in.Payee, Amount: in.Amount, Currency: in.Currency}
	if err := mi.check(); err != nil {
		return Hold{}, cmdlog.Result{}, err
	}
	if in.Payee == "" || in.Payee == user {
		return Hold{}, cmdlog.Result{}, apperr.Field("payee", "name the user the money is held for")
	}
	if in.ExpiresIn == 0 {
		in.ExpiresIn = 24 * 3600
	}
	if in.ExpiresIn > MaxHold {
		return Hold{}, cmdlog.Result{}, apperr.Field("expires_in", "a hold lasts at most %d seconds", MaxHold)
	}
	c := moneyCmd{ID: TransferID(user, "hold/"+in.ID), ClientID: in.ID, From: user, To: in.Payee, Amount: in.Amount, Currency: mi.Currency, Timeout: in.ExpiresIn}
	res, err := s.sub.Submit(ctx, write("hold/"+user+"/"+in.ID, in.Payee, in.Amount, mi.Currency, in.ExpiresIn), kindHold, user, c)
	if err != nil {
		return Hold{}, res, err
	}
	var h Hold
	err = json.Unmarshal(res.Value, &h)
	return h, res, err
}

// Capture takes a hold's money, all of it (amount 0) or part (the rest goes
// back to the payer). Only the payee may; a hold is captured once.
func (s *Service) Capture(ctx context.Context, user string, holdID ledger.ID, amount uint64) (Hold, cmdlog.Result, error) {
	return s.resolveHold(ctx, kindCapture, user, holdID, amount)
}

// Release gives a hold's money back to the payer. Only the payee may.
func (s *Service) Release(ctx context.Context, user string, holdID ledger.ID) (Hold, cmdlog.Result, error) {
	return s.resolveHold(ctx, kindRelease, user, holdID, 0)
}

func (s *Service) resolveHold(ctx context.Context, kind, user string, holdID ledger.ID, amount uint64) (Hold, cmdlog.Result, error) {
	if h, ok := s.state.HoldOf(holdID, user); !ok || h.Payee != user {
		return Hold{}, cmdlog.Result{}, apperr.New(apperr.NotFound, "no such hold for you to resolve")
	}
	if amount > MaxAmount {
		return Hold{}, cmdlog.Result{}, apperr.Field("amount", "amount must be at most %d", MaxAmount)
	}
	// One capture or release per hold: its id follows from the hold's.
	c := moneyCmd{ID: TransferID(user, kind+"/"+holdID.String()), HoldID: holdID, Amount: amount}
	res, err := s.sub.Submit(ctx, cmdlog.Write{ID: kind + "/" + holdID.String()}, kind, user, c) // one capture or release per hold, whatever it asked
	if err != nil {
		return Hold{}, res, err
	}
	var h Hold
	err = json.Unmarshal(res.Value, &h)
	return h, res, err
}

// ApplyBatch runs a raw ledger batch (operators and internal services).
// Errors: invalid_field (an empty or oversized batch).
func (s *Service) ApplyBatch(ctx context.Context, w cmdlog.Write, actor string, b Batch) (BatchResult, cmdlog.Result, error) {
	if err := checkBatchSize(len(b.Accounts), len(b.Transfers)); err != nil {
		return BatchResult{}, cmdlog.Result{}, err
	}
	body, err := ledger.EncodeBatch(b.Accounts, b.Transfers)
	if err != nil {
		// The binary form has no room for it (a currency that is no ISO
		// code, long user data): the JSON command keeps the ledger's own
		// answer per event, as before the binary form existed.
		return s.submitBatch(ctx, w, actor, b)
	}
	packed, err := ledger.PackBatch(body)
	if err != nil {
		return BatchResult{}, cmdlog.Result{}, fmt.Errorf("pack batch: %w", err)
	}
	return s.submitBatch(ctx, w, actor, packed)
}

// ApplyBatchBinary runs a raw ledger batch in ledger's binary form: a
// header with the counts, then 128-byte account and transfer records (see
// ledger.DecodeBatch). Errors: invalid_field naming the header, or the
// record and field at fault, or an empty or oversized batch.
func (s *Service) ApplyBatchBinary(ctx context.Context, w cmdlog.Write, actor string, body []byte) (BatchResult, cmdlog.Result, error) {
	accounts, transfers, err := ledger.CheckBatch(body)
	if err != nil {
		var fe *ledger.FormatError
		if errors.As(err, &fe) {
			return BatchResult{}, cmdlog.Result{}, apperr.Field(fe.Field, "%s", fe.Error())
		}
		return BatchResult{}, cmdlog.Result{}, err
	}
	if err := checkBatchSize(accounts, transfers); err != nil {
		return BatchResult{}, cmdlog.Result{}, err
	}
	packed, err := ledger.PackBatch(body)
	if err != nil {
		return BatchResult{}, cmdlog.Result{}, fmt.Errorf("pack batch: %w", err)
	}
	return s.submitBatch(ctx, w, actor, packed)
}

func checkBatchSize(accounts, transfers int) *apperr.Error {
	if accounts+transfers == 0 {
		return apperr.Field("transfers", "the batch is empty")
	}
	if accounts > ledger.MaxBatch || transfers > ledger.MaxBatch {
		return apperr.Field("transfers", "a batch holds at most %d accounts and %d transfers", ledger.MaxBatch, ledger.MaxBatch)
	}
	return nil
}

// submitBatch appends a batch command: a packed binary batch ([]byte,
// which the envelope carries as a base64 JSON string), or a Batch.
func (s *Service) submitBatch(ctx context.Context, w cmdlog.Write, actor string, data any) (BatchResult, cmdlog.Result, error) {
	res, err := s.sub.Submit(ctx, w, kindBatch, actor, data)
	if err != nil {
		return BatchResult{}, res, err
	}
	var r BatchResult
	err = json.Unmarshal(res.Value, &r)
	return r, res, err
}

// decodeBatch decodes a batch command's data: a JSON string holding the
// packed binary batch in base64, or (as logged before the binary form, and
// for batches it cannot hold) the JSON object of a Batch.
func decodeBatch(data []byte) ([]ledger.Account, []ledger.Transfer, error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || data[0] != '"' {
		var b Batch
		err := json.Unmarshal(data, &b)
		return b.Accounts, b.Transfers, err
	}
	var packed []byte
	if s := data[1:]; len(s) > 0 && s[len(s)-1] == '"' && bytes.IndexByte(s, '\\') < 0 {
		// What json.Marshal made of a []byte: plain base64 between quotes,
		// decoded here without a second pass of the JSON scanner.
		s = s[:len(s)-1]
		packed = make([]byte, base64.StdEncoding.DecodedLen(len(s)))
		n, err := base64.StdEncoding.Decode(packed, s)
		if err != nil {
			return nil, nil, err
		}
		packed = packed[:n]
	} else if err := json.Unmarshal(data, &packed); err != nil {
		return nil, nil, err
	}
	return ledger.DecodePackedBatch(packed)
}

// ServiceHoldID is the client id under which a service (rides, food)
// places a hold on a user's wallet: prefix plus a digest of name keyed
// with secret (the cluster secret). The user cannot work it out, so cannot
// place a hold of their own under it beforehand to jam or dodge the
// service's payment. It passes the client-id format of the wallet API.
func ServiceHoldID(secret []byte, prefix, name string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(name))
	return prefix + hex.EncodeToString(m.Sum(nil))[:40]
}
