package rides

import (
	"context"
	"fmt"
	"sync"
	"time"

	"superapp/internal/apperr"
	"superapp/internal/cmdlog"
	"superapp/internal/geoindex"
)

// The dispatcher runs on every node. It offers a ride to the nearest free
// driver, and to the next after a decline or a timeout, for the rides its
// DC dispatches (the DC that took the request, or made the last offer). A
// ride another DC dispatches is taken over once it has waited
// TakeoverAfter without an offer: that DC may be gone. Two nodes may then
// propose offers for one ride, or one driver for two rides, at the same
// moment; the log orders the proposals and applying refuses all but the
// first, so correctness never depends on who dispatches.

type dispatcher struct {
	s     *Service
	queue chan string

	mu        sync.Mutex
	working   map[string]bool // rides being dispatched by this node
	proposing map[string]bool // drivers this node is offering a ride now
}

func newDispatcher(s *Service) *dispatcher {
	return &dispatcher{s: s, queue: make(chan string, 8192), working: map[string]bool{}, proposing: map[string]bool{}}
}

// wake asks for a ride to be looked at now; when the queue is full the
// next scan finds it.
func (d *dispatcher) wake(rideID string) {
	select {
	case d.queue <- rideID:
	default:
	}
}

func (d *dispatcher) run(ctx context.Context) {
	var wg sync.WaitGroup
	for range d.s.cfg.Dispatchers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case id := <-d.queue:
					d.dispatch(ctx, id)
				}
			}
		}()
	}
	t := time.NewTicker(d.s.cfg.ScanInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-t.C:
			d.scan()
		}
	}
}

// scan wakes the rides that need a dispatcher here: offers expired, rides
// waiting for a free driver, rides whose DC went quiet.
func (d *dispatcher) scan() {
	if !d.s.caughtUp() {
		return
	}
	now := d.s.cfg.Now()
	var due []string
	st := d.s.state
	st.mu.RLock()
	for id, r := range st.live {
		if d.mine(r, now) {
			due = append(due, id)
		}
	}
	st.mu.RUnlock()
	for _, id := range due {
		d.wake(id)
	}
}

// mine reports whether this node should dispatch r now.
func (d *dispatcher) mine(r *Ride, now time.Time) bool {
	since, idle := r.idle(now)
	if !idle {
		return false
	}
	return r.Dispatcher == d.s.cfg.DC || now.Sub(since) >= d.s.cfg.TakeoverAfter
}

func (d *dispatcher) claim(set map[string]bool, id string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if set[id] {
		return false
	}
	set[id] = true
	return true
}

func (d *dispatcher) unclaim(set map[string]bool, id string) {
	d.mu.Lock()
	delete(set, id)
	d.mu.Unlock()
}

func (d *dispatcher) proposed(driver string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.proposing[driver]
}

// dispatch offers the ride to the nearest free driver, or gives up.
func (d *dispatcher) dispatch(ctx context.Context, id string) {
	if !d.s.caughtUp() || !d.claim(d.working, id) {
		return
	}
	defer d.unclaim(d.working, id)
	now := d.s.cfg.Now()
	r, ok := d.s.state.Ride(id)
	if !ok || !d.mine(r, now) {
		return
	}
	if r.Attempts >= MaxOffers {
		d.giveUp(ctx, r)
		return
	}
	hits := d.candidates(r, now, 8)
	for i, h := range hits {
		if i == 4 || ctx.Err() != nil {
			return // the next scan tries again
		}
		if !d.claim(d.proposing, h.ID) {
			continue
		}
		err := d.offer(ctx, r, h)
		d.unclaim(d.proposing, h.ID)
		if err == nil {
			return
		}
		if e := apperr.From(err); e.Code != apperr.Conflict && e.Code != DriverOffline {
			d.s.log.Debug("offer", "ride", r.ID, "driver", h.ID, "err", err)
			return
		}
		// Refused: the driver took another offer, or the ride moved on.
		if cur, ok := d.s.state.Ride(id); !ok || !d.mine(cur, d.s.cfg.Now()) {
			return
		}
	}
	if len(hits) == 0 && now.Sub(r.RequestedAt) >= d.s.cfg.SearchTimeout {
		d.giveUp(ctx, r)
	}
}

// candidates are the free drivers nearest r's pickup, nearest first: online,
// on no ride and holding no offer, located recently, not tried for r.
func (d *dispatcher) candidates(r *Ride, now time.Time, k int) []geoindex.Hit {
	st := d.s.state
	st.mu.RLock()
	defer st.mu.RUnlock()
	return d.s.loc.idx.Nearest(r.Pickup.geo(), k, d.s.cfg.MaxPickupMeters, func(id string) bool {
		return id == r.Rider || r.tried(id) || !st.free(id, now) || !d.s.loc.freshAt(id, now) || d.proposed(id)
	})
}

func (d *dispatcher) offer(ctx context.Context, r *Ride, h geoindex.Hit) error {
	c := offerCmd{RideID: r.ID, Driver: h.ID, TimeoutMs: d.s.cfg.OfferTimeout.Milliseconds(), PickupMeters: int64(h.Meters), DC: d.s.cfg.DC}
	w := cmdlog.Write{ID: fmt.Sprintf("offer/%s/%d/%s", r.ID, r.Attempts+1, h.ID)}
	_, err := d.s.sub.Submit(ctx, w, kindOffer, "", c)
	return err
}

func (d *dispatcher) giveUp(ctx context.Context, r *Ride) {
	_, err := d.s.sub.Submit(ctx, cmdlog.Write{ID: "giveup/" + r.ID}, kindGiveUp, "", rideCmd{RideID: r.ID})
	if err != nil && apperr.From(err).Code != apperr.Conflict {
		d.s.log.Debug("give up", "ride", r.ID, "err", err)
	}
}
