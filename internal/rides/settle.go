package rides

import (
	"context"
	"errors"
	"time"

	"superapp/internal/apperr"
	"superapp/internal/cmdlog"
	"superapp/internal/pay"
	"superapp/internal/saga"
)

// A ride's money lives in the LEDGER stream, its state in RIDES: settling
// is the saga between them. From the ride's state alone follows what must
// have happened to its two holds, and the settler makes it so, one step at
// a time, each step idempotent (its id follows from the ride):
//
//   - the request-time hold (payee PlatformUser) is released once the ride
//     has a driver or ends; it is never captured;
//   - once a driver accepted, the same amount is held for the driver
//     (released first, so the rider needs the money once) and recorded
//     in the ride; if the rider no longer has it, the ride is cancelled;
//   - completed: the driver's hold is captured at the fare (the rest goes
//     back); cancelled: released, or captured at the cancellation fee.
//
// The DC that dispatches the ride settles it, and so does the node that
// served the step (at once, so the caller sees the money moved); any
// other node takes over a ride left unsettled for TakeoverAfter. Ledger
// ids make every step apply once, whoever runs it.

// settleQuiet is how long after a ride ended its settlement is checked
// again before it is forgotten: a step another node had in flight when it
// died is committed (or not) by then.
const settleQuiet = 30 * time.Second

var errNotYet = errors.New("the ledger has not applied the ride's holds here yet")

// settler takes the rides' money steps; moneyStep says which.
type settler = saga.Runner[*Ride]

func newSettler(s *Service) *settler {
	return saga.New(saga.Config[*Ride]{
		Get:   s.state.Ride,
		Next:  s.moneyStep,
		Owner: func(r *Ride) string { return r.Dispatcher },
		Ended: func(r *Ride) (bool, *time.Time) { return !r.Active(), r.EndedAt },
		// Rides tracked with no delay reach the workers past the scan's check.
		CaughtUp: s.caughtUp, RecheckCaughtUp: true,
		Now: s.cfg.Now, DC: s.cfg.DC, Workers: 4,
		ScanInterval: 4 * s.cfg.ScanInterval, TakeoverAfter: s.cfg.TakeoverAfter,
		Quiet: settleQuiet, Rounds: 6,
	})
}

// moneyStep is the money step r's state asks for, nil when none.
func (s *Service) moneyStep(r *Ride) (saga.Step, error) {
	ps := s.pay.State()
	p, ok := ps.HoldOf(r.RiderHold, r.Rider)
	switch {
	case !ok && r.Active():
		// The node that took the request died before its hold was
		// placed, and the client did not retry: place it now.
		return func(ctx context.Context) error {
			in := pay.HoldInput{ID: s.riderHoldID(r.ID), Payee: PlatformUser, Amount: r.HoldAmount, Currency: r.Currency, ExpiresIn: 3600}
			_, _, err := s.pay.PlaceHold(ctx, r.Rider, in)
			if err != nil && pay.IsLedgerCode(apperr.From(err).Code) {
				return s.cancelUnpaid(ctx, r)
			}
			return err
		}, nil
	case !ok && (r.EndedAt == nil || s.cfg.Now().Sub(*r.EndedAt) < settleQuiet):
		return nil, errNotYet // a hold may still be on its way
	case ok && r.Status != StatusRequested && p.Status == "pending":
		return func(ctx context.Context) error {
			_, _, err := s.pay.Release(ctx, PlatformUser, r.RiderHold)
			return err
		}, nil
	}
	if r.Driver == "" {
		return nil, nil
	}
	dID, client := s.driverHold(r)
	d, placed := ps.HoldOf(dID, r.Rider)
	if !placed && !r.DriverHold.IsZero() {
		return nil, errNotYet
	}
	switch {
	case r.Assigned() && !placed:
		return func(ctx context.Context) error {
			return s.holdForDriver(ctx, r, client)
		}, nil
	case r.Assigned() && r.DriverHold.IsZero():
		return func(ctx context.Context) error {
			_, err := s.sub.Submit(ctx, cmdlog.Write{ID: "hold/" + r.ID}, kindHold, "", rideCmd{RideID: r.ID, HoldID: dID})
			return err
		}, nil
	case !placed || d.Status != "pending":
		return nil, nil
	case r.Status == StatusCompleted:
		return func(ctx context.Context) error {
			_, _, err := s.pay.Capture(ctx, r.Driver, dID, r.Fare)
			return err
		}, nil
	case r.Status == StatusCancelled && r.CancelFee > 0:
		return func(ctx context.Context) error {
			_, _, err := s.pay.Capture(ctx, r.Driver, dID, r.CancelFee)
			return err
		}, nil
	case r.Status == StatusCancelled || r.Status == StatusNoDriver:
		return func(ctx context.Context) error {
			_, _, err := s.pay.Release(ctx, r.Driver, dID)
			return err
		}, nil
	}
	return nil, nil
}

// holdForDriver holds the ride's amount for its driver; if the ledger
// refuses (the rider spent the money meanwhile), the ride is cancelled.
func (s *Service) holdForDriver(ctx context.Context, r *Ride, client string) error {
	_, _, err := s.pay.PlaceHold(ctx, r.Rider, pay.HoldInput{ID: client, Payee: r.Driver, Amount: r.HoldAmount, Currency: r.Currency, ExpiresIn: 24 * 3600})
	if err == nil {
		return nil
	}
	if e := apperr.From(err); !pay.IsLedgerCode(e.Code) {
		return err
	}
	s.log.Info("cancel a ride the rider can no longer pay", "ride", r.ID, "err", err)
	return s.cancelUnpaid(ctx, r)
}

// cancelUnpaid cancels r for the system: the rider cannot pay for it.
func (s *Service) cancelUnpaid(ctx context.Context, r *Ride) error {
	_, err := s.sub.Submit(ctx, cmdlog.Write{ID: "cancel/" + r.ID + "/system"}, kindCancel, "", rideCmd{RideID: r.ID, System: true, Reason: "payment_failed"})
	return err
}
