package rides

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"superapp/internal/apperr"
	"superapp/internal/cmdlog"
	"superapp/internal/pay"
	"superapp/internal/store/storetest"
)

// memLog is a stream that every node's machine applies at once, in order:
// the log as the nodes of a cluster see it, without NATS.
type memLog struct {
	mu sync.Mutex
	n  uint64
	ms []*cmdlog.Machine
}

func (l *memLog) Append(_ context.Context, _, _ string, data []byte) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n++
	for _, m := range l.ms {
		m.Apply(l.n, data, 0)
	}
	return l.n, nil
}

// memSignals delivers every broadcast to every listener.
type memSignals struct {
	mu  sync.Mutex
	fns []func([]byte)
}

func (b *memSignals) Broadcast(_ string, data []byte) {
	b.mu.Lock()
	fns := b.fns
	b.mu.Unlock()
	for _, fn := range fns {
		fn(data)
	}
}

func (b *memSignals) Listen(_ string, fn func([]byte)) error {
	b.mu.Lock()
	b.fns = append(b.fns, fn)
	b.mu.Unlock()
	return nil
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// cluster is nodes of rides and pay sharing their logs.
type cluster struct {
	t     *testing.T
	clock *clock
	rides *memLog
	led   *memLog
	sig   *memSignals
	nodes []*Service
}

func newCluster(t *testing.T) *cluster {
	return &cluster{t: t, clock: &clock{t: time.Now().UTC()}, rides: &memLog{}, led: &memLog{}, sig: &memSignals{}}
}

// node adds a node in dc; started nodes dispatch and settle.
func (c *cluster) node(dc string, start bool) *Service {
	return c.nodeConfig(dc, start, Config{})
}

func (c *cluster) nodeConfig(dc string, start bool, cfg Config) *Service {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	p := pay.New(pay.Config{Log: c.led, Store: storetest.Open(c.t), Now: c.clock.Now, Logger: logger})
	cfg.Log, cfg.Pay, cfg.DC, cfg.Secret, cfg.Signals, cfg.Now, cfg.Logger = c.rides, p, dc, []byte("test secret"), c.sig, c.clock.Now, logger
	cfg.ScanInterval = 5 * time.Millisecond
	cfg.Store = storetest.Open(c.t)
	s := New(cfg)
	c.rides.mu.Lock()
	c.rides.ms = append(c.rides.ms, s.Machine())
	c.rides.mu.Unlock()
	c.led.mu.Lock()
	c.led.ms = append(c.led.ms, p.Machine())
	c.led.mu.Unlock()
	s.Machine().SetTarget(0)
	p.Machine().SetTarget(0)
	if start {
		ctx, cancel := context.WithCancel(context.Background())
		if err := s.Start(ctx); err != nil {
			c.t.Fatal(err)
		}
		c.t.Cleanup(func() { cancel(); s.Close(); p.Close() })
	} else {
		c.t.Cleanup(func() { s.Close(); p.Close() })
	}
	c.nodes = append(c.nodes, s)
	return s
}

func (c *cluster) topUp(s *Service, user string, amount uint64) {
	c.t.Helper()
	if _, _, err := s.pay.TopUp(context.Background(), user, pay.MoneyInput{ID: "top-" + user, Amount: amount, Currency: Currency}); err != nil {
		c.t.Fatal(err)
	}
}

func (c *cluster) online(s *Service, driver string, at Point) {
	c.t.Helper()
	if _, _, err := s.GoOnline(context.Background(), cmdlog.Write{}, driver, &at); err != nil {
		c.t.Fatal(err)
	}
}

// eventually waits, in real time, for cond.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func offeredTo(s *Service, driver, ride string) func() bool {
	return func() bool {
		for _, o := range s.Offers(driver) {
			if o.RideID == ride {
				return true
			}
		}
		return false
	}
}

func balance(s *Service, user string) pay.Balance {
	for _, b := range s.pay.State().Balances(user) {
		if b.Currency == Currency {
			return b
		}
	}
	return pay.Balance{}
}

// near is a point meters north of p.
func near(p Point, meters float64) Point { return Point{Lat: p.Lat + meters/111_195, Lng: p.Lng} }

func TestDispatchAndPay(t *testing.T) {
	c := newCluster(t)
	s := c.node("dc1", true)
	ctx := context.Background()
	c.topUp(s, "rider", 100_000)
	c.online(s, "far", near(gangnam, 900))
	c.online(s, "mid", near(gangnam, 500))
	c.online(s, "close", near(gangnam, 100))

	est, err := s.Estimate(gangnam, jamsil)
	if err != nil || est.DriversNearby != 3 || est.Fare != FareFor(gangnam.Meters(jamsil)) || est.PickupEtaSeconds != 12 {
		t.Fatalf("estimate: %v %+v", err, est)
	}
	v, _, err := s.Request(ctx, "rider", RequestInput{ID: "r1", Pickup: &gangnam, Dropoff: &jamsil})
	if err != nil {
		t.Fatal(err)
	}
	if b := balance(s, "rider"); b.Pending != v.Payment.HoldAmount || b.Available != 100_000-v.Payment.HoldAmount {
		t.Fatalf("held at request: %+v", b)
	}
	// The nearest first; after a decline the next; after a timeout the next.
	eventually(t, "offer to close", offeredTo(s, "close", v.ID))
	if len(s.Offers("mid")) != 0 {
		t.Fatal("two drivers offered one ride")
	}
	if _, _, err := s.Decline(ctx, "close", v.ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, "offer to mid", offeredTo(s, "mid", v.ID))
	c.clock.Advance(16 * time.Second)
	eventually(t, "offer to far", offeredTo(s, "far", v.ID))
	if _, _, err := s.Accept(ctx, "mid", v.ID); apperr.From(err).Code != OfferExpired {
		t.Fatalf("accepting an expired offer: %v", err)
	}
	if _, _, err := s.Accept(ctx, "far", v.ID); err != nil {
		t.Fatal(err)
	}
	// The money is now held for the driver, once.
	got, _ := s.Ride(v.ID, "rider")
	if got.Status != StatusAccepted || got.Payment.DriverHoldID == "" {
		t.Fatalf("accepted: %+v", got)
	}
	if b := balance(s, "rider"); b.Pending != v.Payment.HoldAmount {
		t.Fatalf("held for the driver: %+v", b)
	}
	if _, _, err := s.Arrive(ctx, "far", v.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.StartTrip(ctx, "far", v.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateLocation("far", jamsil); err != nil {
		t.Fatal(err)
	}
	done, _, err := s.Complete(ctx, "far", v.ID)
	if err != nil || done.Fare == 0 || done.Fare > v.Payment.HoldAmount {
		t.Fatalf("complete: %v %+v", err, done)
	}
	if b := balance(s, "rider"); b.Available != 100_000-done.Fare || b.Pending != 0 {
		t.Fatalf("rider after the ride: %+v, fare %d", b, done.Fare)
	}
	if b := balance(s, "far"); b.Available != done.Fare {
		t.Fatalf("driver after the ride: %+v, fare %d", b, done.Fare)
	}
	if err := s.pay.State().Check(); err != nil {
		t.Fatal(err)
	}
}

func TestNoDriver(t *testing.T) {
	c := newCluster(t)
	s := c.node("dc1", true)
	c.topUp(s, "rider", 50_000)
	v, _, err := s.Request(context.Background(), "rider", RequestInput{ID: "r1", Pickup: &gangnam, Dropoff: &jamsil})
	if err != nil {
		t.Fatal(err)
	}
	c.clock.Advance(61 * time.Second)
	eventually(t, "no driver", func() bool {
		r, _ := s.State().Ride(v.ID)
		return r.Status == StatusNoDriver
	})
	eventually(t, "hold released", func() bool { return balance(s, "rider").Available == 50_000 })
	// Not enough money: no ride, nothing held.
	c.topUp(s, "poor", 1000)
	_, _, err = s.Request(context.Background(), "poor", RequestInput{ID: "r1", Pickup: &gangnam, Dropoff: &jamsil})
	if apperr.From(err).Code != "exceeds_credits" {
		t.Fatalf("poor rider: %v", err)
	}
	if _, ok := s.State().ActiveRide("poor"); ok {
		t.Fatal("a ride without money")
	}
}

// TestTakeover: the DC that took a request dies before offering it; a
// surviving DC offers it once the ride has waited TakeoverAfter.
func TestTakeover(t *testing.T) {
	c := newCluster(t)
	dead := c.node("dc1", false)
	alive := c.node("dc2", true)
	c.topUp(alive, "rider", 50_000)
	c.online(alive, "d1", near(gangnam, 200))
	v, _, err := dead.Request(context.Background(), "rider", RequestInput{ID: "r1", Pickup: &gangnam, Dropoff: &jamsil})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if len(alive.Offers("d1")) != 0 {
		t.Fatal("dc2 dispatched dc1's ride at once")
	}
	c.clock.Advance(11 * time.Second)
	eventually(t, "offer by dc2", offeredTo(alive, "d1", v.ID))
	if r, _ := alive.State().Ride(v.ID); r.Dispatcher != "dc2" {
		t.Fatalf("dispatcher: %+v", r)
	}
	// dc2 now also settles it.
	if _, _, err := alive.Accept(context.Background(), "d1", v.ID); err != nil {
		t.Fatal(err)
	}
	if r, _ := alive.State().Ride(v.ID); r.DriverHold.IsZero() {
		t.Fatalf("not settled: %+v", r)
	}
}

// TestRace: two DCs dispatch every ride at once (no waiting to take over)
// while drivers accept whatever they are offered: no driver ever gets two
// rides, no ride two drivers.
func TestRace(t *testing.T) {
	c := newCluster(t)
	var nodes []*Service
	for _, dc := range []string{"dc1", "dc2"} {
		nodes = append(nodes, c.nodeConfig(dc, true, Config{TakeoverAfter: time.Nanosecond}))
	}
	const riders, drivers = 30, 12
	for i := range drivers {
		c.online(nodes[i%2], fmt.Sprintf("d%02d", i), near(gangnam, float64(50*i)))
	}
	for i := range riders {
		c.topUp(nodes[0], fmt.Sprintf("r%02d", i), 100_000)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	accepted := map[string][]string{} // ride -> drivers who were told yes
	for i := range drivers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, s := fmt.Sprintf("d%02d", i), nodes[i%2]
			for ctx.Err() == nil {
				for _, o := range s.Offers(d) {
					if _, _, err := s.Accept(ctx, d, o.RideID); err == nil {
						mu.Lock()
						accepted[o.RideID] = append(accepted[o.RideID], d)
						mu.Unlock()
						_, _, _ = s.Cancel(ctx, d, o.RideID, "test")
					}
				}
				time.Sleep(time.Millisecond)
			}
		}()
	}
	var ids []string
	for i := range riders {
		v, _, err := nodes[i%2].Request(ctx, fmt.Sprintf("r%02d", i), RequestInput{ID: "x", Pickup: &gangnam, Dropoff: &jamsil})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, v.ID)
	}
	eventually(t, "every ride assigned", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(accepted) == riders
	})
	cancel()
	wg.Wait()
	for _, id := range ids {
		r, _ := nodes[0].State().Ride(id)
		if len(accepted[id]) != 1 || r.Driver != accepted[id][0] {
			t.Fatalf("ride %s: accepted by %v, driver %q", id, accepted[id], r.Driver)
		}
	}
	// Each hold resolved once: every rider has all their money back.
	eventually(t, "holds released", func() bool {
		for i := range riders {
			if b := balance(nodes[1], fmt.Sprintf("r%02d", i)); b.Available != 100_000 || b.Pending != 0 {
				return false
			}
		}
		return true
	})
	if err := nodes[1].pay.State().Check(); err != nil {
		t.Fatal(err)
	}
}

// TestRestartSettles: a node restarted on its own store has its rides
// back (the ride under way in memory) and settles a ride that ended
// before the restart: nothing replays the change that would have told it.
func TestRestartSettles(t *testing.T) {
	c := newCluster(t)
	s := c.node("dc1", false)
	ctx := context.Background()
	c.topUp(s, "rider", 50_000)
	c.topUp(s, "other", 50_000)
	ended, _, err := s.Request(ctx, "rider", RequestInput{ID: "r1", Pickup: &gangnam, Dropoff: &jamsil})
	if err != nil {
		t.Fatal(err)
	}
	// Cancelled, and the node stops before it releases the hold.
	if _, err := s.sub.Submit(ctx, cmdlog.Write{ID: "cancel"}, kindCancel, "rider", rideCmd{RideID: ended.ID}); err != nil {
		t.Fatal(err)
	}
	live, _, err := s.Request(ctx, "other", RequestInput{ID: "r1", Pickup: &gangnam, Dropoff: &jamsil})
	if err != nil {
		t.Fatal(err)
	}
	if b := balance(s, "rider"); b.Pending == 0 {
		t.Fatalf("the cancelled ride's hold is gone already: %+v", b)
	}

	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	again := New(Config{Log: c.rides, Store: s.cfg.Store, Pay: s.pay, DC: "dc1", Secret: []byte("test secret"), Now: c.clock.Now,
		Logger: logger, ScanInterval: 5 * time.Millisecond})
	if err := again.Machine().Restore(); err != nil {
		t.Fatal(err)
	}
	if got, want := again.Machine().Applied(), s.Machine().Applied(); got != want {
		t.Fatalf("restored at %d, want %d", got, want)
	}
	if id, ok := again.State().ActiveRide("other"); !ok || id != live.ID {
		t.Fatalf("active ride: %q %v", id, ok)
	}
	if r, ok := again.State().Ride(ended.ID); !ok || r.Status != StatusCancelled {
		t.Fatalf("cancelled ride: %+v", r)
	}
	again.Machine().SetTarget(0)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := again.Start(runCtx); err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	c.clock.Advance(11 * time.Second)
	eventually(t, "the ended ride's hold released", func() bool { return balance(s, "rider").Available == 50_000 })
}
