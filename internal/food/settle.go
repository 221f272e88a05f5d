package food

import (
	"context"
	"time"

	"superapp/internal/apperr"
	"superapp/internal/pay"
	"superapp/internal/saga"
)

// An order's money lives in the LEDGER stream, its state in FOOD: settling
// is the saga between them. From the order's state alone follows what must
// have happened to its hold, and the settler makes it so, each step
// idempotent (its ledger ids follow from the order):
//
//   - an order not ended must have its hold; if the ledger refuses it, the
//     order is cancelled by the system;
//   - delivered: the hold is captured and split (pay.CaptureSplit) between
//     the merchant, the courier and the platform;
//   - rejected or cancelled: the hold is released.
//
// A hold is pending until one of those, and the ledger resolves a pending
// transfer once: whichever node runs a step, and however often, each hold
// is captured or released exactly once. The order's home DC settles it at
// once, so does the node that served the step; any other node takes over
// an order left unsettled for TakeoverAfter.

// settleQuiet is how long after an order ended its settlement is checked
// again before it is forgotten.
const settleQuiet = 30 * time.Second

// settler takes the orders' money steps; moneyStep says which.
type settler = saga.Runner[*Order]

func newSettler(s *Service) *settler {
	return saga.New(saga.Config[*Order]{
		Get:   s.state.Order,
		Next:  s.moneyStep,
		Owner: func(o *Order) string { return o.HomeDC },
		Ended: func(o *Order) (bool, *time.Time) { return o.Ended(), o.EndedAt },
		// Only the scan, which checks, queues orders.
		CaughtUp: s.caughtUp, RecheckCaughtUp: false,
		Now: s.cfg.Now, DC: s.cfg.DC, Workers: 2,
		ScanInterval: s.cfg.ScanInterval, TakeoverAfter: s.cfg.TakeoverAfter,
		Quiet: settleQuiet, Rounds: 4,
	})
}

// Payouts is how a delivered order's hold is split: the merchant gets the
// food less the platform's fee, the courier the delivery fee, the
// platform its fee.
func Payouts(o *Order) []pay.Payout {
	var ps []pay.Payout
	if m := o.FoodTotal - o.PlatformFee; m > 0 {
		ps = append(ps, pay.Payout{Kind: pay.PayoutMerchant, User: o.Merchant, Amount: m})
	}
	if o.DeliveryFee > 0 {
		ps = append(ps, pay.Payout{Kind: pay.PayoutWallet, User: o.Courier, Amount: o.DeliveryFee})
	}
	if o.PlatformFee > 0 {
		ps = append(ps, pay.Payout{Kind: pay.PayoutPlatform, Amount: o.PlatformFee})
	}
	return ps
}

// moneyStep is the money step o's state asks for, nil when none.
func (s *Service) moneyStep(o *Order) (saga.Step, error) {
	h, ok := s.pay.State().HoldOf(o.HoldID, o.User)
	switch {
	case !ok && !o.Ended():
		return func(ctx context.Context) error {
			var w Written
			return s.placeHold(ctx, o, &w)
		}, nil
	case !ok && (o.EndedAt == nil || s.cfg.Now().Sub(*o.EndedAt) < settleQuiet):
		return nil, errNotYet // a hold may still be on its way
	case !ok || h.Status != "pending":
		return nil, nil
	case o.Status == StatusDelivered:
		return func(ctx context.Context) error {
			_, _, err := s.pay.CaptureSplit(ctx, EscrowUser, o.HoldID, Payouts(o))
			return err
		}, nil
	case o.Status == StatusRejected || o.Status == StatusCancelled:
		return func(ctx context.Context) error {
			_, _, err := s.pay.Release(ctx, EscrowUser, o.HoldID)
			if e := apperr.From(err); err != nil && pay.IsLedgerCode(e.Code) {
				return nil // resolved already (another node) or expired
			}
			return err
		}, nil
	}
	return nil, nil
}
