package pay

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
	"time"

	"superapp/internal/apperr"
	"superapp/internal/cmdlog"
	"superapp/internal/ledger"
)

// A bank operation is open from the moment the log records the intent
// (before the bank is called) until the ledger has settled it: a top-up
// credited (or given up as declined), a withdrawal posted or released.
// Whatever dies in between — the node, its DC, the client that never
// retries — the reconciler finishes it: it asks the bank again with the
// same reference (the bank moves money once per reference) and settles
// the ledger with the same idempotency id the client would have used.

const (
	kindTopUpBegin = "topup.begin"
	kindBankAbort  = "bankop.abort"
)

// BankOp is an open bank operation.
type BankOp struct {
	Kind       string    `json:"kind"` // "collect" or "payout"
	User       string    `json:"user"`
	ClientID   string    `json:"client_id"`
	TransferID ledger.ID `json:"transfer_id"`
	Amount     uint64    `json:"amount"`
	Currency   string    `json:"currency"`
	Ref        string    `json:"ref"`
	DC         string    `json:"dc"` // the DC that began it, and reconciles it first
	At         time.Time `json:"at"`
}

type topUpBegin struct {
	moneyCmd
	Ref string `json:"ref"`
	DC  string `json:"dc"`
}

func (s *State) openBankOp(op BankOp) {
	if _, ok := s.bankOps[op.TransferID]; !ok {
		s.bankOps[op.TransferID] = &op
		s.tx().SetJSON(bankOpKey(op.TransferID), op)
	}
}

func (s *State) closeBankOp(id ledger.ID) {
	if _, ok := s.bankOps[id]; ok {
		delete(s.bankOps, id)
		s.tx().Delete(bankOpKey(id))
	}
}

// applyTopUpBegin records a top-up's intent, unless it was credited already.
func (s *State) applyTopUpBegin(e *cmdlog.Envelope) (any, *apperr.Error) {
	var c topUpBegin
	if err := json.Unmarshal(e.Data, &c); err != nil {
		return nil, apperr.New(apperr.Malformed, "bad command")
	}
	if _, done := s.l.Transfer(s.tx(), c.ID); !done {
		s.openBankOp(BankOp{Kind: "collect", User: c.To, ClientID: c.ClientID, TransferID: c.ID, Amount: c.Amount, Currency: c.Currency, Ref: c.Ref, DC: c.DC, At: e.At})
	}
	return struct{}{}, nil
}

// applyBankAbort closes a top-up the bank declined: nothing was collected,
// nothing will be credited.
func (s *State) applyBankAbort(e *cmdlog.Envelope) (any, *apperr.Error) {
	var c struct {
		TransferID ledger.ID `json:"transfer_id"`
	}
	if err := json.Unmarshal(e.Data, &c); err != nil {
		return nil, apperr.New(apperr.Malformed, "bad command")
	}
	s.closeBankOp(c.TransferID)
	return struct{}{}, nil
}

// OpenBankOps lists the open bank operations, oldest first.
func (s *State) OpenBankOps() []BankOp {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]BankOp, 0, len(s.bankOps))
	for _, op := range s.bankOps {
		out = append(out, *op)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].At.Equal(out[j].At) {
			return out[i].At.Before(out[j].At)
		}
		return out[i].Ref < out[j].Ref
	})
	return out
}

// Reconcile timings: an operation is left to its own request this long,
// and to the DC that began it this long before another DC takes it over.
const (
	reconcileAfter    = 30 * time.Second
	reconcileTakeover = 2 * time.Minute
	reconcileEvery    = time.Second
)

// Reconcile finishes the open bank operations of requests that did not,
// until ctx ends. Every node runs it; dc is this node's DC.
func (s *Service) Reconcile(ctx context.Context, dc string) {
	if s.rail == nil {
		return
	}
	t := time.NewTicker(reconcileEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := s.sub.Now()
		for _, op := range s.state.OpenBankOps() {
			age := now.Sub(op.At)
			if age < reconcileAfter || (op.DC != dc && age < reconcileTakeover) {
				continue
			}
			if err := s.settle(ctx, op); err != nil && ctx.Err() == nil {
				s.log.Warn("bank operation not settled yet", "kind", op.Kind, "ref", op.Ref, "err", err)
			}
		}
	}
}

// settle asks the bank again (same reference) and settles the ledger with
// the id the client's own request used.
func (s *Service) settle(ctx context.Context, op BankOp) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	switch op.Kind {
	case "collect":
		err := s.rail.Collect(ctx, op.User, op.Amount, op.Currency, op.Ref)
		if errors.Is(err, ErrDeclined) {
			_, err = s.sub.Submit(ctx, cmdlog.Write{ID: "bankop-abort/" + op.TransferID.String()}, kindBankAbort, op.User, map[string]ledger.ID{"transfer_id": op.TransferID})
			return err
		}
		if err != nil {
			return err
		}
		c := moneyCmd{ID: op.TransferID, ClientID: op.ClientID, To: op.User, Amount: op.Amount, Currency: op.Currency}
		_, _, err = s.submit(ctx, write("topup/"+op.User+"/"+op.ClientID, kindTopUp, op.Amount, op.Currency), kindTopUp, op.User, c)
		return err
	case "payout":
		paid := true
		if err := s.rail.Payout(ctx, op.User, op.Amount, op.Currency, op.Ref); err != nil {
			if !errors.Is(err, ErrDeclined) {
				return err
			}
			paid = false
		}
		c := moneyCmd{ID: op.TransferID, ClientID: op.ClientID, From: op.User, Amount: op.Amount, Currency: op.Currency}
		var w Withdrawal
		_, err := s.submitAs(ctx, cmdlog.Write{ID: "withdraw-end/" + op.User + "/" + op.ClientID}, kindWithdrawEnd, op.User, struct {
			moneyCmd
			Paid bool `json:"paid"`
		}{c, paid}, &w)
		return err
	}
	return nil
}
