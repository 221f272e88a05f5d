package food

import (
	"context"
	"hash/fnv"
	"sync"
	"time"

	"superapp/internal/apperr"
	"superapp/internal/cmdlog"
	"superapp/internal/pay"
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

type settler struct {
	s     *Service
	queue chan string
	locks [64]sync.Mutex

	mu      sync.Mutex
	pending map[string]*unsettled
}

type unsettled struct {
	since time.Time
	next  time.Time
	fails int
}

// settleQuiet is how long after an order ended its settlement is checked
// again before it is forgotten.
const settleQuiet = 30 * time.Second

func newSettler(s *Service) *settler {
	return &settler{s: s, queue: make(chan string, 4096), pending: map[string]*unsettled{}}
}

func (st *settler) track(id string) {
	now := st.s.cfg.Now()
	st.mu.Lock()
	u := st.pending[id]
	if u == nil {
		u = &unsettled{}
		st.pending[id] = u
	}
	u.since, u.next = now, now.Add(st.s.cfg.ScanInterval)
	st.mu.Unlock()
}

func (st *settler) run(ctx context.Context) {
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case id := <-st.queue:
					_ = st.run1(ctx, id, false)
				}
			}
		}()
	}
	t := time.NewTicker(st.s.cfg.ScanInterval)
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
					u.next = now.Add(time.Second)
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

// run1 takes the order's money steps until none is left or one fails.
func (st *settler) run1(ctx context.Context, id string, inline bool) error {
	h := fnv.New32a()
	h.Write([]byte(id))
	l := &st.locks[h.Sum32()%uint32(len(st.locks))]
	l.Lock()
	defer l.Unlock()
	for range 4 {
		o, ok := st.s.state.Order(id)
		if !ok {
			return nil
		}
		step, err := st.next(o)
		if err == nil && step == nil {
			st.settled(o)
			return nil
		}
		if err == nil && !inline && !st.mayAct(o) {
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

func (st *settler) mayAct(o *Order) bool {
	if o.HomeDC == st.s.cfg.DC {
		return true
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	u := st.pending[o.ID]
	return u != nil && st.s.cfg.Now().Sub(u.since) >= st.s.cfg.TakeoverAfter
}

func (st *settler) settled(o *Order) {
	now := st.s.cfg.Now()
	st.mu.Lock()
	defer st.mu.Unlock()
	u := st.pending[o.ID]
	if u == nil {
		return
	}
	u.fails = 0
	if !o.Ended() {
		u.next = now.Add(time.Hour) // the order's next change wakes it
		return
	}
	if o.EndedAt != nil && now.Sub(*o.EndedAt) >= settleQuiet {
		delete(st.pending, o.ID)
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

// next is the money step o's state asks for, nil when none.
func (st *settler) next(o *Order) (stepFunc, error) {
	h, ok := st.s.pay.State().HoldOf(o.HoldID, o.User)
	switch {
	case !ok && !o.Ended():
		return func(ctx context.Context) (cmdlog.Result, error) {
			var w Written
			err := st.s.placeHold(ctx, o, &w)
			return cmdlog.Result{}, err
		}, nil
	case !ok && (o.EndedAt == nil || st.s.cfg.Now().Sub(*o.EndedAt) < settleQuiet):
		return nil, errNotYet // a hold may still be on its way
	case !ok || h.Status != "pending":
		return nil, nil
	case o.Status == StatusDelivered:
		return func(ctx context.Context) (cmdlog.Result, error) {
			_, res, err := st.s.pay.CaptureSplit(ctx, EscrowUser, o.HoldID, Payouts(o))
			return res, err
		}, nil
	case o.Status == StatusRejected || o.Status == StatusCancelled:
		return func(ctx context.Context) (cmdlog.Result, error) {
			_, res, err := st.s.pay.Release(ctx, EscrowUser, o.HoldID)
			if e := apperr.From(err); err != nil && pay.IsLedgerCode(e.Code) {
				return res, nil // resolved already (another node) or expired
			}
			return res, err
		}, nil
	}
	return nil, nil
}
