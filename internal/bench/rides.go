package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"superapp/internal/cmdlog"
	"superapp/internal/engine"
	"superapp/internal/node"
	"superapp/internal/pay"
	"superapp/internal/rides"
)

// RidesOptions configures the rides benchmark.
type RidesOptions struct {
	Dir      string
	Drivers  int           // online drivers
	Riders   int           // riders (each has one ride at a time)
	Report   time.Duration // how often each driver reports its location
	Rate     int           // ride requests offered per second
	Duration time.Duration // length of the run
	// Complete is the share of offers the driver accepts and drives to
	// the end (accept, arrive, start, complete, with the money); for the
	// others the rider cancels as soon as the driver is offered the ride.
	Complete float64
	// CPUProfile, if set, is where the run's CPU profile is written.
	CPUProfile string
	Out        io.Writer
}

// Rides measures dispatch: ride requests dispatched per second (a ride is
// dispatched when its offer reaches a driver) and the time from request to
// offer, with drivers streaming their locations.
//
// Three nodes, one per DC, run in this process as one stretched cluster
// (every stream R3, fsync always) and are driven through the rides
// service itself, not HTTP: ten thousand drivers cannot be signed up (an
// argon2id hash each, sign-ups throttled per address), so drivers and
// riders are plain user ids. The requests, offers, location fan-out,
// holds and their release go through the log and the ledger as in
// production.
func Rides(ctx context.Context, o RidesOptions) error {
	out := o.Out
	nodes, stop, err := startNodes(ctx, o.Dir)
	if err != nil {
		return err
	}
	defer stop()
	fmt.Fprintf(out, "machine: %d CPUs (%s/%s), GOMAXPROCS %d; three nodes (dc1..dc3) in this process as one cluster, every stream R3, fsync always\n",
		runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.GOMAXPROCS(0))
	svc := func(i int) *rides.Service { return nodes[i%len(nodes)].Rides() }

	// Seoul, roughly 22 x 26 km.
	box := func(r *rand.Rand) rides.Point {
		return rides.Point{Lat: 37.45 + 0.2*r.Float64(), Lng: 126.85 + 0.3*r.Float64()}
	}
	driverID := func(i int) string { return "bench-driver-" + strconv.Itoa(i) }
	riderID := func(i int) string { return "bench-rider-" + strconv.Itoa(i) }
	homeOf := func(id string) int {
		n, _ := strconv.Atoi(id[len("bench-driver-"):])
		return n
	}

	// Drivers go online, spread over the city and the DCs; riders get money.
	start := time.Now()
	pos := make([]rides.Point, o.Drivers)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range pos {
		pos[i] = box(rng)
	}
	if err := parallel(ctx, o.Drivers, 64, func(i int) error {
		p := pos[i]
		_, _, err := svc(i).GoOnline(ctx, cmdlog.Write{}, driverID(i), &p)
		return err
	}); err != nil {
		return fmt.Errorf("drivers online: %w", err)
	}
	if err := parallel(ctx, o.Riders, 64, func(i int) error {
		_, _, err := nodes[i%len(nodes)].Pay().TopUp(ctx, riderID(i), pay.MoneyInput{ID: "bench", Amount: 2_000_000, Currency: "KRW"})
		return err
	}); err != nil {
		return fmt.Errorf("riders' money: %w", err)
	}
	fmt.Fprintf(out, "setup: %d drivers online, %d riders with money in %v\n", o.Drivers, o.Riders, time.Since(start).Round(time.Millisecond))

	// Every driver reports every o.Report, spread evenly, to its own DC.
	sctx, stopStreams := context.WithCancel(ctx)
	defer stopStreams()
	var reports atomic.Int64
	var swg sync.WaitGroup
	for n := range nodes {
		swg.Add(1)
		go func() {
			defer swg.Done()
			const tick = 50 * time.Millisecond
			slices := int(o.Report / tick)
			r := rand.New(rand.NewPCG(uint64(n), 3))
			t := time.NewTicker(tick)
			defer t.Stop()
			for k := 0; ; k++ {
				select {
				case <-sctx.Done():
					return
				case <-t.C:
				}
				for i := n + len(nodes)*(k%slices); i < o.Drivers; i += len(nodes) * slices {
					p := &pos[i]
					p.Lat += (r.Float64() - 0.5) * 0.0005
					p.Lng += (r.Float64() - 0.5) * 0.0005
					if svc(i).UpdateLocation(driverID(i), *p) == nil {
						reports.Add(1)
					}
				}
			}
		}()
	}

	// Offers: timed where the driver is connected, then answered.
	var (
		started  sync.Map        // ride id -> time.Time the request began
		lat      []time.Duration // request to offer
		acked    []time.Duration // request to its acknowledgement (hold and request committed)
		latMu    sync.Mutex
		offers   atomic.Int64
		measure  atomic.Bool
		free     = make(chan int, o.Riders)
		riderOf  sync.Map // ride id -> rider index
		answers  = make(chan rides.Push, 16384)
		answered atomic.Int64
		trips    atomic.Int64
	)
	for i := range o.Riders {
		free <- i
	}
	for n := range nodes {
		nodes[n].Rides().Notify(func(ps []rides.Push) {
			for _, p := range ps {
				if p.Frame.Type != "ride.offer" || homeOf(p.User)%len(nodes) != n {
					continue
				}
				if t0, ok := started.Load(p.Frame.Offer.RideID); ok && measure.Load() {
					d := time.Since(t0.(time.Time))
					latMu.Lock()
					lat = append(lat, d)
					latMu.Unlock()
					offers.Add(1)
				}
				select {
				case answers <- p:
				default:
				}
			}
		})
	}
	var awg sync.WaitGroup
	for range 128 {
		awg.Add(1)
		go func() {
			defer awg.Done()
			r := rand.New(rand.NewPCG(rand.Uint64(), 4))
			for {
				var p rides.Push
				select {
				case <-sctx.Done():
					return
				case p = <-answers:
				}
				id, d := p.Frame.Offer.RideID, svc(homeOf(p.User))
				ri, ok := riderOf.Load(id)
				if !ok {
					continue
				}
				rider := ri.(int)
				if r.Float64() < o.Complete {
					ok := true
					for _, step := range []func(context.Context, string, string) (rides.View, rides.Written, error){d.Accept, d.Arrive, d.StartTrip, d.Complete} {
						if _, _, err := step(ctx, p.User, id); err != nil {
							ok = false
							break
						}
					}
					if ok {
						trips.Add(1)
					} else {
						_, _, _ = d.Cancel(ctx, riderID(rider), id, "bench")
					}
				} else if _, _, err := d.Cancel(ctx, riderID(rider), id, "bench"); err != nil {
					// (The rider cancels through the driver's node: it has
					// applied the request, as the rider's own DC has.)
					continue
				}
				answered.Add(1)
				riderOf.Delete(id)
				free <- rider
			}
		}()
	}

	// Let every node learn every driver's position first.
	time.Sleep(o.Report + time.Second)

	// Requests at the offered rate, by the clock.
	var requested, refused, dropped atomic.Int64
	work := make(chan int, o.Rate)
	var rwg sync.WaitGroup
	for range 1024 {
		rwg.Add(1)
		go func() {
			defer rwg.Done()
			r := rand.New(rand.NewPCG(rand.Uint64(), 5))
			for n := range work {
				var rider int
				select {
				case rider = <-free:
				default:
					dropped.Add(1) // every rider is on a ride
					continue
				}
				from := box(r)
				to := rides.Point{Lat: from.Lat + (r.Float64()-0.5)*0.04, Lng: from.Lng + (r.Float64()-0.5)*0.04}
				clientID := "b" + strconv.Itoa(n)
				id := rides.RideID(riderID(rider), clientID)
				riderOf.Store(id, rider)
				started.Store(id, time.Now())
				t0 := time.Now()
				_, _, err := svc(rider).Request(ctx, riderID(rider), rides.RequestInput{ID: clientID, Pickup: &from, Dropoff: &to})
				if measure.Load() {
					latMu.Lock()
					acked = append(acked, time.Since(t0))
					latMu.Unlock()
				}
				if err != nil {
					refused.Add(1)
					riderOf.Delete(id)
					free <- rider
					continue
				}
				requested.Add(1)
			}
		}()
	}
	if o.CPUProfile != "" {
		f, err := os.Create(o.CPUProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	reports.Store(0)
	measure.Store(true)
	begin := time.Now()
	tick := time.NewTicker(time.Millisecond)
	n := 0
	for time.Since(begin) < o.Duration && ctx.Err() == nil {
		<-tick.C
		for due := int(time.Since(begin).Seconds() * float64(o.Rate)); n < due; n++ {
			select {
			case work <- n:
			default:
				dropped.Add(1) // the requesters are all busy: the rate is not met
			}
		}
	}
	tick.Stop()
	close(work)
	rwg.Wait()
	elapsed := time.Since(begin)
	// Offers for requests made near the end still count.
	for deadline := time.Now().Add(5 * time.Second); offers.Load() < requested.Load() && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	measure.Store(false)
	locRate := float64(reports.Load()) / time.Since(begin).Seconds()
	stopStreams()
	swg.Wait()
	awg.Wait()

	latMu.Lock()
	pcts := func(ds []time.Duration) func(q float64) time.Duration {
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		return func(q float64) time.Duration {
			if len(ds) == 0 {
				return 0
			}
			return ds[min(len(ds)-1, int(q*float64(len(ds))))].Round(100 * time.Microsecond)
		}
	}
	pct, ack := pcts(lat), pcts(acked)
	fmt.Fprintf(out, "rides: %d drivers reporting every %v (%.0f locations/s), %d ride requests offered at %d/s for %v\n",
		o.Drivers, o.Report, locRate, n, o.Rate, o.Duration)
	fmt.Fprintf(out, "  requested %d (refused %d, not sent %d: no free rider or requester), dispatched %d = %.0f dispatches/s\n",
		requested.Load(), refused.Load(), dropped.Load(), offers.Load(), float64(offers.Load())/elapsed.Seconds())
	fmt.Fprintf(out, "  request to driver's offer: p50 %v, p90 %v, p99 %v, max %v\n", pct(0.50), pct(0.90), pct(0.99), pct(1))
	fmt.Fprintf(out, "  (of which the request's acknowledgement, hold and request committed: p50 %v, p99 %v)\n", ack(0.50), ack(0.99))
	fmt.Fprintf(out, "  answered %d offers: %d trips driven to completion with payment, the rest cancelled by the rider\n",
		answered.Load(), trips.Load())
	latMu.Unlock()
	return nil
}

// parallel runs fn(0..n-1) on workers goroutines; the first error wins.
func parallel(ctx context.Context, n, workers int, fn func(i int) error) error {
	var next atomic.Int64
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					once.Do(func() { first = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

// startNodes runs three clustered nodes in this process.
func startNodes(ctx context.Context, dir string) ([]*node.Node, func(), error) {
	var routes []string
	for range 3 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, nil, err
		}
		routes = append(routes, ln.Addr().String())
		ln.Close()
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	rctx, cancel := context.WithCancel(ctx)
	var nodes []*node.Node
	var wg sync.WaitGroup
	stop := func() {
		cancel()
		wg.Wait()
		for _, n := range nodes {
			n.Close()
		}
	}
	for i := range 3 {
		var peers []string
		for j, r := range routes {
			if j != i {
				peers = append(peers, r)
			}
		}
		dc := "dc" + strconv.Itoa(i+1)
		n, err := node.New(node.Config{HTTPAddr: "127.0.0.1:0", Logger: logger, Engine: engine.Config{
			DC: dc, DataDir: filepath.Join(dir, dc), ClusterListen: routes[i], Peers: peers, ClusterSecret: "bench-rides-secret"}})
		if err != nil {
			stop()
			return nil, nil, fmt.Errorf("%s: %w", dc, err)
		}
		nodes = append(nodes, n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = n.Run(rctx)
		}()
	}
	for _, n := range nodes {
		for {
			wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
			ready := n.Ready(wctx).Ready
			wcancel()
			if ready {
				break
			}
			select {
			case <-ctx.Done():
				stop()
				return nil, nil, ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return nodes, stop, nil
}
