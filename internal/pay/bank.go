package pay

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"

	"superapp/internal/apperr"
	"superapp/internal/cmdlog"
	"superapp/internal/ledger"
)

// BankRail moves money between a user's linked bank account and the
// platform's settlement account at the bank. Every call carries a
// reference and must be idempotent on it: a call repeated after a
// failover must not move money twice.
type BankRail interface {
	// Collect pulls amount from the user's bank account (a top-up).
	Collect(ctx context.Context, user string, amount uint64, currency, ref string) error
	// Payout sends amount to the user's bank account (a withdrawal).
	Payout(ctx context.Context, user string, amount uint64, currency, ref string) error
}

// ErrDeclined is a bank's refusal (no funds, closed account...).
var ErrDeclined = errors.New("declined by the bank")

// Bank error codes.
const (
	BankDeclined    = "bank_declined"
	BankUnavailable = "bank_unavailable"
)

func init() {
	apperr.Register(BankDeclined, http.StatusUnprocessableEntity)
	apperr.Register(BankUnavailable, http.StatusBadGateway)
}

func bankError(err error) *apperr.Error {
	if errors.Is(err, ErrDeclined) {
		return apperr.New(BankDeclined, "the bank declined it")
	}
	return &apperr.Error{Code: BankUnavailable, Message: "the bank did not answer; retry with the same id", RetryAfter: 2}
}

// SimulatedBank is a bank rail SIMULATOR for development and tests: every
// user's linked account holds Opening, movements are kept in memory by
// reference. It is not a bank and moves no real money. Each node has its
// own: a real rail is one external system all DCs share.
type SimulatedBank struct {
	// Opening is each account's starting balance.
	Opening uint64

	mu       sync.Mutex
	balances map[string]int64
	done     map[string]bool
	// Down makes every call fail as if the bank were unreachable.
	Down bool
}

// NewSimulatedBank returns a simulator whose accounts start with opening.
func NewSimulatedBank(opening uint64) *SimulatedBank {
	return &SimulatedBank{Opening: opening, balances: map[string]int64{}, done: map[string]bool{}}
}

func (b *SimulatedBank) move(user string, delta int64, ref string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.Down {
		return errors.New("simulated bank is down")
	}
	if b.done[ref] {
		return nil
	}
	bal, ok := b.balances[user]
	if !ok {
		bal = int64(b.Opening)
	}
	if bal+delta < 0 {
		return ErrDeclined
	}
	b.balances[user] = bal + delta
	b.done[ref] = true
	return nil
}

// Collect implements BankRail.
func (b *SimulatedBank) Collect(_ context.Context, user string, amount uint64, _ string, ref string) error {
	return b.move(user, -int64(amount), "collect/"+ref)
}

// Payout implements BankRail.
func (b *SimulatedBank) Payout(_ context.Context, user string, amount uint64, _ string, ref string) error {
	return b.move(user, int64(amount), "payout/"+ref)
}

// Balance is a simulated account's balance.
func (b *SimulatedBank) Balance(user string) int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	if bal, ok := b.balances[user]; ok {
		return bal
	}
	return int64(b.Opening)
}

var _ BankRail = (*SimulatedBank)(nil)

const (
	kindWithdrawBegin = "withdraw.begin"
	kindWithdrawEnd   = "withdraw.end"
)

// Withdrawal is a withdrawal's state.
type Withdrawal struct {
	TransferID ledger.ID `json:"transfer_id"`
	Amount     uint64    `json:"amount"`
	Currency   string    `json:"currency"`
	Status     string    `json:"status"` // pending, ok, declined
}

func (s *State) withdrawBegin(now int64, e *cmdlog.Envelope, c moneyCmd) (any, *apperr.Error) {
	tx := s.tx()
	if st, ok := s.l.PendingStateOf(tx, c.ID); ok {
		return Withdrawal{TransferID: c.ID, Amount: c.Amount, Currency: c.Currency, Status: map[ledger.PendingState]string{
			ledger.StatePending: "pending", ledger.StatePosted: "ok", ledger.StateVoided: "declined", ledger.StateExpired: "declined"}[st]}, nil
	}
	sp, err := s.withinLimits(e.Actor, c.Currency, c.Amount, e.At)
	if err != nil {
		return nil, err
	}
	s.ensureWallet(now, e.Actor, c.Currency)
	s.ensureSettlement(now, c.Currency)
	t := ledger.Transfer{ID: c.ID, DebitAccountID: WalletID(e.Actor, c.Currency), CreditAccountID: SettlementID(c.Currency),
		Amount: c.Amount, Currency: c.Currency, Flags: ledger.Pending}
	if st := s.l.CreateTransfers(now, []ledger.Transfer{t})[0]; st != ledger.OK {
		return nil, refusal(st)
	}
	s.book(sp)
	s.openBankOp(BankOp{Kind: "payout", User: e.Actor, ClientID: c.ClientID, TransferID: c.ID, Amount: c.Amount, Currency: c.Currency, Ref: c.ID.String(), DC: c.DC, At: e.At})
	return Withdrawal{TransferID: c.ID, Amount: c.Amount, Currency: c.Currency, Status: "pending"}, nil
}

func (s *State) withdrawEnd(now int64, e *cmdlog.Envelope, c moneyCmd, paid bool) (any, *apperr.Error) {
	t := ledger.Transfer{ID: ledger.IDFrom("withdraw-end/" + c.ID.String()), PendingID: c.ID, Flags: ledger.VoidPending}
	if paid {
		t.Flags = ledger.PostPending
	}
	st := s.l.CreateTransfers(now, []ledger.Transfer{t})[0]
	tx := s.tx()
	if ps, _ := s.l.PendingStateOf(tx, c.ID); ps != ledger.StatePending {
		s.closeBankOp(c.ID)
	}
	w := Withdrawal{TransferID: c.ID, Amount: c.Amount, Currency: c.Currency, Status: "declined"}
	switch {
	case st == ledger.OK || st == ledger.Exists || st == ledger.PendingTransferAlreadyPosted || st == ledger.PendingTransferAlreadyVoided:
		if ps, _ := s.l.PendingStateOf(tx, c.ID); ps == ledger.StatePosted {
			w.Status = "ok"
		}
	default:
		return nil, refusal(st)
	}
	if st == ledger.OK && paid {
		s.record(e.Actor, Entry{TransferID: c.ID, Kind: "withdrawal", Amount: c.Amount, Currency: c.Currency, At: e.At})
	}
	return w, nil
}

// Withdraw sends money from the wallet to the user's bank: the ledger
// reserves it, the rail pays it out, the ledger posts it (or releases it
// if the bank declines). A retry with the same id resumes where it stopped;
// the rail's reference makes the payout happen once.
func (s *Service) Withdraw(ctx context.Context, user string, in MoneyInput) (Withdrawal, cmdlog.Result, error) {
	if err := in.check(); err != nil {
		return Withdrawal{}, cmdlog.Result{}, err
	}
	if s.rail == nil {
		return Withdrawal{}, cmdlog.Result{}, apperr.New(BankUnavailable, "no bank rail configured")
	}
	c := moneyCmd{ID: TransferID(user, "withdraw/"+in.ID), ClientID: in.ID, From: user, Amount: in.Amount, Currency: in.Currency, DC: s.dc}
	var w Withdrawal
	res, err := s.submitAs(ctx, write("withdraw/"+user+"/"+in.ID, in.Amount, in.Currency), kindWithdrawBegin, user, c, &w)
	if err != nil {
		return w, res, err
	}
	// The ledger, not the answer remembered for this id, says where the
	// withdrawal stands and how much it reserved.
	pending, amount := s.state.pendingOf(c.ID)
	if pending != ledger.StatePending {
		w.Status = map[ledger.PendingState]string{ledger.StatePosted: "ok", ledger.StateVoided: "declined", ledger.StateExpired: "declined"}[pending]
		if w.Status == "declined" {
			return w, res, apperr.New(BankDeclined, "the bank declined the payout; the money stays in the wallet")
		}
		return w, res, nil
	}
	paid := true
	if err := s.rail.Payout(ctx, user, amount, in.Currency, c.ID.String()); err != nil {
		if !errors.Is(err, ErrDeclined) {
			// Not known: leave it reserved; a retry with the same id asks again.
			return w, res, bankError(err)
		}
		paid = false
	}
	res, err = s.submitAs(ctx, cmdlog.Write{ID: "withdraw-end/" + user + "/" + in.ID}, kindWithdrawEnd, user, struct {
		moneyCmd
		Paid bool `json:"paid"`
	}{c, paid}, &w)
	if err == nil && w.Status == "declined" {
		return w, res, apperr.New(BankDeclined, "the bank declined the payout; the money stays in the wallet")
	}
	return w, res, err
}

// pendingOf returns where a pending transfer stands and its amount.
func (s *State) pendingOf(id ledger.ID) (ledger.PendingState, uint64) {
	t, ok := s.l.Transfer(s.space, id)
	if !ok {
		return 0, 0
	}
	st, _ := s.l.PendingStateOf(s.space, id)
	return st, t.Amount
}

func (s *State) applyBank(now int64, e *cmdlog.Envelope) (any, *apperr.Error) {
	var c struct {
		moneyCmd
		Paid bool `json:"paid"`
	}
	if err := json.Unmarshal(e.Data, &c); err != nil {
		return nil, apperr.New(apperr.Malformed, "bad command")
	}
	if e.Kind == kindWithdrawBegin {
		return s.withdrawBegin(now, e, c.moneyCmd)
	}
	return s.withdrawEnd(now, e, c.moneyCmd, c.Paid)
}
