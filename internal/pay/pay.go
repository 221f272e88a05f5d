// Package pay is superapp's money: wallets per user and currency on the
// double-entry ledger (package ledger), top-ups through a bank rail,
// transfers between users, and the raw batch API. Its state is derived only
// from the LEDGER stream: every node applies the same batches in the same
// order, so every DC holds the same balances.
//
// It must never move money it has not committed on a quorum, never apply a
// transfer id twice, never let anyone spend or see another's money, and
// never import net/http or the NATS client.
package pay

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"regexp"
	"sort"
	"sync"
	"time"

	"superapp/internal/apperr"
	"superapp/internal/cmdlog"
	"superapp/internal/ledger"
)

// Stream is the name of the ledger stream.
const Stream = "LEDGER"

// Account codes: what an account is for.
const (
	CodeWallet     uint16 = 1
	CodeSettlement uint16 = 2 // the bank rail's settlement account, one per currency
)

// Limits.
const (
	// MaxAmount bounds one payment, in minor units.
	MaxAmount = 100_000_000_000
)

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

// State is the ledger read model. It is safe for concurrent use.
type State struct {
	mu sync.RWMutex
	l  *ledger.Ledger
	// wallets lists each user's wallet currencies.
	wallets map[string]map[string]bool
}

// NewState returns an empty state.
func NewState() *State {
	return &State{l: ledger.New(), wallets: map[string]map[string]bool{}}
}

const (
	kindBatch    = "ledger.batch"
	kindTopUp    = "wallet.topup"
	kindTransfer = "wallet.transfer"
)

// Batch is the raw batch API's command.
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
	From     string    `json:"from,omitempty"`
	To       string    `json:"to"`
	Amount   uint64    `json:"amount"`
	Currency string    `json:"currency"`
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
func (s *State) Apply(_ uint64, e *cmdlog.Envelope) (any, *apperr.Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := e.At.UnixNano()
	switch e.Kind {
	case kindBatch:
		var b Batch
		if err := json.Unmarshal(e.Data, &b); err != nil {
			return nil, apperr.New(apperr.Malformed, "bad command")
		}
		var r BatchResult
		if len(b.Accounts) > 0 {
			r.Accounts = s.l.CreateAccounts(now, b.Accounts)
		}
		if len(b.Transfers) > 0 {
			r.Transfers = s.l.CreateTransfers(now, b.Transfers)
		}
		return r, nil
	case kindTopUp, kindTransfer:
		var c moneyCmd
		if err := json.Unmarshal(e.Data, &c); err != nil {
			return nil, apperr.New(apperr.Malformed, "bad command")
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
		status := s.l.CreateTransfers(now, []ledger.Transfer{t})[0]
		if status == ledger.Exists {
			status = ledger.OK // the same payment, applied once before
		}
		p := Payment{Status: status, TransferID: c.ID, Amount: c.Amount, Currency: c.Currency, At: e.At}
		if e.Kind == kindTransfer {
			p.To = c.To
		}
		if status != ledger.OK {
			// Refused: nothing moved, so the id is not used up; the same
			// payment may come back once the wallet holds enough.
			return nil, refusal(status)
		}
		return p, nil
	}
	return nil, apperr.New(apperr.Invalid, "unknown command %q", e.Kind)
}

func (s *State) ensureWallet(now int64, user, currency string) {
	if s.wallets[user][currency] {
		return
	}
	s.l.CreateAccounts(now, []ledger.Account{{ID: WalletID(user, currency), Currency: currency, Code: CodeWallet, Flags: ledger.DebitsMustNotExceedCredits}})
	if s.wallets[user] == nil {
		s.wallets[user] = map[string]bool{}
	}
	s.wallets[user][currency] = true
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
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := []Balance{}
	for cur := range s.wallets[user] {
		a, _ := s.l.Account(WalletID(user, cur))
		out = append(out, Balance{Currency: cur, Available: a.CreditsPosted - a.DebitsPosted - a.DebitsPending, Pending: a.DebitsPending})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Currency < out[j].Currency })
	return out
}

// Check verifies the ledger's invariants.
func (s *State) Check() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.l.Check()
}

// Inspect reports, consistently, the machine's position and digest (from
// position), the ledger's state digest and its invariant check.
func (s *State) Inspect(fn func(applied uint64, digest, state string, check error), position func() (uint64, string)) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	applied, digest := position()
	fn(applied, digest, s.l.Digest(), s.l.Check())
}

// Digest is the ledger's state digest.
func (s *State) Digest() string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.l.Digest()
}

// Config configures a Service.
type Config struct {
	Log    cmdlog.Appender
	Now    func() time.Time
	Logger *slog.Logger
}

// Service is pay's use cases.
type Service struct {
	state   *State
	machine *cmdlog.Machine
	sub     *cmdlog.Submitter
}

// New returns a service; the node must feed Machine() the LEDGER stream.
func New(cfg Config) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	st := NewState()
	m := cmdlog.NewMachine(Stream, st.Apply, cfg.Logger)
	return &Service{state: st, machine: m, sub: &cmdlog.Submitter{Log: cfg.Log, Machine: m, Subject: "ledger", Now: cfg.Now}}
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
	c := moneyCmd{ID: TransferID(user, in.ID), To: user, Amount: in.Amount, Currency: in.Currency}
	return s.submit(ctx, kindTopUp, user, in, c)
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
	c := moneyCmd{ID: TransferID(user, in.ID), From: user, To: in.ToUser, Amount: in.Amount, Currency: in.Currency}
	return s.submit(ctx, kindTransfer, user, in, c)
}

func (s *Service) submit(ctx context.Context, kind, user string, in MoneyInput, c moneyCmd) (Payment, cmdlog.Result, error) {
	w := cmdlog.Write{ID: "pay/" + user + "/" + in.ID}
	res, err := s.sub.Submit(ctx, w, kind, user, c)
	if err != nil {
		return Payment{}, res, err
	}
	var p Payment
	err = json.Unmarshal(res.Value, &p)
	return p, res, err
}
