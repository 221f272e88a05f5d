package rides

import (
	"context"
	"errors"
	"hash/fnv"
	"sync"
	"time"

	"superapp/internal/apperr"
	"superapp/internal/cmdlog"
	"superapp/internal/pay"
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

type settler struct {
	s     *Service
	queue chan string
	locks [64]sync.Mutex // one ride settles one step at a time on this node

	mu      sync.Mutex
	pending map[string]*unsettled
}

type unsettled struct {
	since time.Time // when this node saw it unsettled first
	next  time.Time // when to look again
	fails int
}

// settleQuiet is how long after a ride ended its settlement is checked
// again before it is forgotten: a step another node had in flight when it
// died is committed (or not) by then.
const settleQuiet = 30 * time.Second

func newSettler(s *Service) *settler {
	return &settler{s: s, queue: make(chan string, 4096), pending: map[string]*unsettled{}}
}

// track notes that a ride may need a money step, after a while.
func (st *settler) track(id string, after time.Duration) {
	now := st.s.cfg.Now()
	st.mu.Lock()
	u := st.pending[id]
	if u == nil {
		u = &unsettled{}
		st.pending[id] = u
	}
	// The ride changed: its dispatcher has TakeoverAfter from now.
	u.since, u.next = now, now.Add(after)
	st.mu.Unlock()
	if after > 0 {
		return // the scan finds it
	}
	select {
	case st.queue <- id:
	default:
	}
}

func (st *settler) run(ctx context.Context) {
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case id := <-st.queue:
					if st.s.caughtUp() {
						_ = st.run1(ctx, id, false)
					}
				}
			}
		}()
	}
	t := time.NewTicker(4 * st.s.cfg.ScanInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-t.C:
			if !st.s.caughtUp() {
				continue
			}
			now := st.s.cfg.Now()
			var due []string
			st.mu.Lock()
			for id, u := range st.pending {
				if !u.next.After(now) {
					due = append(due, id)
					u.next = now.Add(time.Second) // not again while queued
				}
			}
			st.mu.Unlock()
			for _, id := range due {
				select {
				case st.queue <- id:
				case <-ctx.Done():
				}
			}
		}
	}
}

var errNotYet = errors.New("the ledger has not applied the ride's holds here yet")

// run1 takes the ride's money steps until none is left or one fails.
// inline: the caller served the ride's step just now, so this node acts
// whoever dispatches.
func (st *settler) run1(ctx context.Context, id string, inline bool) error {
	h := fnv.New32a()
	h.Write([]byte(id))
	l := &st.locks[h.Sum32()%uint32(len(st.locks))]
	l.Lock()
	defer l.Unlock()
	for range 6 {
		r, ok := st.s.state.Ride(id)
		if !ok {
			return nil
		}
		step, err := st.next(r)
		if err == nil && step == nil {
			st.settled(r)
			return nil
		}
		if err == nil && !inline && !st.mayAct(r) {
			return nil
		}
		if err == nil {
			_, err = step(ctx)
		}
		if err != nil {
			st.failed(id)
			return err
		}
	}
	return nil
}

// mayAct reports whether this node settles r: its dispatcher, or anyone
// once it has been left unsettled long enough.
func (st *settler) mayAct(r *Ride) bool {
	if r.Dispatcher == st.s.cfg.DC {
		return true
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	u := st.pending[r.ID]
	return u != nil && st.s.cfg.Now().Sub(u.since) >= st.s.cfg.TakeoverAfter
}

// settled forgets a ride whose money is where its state says, once it has
// ended a while ago.
func (st *settler) settled(r *Ride) {
	now := st.s.cfg.Now()
	st.mu.Lock()
	defer st.mu.Unlock()
	u := st.pending[r.ID]
	if u == nil {
		return
	}
	u.fails = 0
	if r.Active() {
		u.next = now.Add(time.Hour) // the ride's next change wakes it
		return
	}
	if r.EndedAt != nil && now.Sub(*r.EndedAt) >= settleQuiet {
		delete(st.pending, r.ID)
		return
	}
	u.next = now.Add(settleQuiet)
}

func (st *settler) failed(id string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if u := st.pending[id]; u != nil {
		u.fails++
		u.next = st.s.cfg.Now().Add(min(time.Duration(1<<min(u.fails, 6))*250*time.Millisecond, 15*time.Second))
	}
}

type stepFunc func(ctx context.Context) (cmdlog.Result, error)

// next is the money step r's state asks for, nil when none.
func (st *settler) next(r *Ride) (stepFunc, error) {
	ps := st.s.pay.State()
	p, ok := ps.HoldOf(r.RiderHold, r.Rider)
	switch {
	case !ok && r.Active():
		// The node that took the request died before its hold was
		// placed, and the client did not retry: place it now.
		return func(ctx context.Context) (cmdlog.Result, error) {
			in := pay.HoldInput{ID: st.s.riderHoldID(r.ID), Payee: PlatformUser, Amount: r.HoldAmount, Currency: r.Currency, ExpiresIn: 3600}
			_, res, err := st.s.pay.PlaceHold(ctx, r.Rider, in)
			if err != nil && pay.IsLedgerCode(apperr.From(err).Code) {
				return st.s.sub.Submit(ctx, cmdlog.Write{ID: "cancel/" + r.ID + "/system"}, kindCancel, "", rideCmd{RideID: r.ID, System: true, Reason: "payment_failed"})
			}
			return res, err
		}, nil
	case !ok && (r.EndedAt == nil || st.s.cfg.Now().Sub(*r.EndedAt) < settleQuiet):
		return nil, errNotYet // a hold may still be on its way
	case ok && r.Status != StatusRequested && p.Status == "pending":
		return func(ctx context.Context) (cmdlog.Result, error) {
			_, res, err := st.s.pay.Release(ctx, PlatformUser, r.RiderHold)
			return res, err
		}, nil
	}
	if r.Driver == "" {
		return nil, nil
	}
	dID, client := st.s.driverHold(r)
	d, placed := ps.HoldOf(dID, r.Rider)
	if !placed && !r.DriverHold.IsZero() {
		return nil, errNotYet
	}
	switch {
	case r.Assigned() && !placed:
		return func(ctx context.Context) (cmdlog.Result, error) {
			return st.holdForDriver(ctx, r, client)
		}, nil
	case r.Assigned() && r.DriverHold.IsZero():
		return func(ctx context.Context) (cmdlog.Result, error) {
			return st.s.sub.Submit(ctx, cmdlog.Write{ID: "hold/" + r.ID}, kindHold, "", rideCmd{RideID: r.ID, HoldID: dID})
		}, nil
	case !placed || d.Status != "pending":
		return nil, nil
	case r.Status == StatusCompleted:
		return func(ctx context.Context) (cmdlog.Result, error) {
			_, res, err := st.s.pay.Capture(ctx, r.Driver, dID, r.Fare)
			return res, err
		}, nil
	case r.Status == StatusCancelled && r.CancelFee > 0:
		return func(ctx context.Context) (cmdlog.Result, error) {
			_, res, err := st.s.pay.Capture(ctx, r.Driver, dID, r.CancelFee)
			return res, err
		}, nil
	case r.Status == StatusCancelled || r.Status == StatusNoDriver:
		return func(ctx context.Context) (cmdlog.Result, error) {
			_, res, err := st.s.pay.Release(ctx, r.Driver, dID)
			return res, err
		}, nil
	}
	return nil, nil
}

// holdForDriver holds the ride's amount for its driver; if the ledger
// refuses (the rider spent the money meanwhile), the ride is cancelled.
func (st *settler) holdForDriver(ctx context.Context, r *Ride, client string) (cmdlog.Result, error) {
	_, res, err := st.s.pay.PlaceHold(ctx, r.Rider, pay.HoldInput{ID: client, Payee: r.Driver, Amount: r.HoldAmount, Currency: r.Currency, ExpiresIn: 24 * 3600})
	if err == nil {
		return res, nil
	}
	if e := apperr.From(err); !pay.IsLedgerCode(e.Code) {
		return res, err
	}
	st.s.log.Info("cancel a ride the rider can no longer pay", "ride", r.ID, "err", err)
	return st.s.sub.Submit(ctx, cmdlog.Write{ID: "cancel/" + r.ID + "/system"}, kindCancel, "", rideCmd{RideID: r.ID, System: true, Reason: "payment_failed"})
}
