package pay

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"superapp/internal/apperr"
	"superapp/internal/cmdlog"
	"superapp/internal/ledger"
)

// A split captures a hold and pays it out to several parties at once: the
// hold's money (payer → the payee's account, which acts as escrow) is
// posted and moved on from the escrow to each party by a linked chain of
// transfers, all in one ledger call, so either every transfer happens or
// none does. Food orders use it on delivery: the merchant, the courier and
// the platform are paid from the customer's hold in one step.

// CodePlatform is the ledger code of the platform's fee account.
const CodePlatform uint16 = 5

const kindSplit = "hold.split"

// Payout kinds: where a part of a split goes.
const (
	PayoutWallet   = "wallet"   // a user's wallet
	PayoutMerchant = "merchant" // a merchant's account (refundable as a sale)
	PayoutPlatform = "platform" // the platform's fee account
)

// MaxPayouts bounds the parts of one split.
const MaxPayouts = 16

// PlatformAccountID is the platform's fee account in a currency.
func PlatformAccountID(currency string) ledger.ID { return ledger.IDFrom("platform/" + currency) }

// SplitTransferID is the i-th transfer of a hold's split: 0 posts the
// hold, 1.. pay the parts. They follow from the hold, so a hold is split
// at most once, whoever asks.
func SplitTransferID(hold ledger.ID, i int) ledger.ID {
	return ledger.IDFrom("split/" + hold.String() + "/" + strconv.Itoa(i))
}

// Payout is one part of a split.
type Payout struct {
	Kind   string `json:"kind"`
	User   string `json:"user,omitempty"` // the wallet's or the merchant's user
	Amount uint64 `json:"amount"`
}

// Split is the outcome of a split: the hold captured and paid out.
type Split struct {
	HoldID   ledger.ID `json:"hold_id"`
	Captured uint64    `json:"captured"`
	Currency string    `json:"currency"`
	Payouts  []Payout  `json:"payouts"`
	// SaleID is the merchant's payout, which the merchant refunds through
	// Refund, as a sale.
	SaleID ledger.ID `json:"sale_id,omitzero"`
}

type splitCmd struct {
	HoldID  ledger.ID `json:"hold_id"`
	Payouts []Payout  `json:"payouts"`
}

func (s *State) applySplit(now int64, e *cmdlog.Envelope) (any, *apperr.Error) {
	var c splitCmd
	if err := json.Unmarshal(e.Data, &c); err != nil {
		return nil, apperr.New(apperr.Malformed, "bad command")
	}
	tx := s.tx()
	var h Hold
	if !tx.GetJSON(holdKey(c.HoldID), &h) || e.Actor == "" || h.Payee != e.Actor {
		return nil, apperr.New(apperr.NotFound, "no such hold for you to resolve")
	}
	if err := s.checkPayouts(&h, c.Payouts); err != nil {
		return nil, err
	}
	out := Split{HoldID: h.HoldID, Currency: h.Currency, Payouts: c.Payouts}
	var sum uint64
	for i, p := range c.Payouts {
		sum += p.Amount
		if p.Kind == PayoutMerchant && out.SaleID.IsZero() {
			out.SaleID = SplitTransferID(h.HoldID, i+1)
		}
	}
	out.Captured = sum
	if _, done := s.l.Transfer(tx, SplitTransferID(h.HoldID, 0)); done {
		return out, nil // split by this very command before
	}
	escrow := WalletID(h.Payee, h.Currency)
	ts := make([]ledger.Transfer, 0, len(c.Payouts)+1)
	ts = append(ts, ledger.Transfer{ID: SplitTransferID(h.HoldID, 0), PendingID: h.HoldID, Amount: sum, Flags: ledger.PostPending | ledger.Linked})
	for i, p := range c.Payouts {
		t := ledger.Transfer{ID: SplitTransferID(h.HoldID, i+1), DebitAccountID: escrow, CreditAccountID: s.payoutAccount(now, p, h.Currency),
			Amount: p.Amount, Currency: h.Currency, Flags: ledger.Linked}
		if i == len(c.Payouts)-1 {
			t.Flags = 0
		}
		ts = append(ts, t)
	}
	results := s.l.CreateTransfers(now, ts)
	for _, r := range results {
		if r != ledger.OK && r != ledger.LinkedEventFailed {
			// Nothing is written: a hold that expired says so when read.
			return nil, refusal(r)
		}
	}
	h.Status, h.Captured = "captured", sum
	tx.SetJSON(holdKey(h.HoldID), h)
	s.record(h.Payer, Entry{TransferID: ts[0].ID, Kind: "captured", Amount: sum, Currency: h.Currency, Counterparty: h.Payee, At: e.At})
	for i, p := range c.Payouts {
		id := ts[i+1].ID
		switch p.Kind {
		case PayoutWallet:
			s.record(p.User, Entry{TransferID: id, Kind: "received", Amount: p.Amount, Currency: h.Currency, Counterparty: h.Payer, At: e.At})
		case PayoutMerchant:
			tx.SetJSON(saleKey(id), Sale{PaymentID: id, Merchant: p.User, Customer: h.Payer, Amount: p.Amount, Currency: h.Currency, At: e.At})
			s.appendLine(merchantLogPrefix(p.User), Entry{TransferID: id, Kind: "sale", Amount: p.Amount, Currency: h.Currency, Counterparty: h.Payer, At: e.At})
		}
	}
	return out, nil
}

func (s *State) checkPayouts(h *Hold, ps []Payout) *apperr.Error {
	if len(ps) == 0 || len(ps) > MaxPayouts {
		return apperr.Field("payouts", "a split has 1 to %d payouts", MaxPayouts)
	}
	var sum uint64
	for i, p := range ps {
		field := fmt.Sprintf("payouts[%d]", i)
		switch {
		case p.Amount == 0 || p.Amount > MaxAmount:
			return apperr.Field(field+".amount", "amount must be positive and at most %d", MaxAmount)
		case p.Kind == PayoutWallet && (p.User == "" || p.User == h.Payee):
			return apperr.Field(field+".user", "name the user to pay")
		case p.Kind == PayoutMerchant && !s.tx().Has(merchantKey(p.User)):
			return &apperr.Error{Code: NotMerchant, Field: field + ".user", Message: "no such merchant"}
		case p.Kind != PayoutWallet && p.Kind != PayoutMerchant && p.Kind != PayoutPlatform:
			return apperr.Field(field+".kind", "kind must be wallet, merchant or platform")
		}
		sum += p.Amount
	}
	if sum > h.Amount {
		return apperr.Field("payouts", "the payouts add up to %d, more than the %d held", sum, h.Amount)
	}
	return nil
}

// payoutAccount is the account a payout credits, created if need be.
func (s *State) payoutAccount(now int64, p Payout, currency string) ledger.ID {
	switch p.Kind {
	case PayoutMerchant:
		id := MerchantAccountID(p.User, currency)
		s.l.CreateAccounts(now, []ledger.Account{{ID: id, Currency: currency, Code: CodeMerchant, Flags: ledger.DebitsMustNotExceedCredits}})
		return id
	case PayoutPlatform:
		id := PlatformAccountID(currency)
		s.l.CreateAccounts(now, []ledger.Account{{ID: id, Currency: currency, Code: CodePlatform, Flags: ledger.DebitsMustNotExceedCredits}})
		return id
	}
	s.ensureWallet(now, p.User, currency)
	return WalletID(p.User, currency)
}

// CaptureSplit captures a hold and pays it out to the payouts in one
// all-or-nothing ledger step; what the payouts leave of the hold goes back
// to the payer. Only the hold's payee may, once per hold: a retry answers
// the first split. Errors: not_found, invalid_field (payouts), not_merchant,
// the ledger's refusals (pending_transfer_already_voided,
// pending_transfer_expired, ...).
func (s *Service) CaptureSplit(ctx context.Context, payee string, holdID ledger.ID, payouts []Payout) (Split, cmdlog.Result, error) {
	if h, ok := s.state.HoldOf(holdID, payee); !ok || h.Payee != payee {
		return Split{}, cmdlog.Result{}, apperr.New(apperr.NotFound, "no such hold for you to resolve")
	}
	var out Split
	res, err := s.submitAs(ctx, cmdlog.Write{ID: kindSplit + "/" + holdID.String()}, kindSplit, payee, splitCmd{HoldID: holdID, Payouts: payouts}, &out)
	return out, res, err
}

// AccountBalance is an account's posted balance (credits less debits) and
// whether the account exists.
func (s *State) AccountBalance(id ledger.ID) (int64, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	a, ok := s.l.Account(id)
	if !ok {
		return 0, false
	}
	return int64(a.CreditsPosted) - int64(a.DebitsPosted), true
}
