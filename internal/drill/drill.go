// Package drill is `superapp drill`: it starts three DCs (or attaches to
// running ones), drives a realistic mix of every feature from many
// simulated users through failover-capable clients — logins, chat,
// payments, rides (with drivers), food orders (with a merchant and
// couriers), "Login with superapp" to mini-apps and the mini-apps' pay
// requests with their webhooks (received by the drill itself, on
// loopback: DCs it attaches to must allow that, --webhook-loopback) —
// injects faults — fire, crash, partition, rebuild from empty, blackout —
// and then proves what happened: every acknowledged write is there
// exactly once on every DC, the ledger's invariants hold and every DC
// holds the same state. It must never report success when a check could
// not be made.
package drill

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"superapp/internal/cluster"
	"superapp/internal/faultproxy"
)

// Fault kinds.
const (
	Fire      = "fire"      // SIGKILL, down a while, disk wiped, started empty
	Crash     = "crash"     // SIGKILL, started again at once on its disk
	Partition = "partition" // cut off from the other DCs, processes running; then healed
	Rebuild   = "rebuild"   // SIGKILL, disk wiped, started empty at once
	// Blackout: the DC goes silent, as after a power loss: its process
	// frozen (SIGSTOP) and its links dropping every byte without closing;
	// then it is declared dead (SIGKILL) and started again on its disk.
	Blackout = "blackout"
)

// Kinds is every fault kind, in the order a soak cycles through them.
var Kinds = []string{Fire, Crash, Partition, Rebuild, Blackout}

// Options configures a drill.
type Options struct {
	Binary string // superapp executable (to start the DCs)
	Dir    string // the DCs' data directories
	// Endpoints, if set, attaches to running DCs instead: load and checks
	// only, no faults (the drill does not own their processes).
	Endpoints []string
	Duration  time.Duration // how long the load runs at least
	Users     int
	Faults    []string // the scenario, in order
	Down      time.Duration
	ReportDir string
	Out       io.Writer
	Seed      uint64
}

// Fault is one injected fault as the report shows it.
type Fault struct {
	Kind string  `json:"kind"`
	DC   string  `json:"dc"`
	At   float64 `json:"at_s"`  // since the load started
	End  float64 `json:"end_s"` // the DC was ready again
	// Recovery is how long the DC took to be ready after it was started
	// again (or healed); for fire and rebuild, the rebuild from empty.
	RecoveryMS int64 `json:"recovery_ms"`
	// OutageMS is, per feature, what users saw of the fault: the longest
	// wait for a write that overlapped it (until 5 s after End).
	OutageMS map[string]int64 `json:"client_outage_ms"`
	Error    string           `json:"error,omitempty"`
}

// Run runs a drill and writes its report; the error is non-nil when the
// drill could not run or found a write lost or duplicated, a broken
// invariant or DCs that did not converge.
func Run(ctx context.Context, o Options) (*Report, error) {
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Users < 2 {
		o.Users = 2
	}
	if o.Down == 0 {
		o.Down = 5 * time.Second
	}
	d := &drill{o: o, rec: newRecorder(), r: rand.New(rand.NewPCG(o.Seed, 7))}
	endpoints := o.Endpoints
	if len(endpoints) == 0 {
		var err error
		if endpoints, err = d.startCluster(ctx); err != nil {
			return nil, err
		}
		defer d.stop()
	} else if len(o.Faults) > 0 {
		return nil, errors.New("faults need DCs the drill starts itself; leave out --endpoints or --faults")
	}
	names := cluster.Names
	if len(o.Endpoints) > 0 {
		names = nil // unknown: hosts are shown
	}
	hc := &http.Client{Transport: &transport{rec: d.rec, names: dcNames(endpoints, names),
		next: &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second}}}
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	hk, err := newHooks()
	if err != nil {
		return nil, fmt.Errorf("webhook receiver: %w", err)
	}
	defer hk.close()
	d.w = newWorld(o.Users, endpoints, hc, run, hk)
	fmt.Fprintf(o.Out, "drill: %d users (and %d drivers, %d couriers, a merchant) on %d DCs, load for at least %v, faults: %s\n",
		o.Users, len(d.w.drivers), len(d.w.couriers), len(endpoints), o.Duration, strings.Join(o.Faults, ", "))
	sctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	err = setup(sctx, d.w)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("setup: %w", err)
	}
	d.rec = newRecorder() // the report starts with the load
	hc.Transport.(*transport).rec = d.rec
	d.load(ctx)
	return d.finish(ctx)
}

type drill struct {
	o    Options
	rec  *recorder
	r    *rand.Rand
	cl   *cluster.Cluster
	mesh *faultproxy.Mesh
	w    *world

	mu     sync.Mutex
	faults []Fault
	now    string // the fault in progress, for the progress line
}

func (d *drill) startCluster(ctx context.Context) ([]string, error) {
	var mesh *faultproxy.Mesh
	// The drill's mini-app backend listens on loopback: the DCs may send
	// webhooks there.
	cl, err := cluster.New(cluster.Options{Binary: d.o.Binary, Dir: d.o.Dir, OpsToken: "drill-ops-" + strconv.FormatUint(d.o.Seed, 10), Args: []string{"--webhook-loopback"},
		RouteVia: func(from, to *cluster.DC) string { return mesh.Addr(from.Name, to.Name) }})
	if err != nil {
		return nil, err
	}
	targets := map[string]string{}
	for _, dc := range cl.DCs {
		targets[dc.Name] = dc.ClusterAddr
	}
	if mesh, err = faultproxy.NewMesh(targets); err != nil {
		return nil, err
	}
	d.cl, d.mesh = cl, mesh
	if err := cl.StartAll(); err != nil {
		d.stop()
		return nil, err
	}
	start := time.Now()
	for _, dc := range cl.DCs {
		wctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
		_, err := cl.WaitReady(wctx, dc.Name)
		cancel()
		if err != nil {
			d.stop()
			return nil, err
		}
	}
	fmt.Fprintf(d.o.Out, "drill: three DCs ready in %v: %s\n", time.Since(start).Round(100*time.Millisecond), strings.Join(cl.URLs(), " "))
	return cl.URLs(), nil
}

func (d *drill) stop() {
	if d.cl != nil {
		d.cl.StopAll()
	}
	if d.mesh != nil {
		d.mesh.Close()
	}
}

// load runs every user and the fault scenario, and prints progress.
// The workers go on until every person is done: a ride or an order under
// way when the load stops is driven or delivered to its end.
func (d *drill) load(ctx context.Context) {
	stop, workersStop := make(chan struct{}), make(chan struct{})
	var wg, workers sync.WaitGroup
	for _, u := range d.w.users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			u.live(ctx, stop, d.rec)
		}()
	}
	for _, u := range d.w.workers() {
		workers.Add(1)
		go func() {
			defer workers.Done()
			u.live(ctx, workersStop, d.rec)
		}()
	}
	defer func() {
		close(workersStop)
		workers.Wait()
	}()
	progress := time.NewTicker(5 * time.Second)
	defer progress.Stop()
	faultsDone := make(chan struct{})
	go func() {
		defer close(faultsDone)
		d.scenario(ctx)
	}()
	deadline := time.After(d.o.Duration)
	durationOver := false
	for !durationOver || faultsDone != nil {
		select {
		case <-ctx.Done():
			close(stop)
			wg.Wait()
			return
		case <-deadline:
			durationOver = true
		case <-faultsDone:
			faultsDone = nil
		case <-progress.C:
			d.progress()
		}
	}
	close(stop)
	wg.Wait()
	d.progress()
}

func (d *drill) progress() {
	d.mu.Lock()
	now := d.now
	d.mu.Unlock()
	if now == "" {
		now = "none"
	}
	var parts []string
	for _, f := range Features {
		r := d.rec.rate(f, 5)
		if r < 0 {
			parts = append(parts, f+" -")
		} else {
			parts = append(parts, fmt.Sprintf("%s %.1f%%", f, 100*r))
		}
	}
	var acked []string
	d.rec.mu.Lock()
	for _, f := range Features {
		acked = append(acked, fmt.Sprintf("%s %d", f, d.rec.feats[f].acked))
	}
	d.rec.mu.Unlock()
	fmt.Fprintf(d.o.Out, "t=%4.0fs  fault: %-28s  %s  (acked %s)\n", time.Since(d.rec.start).Seconds(), now, strings.Join(parts, "  "), strings.Join(acked, ", "))
}

func (d *drill) setNow(s string) {
	d.mu.Lock()
	d.now = s
	d.mu.Unlock()
}

// scenario injects the faults one after another, evenly over the run: a
// fault starts only when every DC is ready again after the last one.
func (d *drill) scenario(ctx context.Context) {
	if len(d.o.Faults) == 0 {
		return
	}
	gap := d.o.Duration / time.Duration(len(d.o.Faults)+1)
	for i, kind := range d.o.Faults {
		due := d.rec.start.Add(gap * time.Duration(i+1))
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(due)):
		}
		f := d.inject(ctx, kind, i)
		d.mu.Lock()
		d.faults = append(d.faults, f)
		d.mu.Unlock()
		d.setNow("")
		if f.Error != "" {
			fmt.Fprintf(d.o.Out, "drill: fault %s on %s failed: %s\n", f.Kind, f.DC, f.Error)
			return
		}
		fmt.Fprintf(d.o.Out, "drill: %s of %s over; ready again %v after it was back\n", f.Kind, f.DC, time.Duration(f.RecoveryMS)*time.Millisecond)
	}
}

// victim picks the DC to hurt: the leader of a busy stream (the worst
// case), else any.
func (d *drill) victim(ctx context.Context, i int) string {
	streams := []string{"CHAT", "LEDGER", "IDENTITY", "RIDES", "FOOD", "OAUTH", "MINIAPP"}
	stream := streams[i%len(streams)]
	if dc, err := d.cl.Leader(ctx, stream); err == nil {
		return dc
	}
	return cluster.Names[d.r.IntN(len(cluster.Names))]
}

func (d *drill) inject(ctx context.Context, kind string, i int) Fault {
	dc := d.victim(ctx, i)
	f := Fault{Kind: kind, DC: dc, At: time.Since(d.rec.start).Seconds()}
	fail := func(err error) Fault {
		f.Error = err.Error()
		f.End = time.Since(d.rec.start).Seconds()
		return f
	}
	d.setNow(kind + " " + dc)
	switch kind {
	case Fire, Crash, Rebuild:
		if err := d.cl.Kill(dc); err != nil {
			return fail(err)
		}
		if kind == Fire {
			d.setNow(kind + " " + dc + " (burning)")
			time.Sleep(d.o.Down)
		}
		if kind != Crash {
			if err := d.cl.Wipe(dc); err != nil {
				return fail(err)
			}
		}
		if err := d.cl.Start(dc); err != nil {
			return fail(err)
		}
	case Blackout:
		d.setNow(kind + " " + dc + " (silent)")
		if err := d.cl.Freeze(dc); err != nil {
			return fail(err)
		}
		d.mesh.Blackout(dc)
		time.Sleep(d.o.Down)
		if err := d.cl.Kill(dc); err != nil {
			return fail(err)
		}
		d.mesh.HealAll()
		if err := d.cl.Start(dc); err != nil {
			return fail(err)
		}
	case Partition:
		d.setNow(kind + " " + dc + " (cut off)")
		d.mesh.Isolate(dc)
		time.Sleep(2 * d.o.Down)
		d.mesh.HealAll()
	default:
		return fail(fmt.Errorf("unknown fault %q", kind))
	}
	d.setNow(kind + " " + dc + " (recovering)")
	wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	took, err := d.cl.WaitReady(wctx, dc)
	cancel()
	if err != nil {
		return fail(err)
	}
	f.RecoveryMS = took.Milliseconds()
	f.End = time.Since(d.rec.start).Seconds()
	return f
}

// finish waits for the DCs to settle, checks every write and writes the
// report.
func (d *drill) finish(ctx context.Context) (*Report, error) {
	rep := &Report{Features: map[string]*FeatureReport{}, Faults: d.faults, DurationS: time.Since(d.rec.start).Seconds(), Users: d.o.Users}
	converged := true
	var convergeErr string
	if d.cl != nil {
		for _, dc := range d.cl.DCs {
			wctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
			_, err := d.cl.WaitReady(wctx, dc.Name)
			cancel()
			if err != nil {
				converged, convergeErr = false, err.Error()
			}
		}
		wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		if err := d.cl.WaitConverged(wctx); err != nil {
			converged, convergeErr = false, err.Error()
		}
		cancel()
	}
	rep.Converged = converged
	if convergeErr != "" {
		rep.Problems = append(rep.Problems, convergeErr)
	}
	rep.InvariantsOK = true
	if d.cl != nil {
		views, err := d.cl.Views(ctx)
		if err != nil {
			rep.InvariantsOK = false
			rep.Problems = append(rep.Problems, "ledger invariants could not be read: "+err.Error())
		}
		for dc, rms := range views {
			for _, rm := range rms {
				if rm.Stream == "LEDGER" && rm.Invariants != "ok" {
					rep.InvariantsOK = false
					rep.Problems = append(rep.Problems, fmt.Sprintf("%s ledger invariants: %s", dc, rm.Invariants))
				}
			}
		}
	}
	vctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	for _, f := range Features {
		v, err := checks[f](vctx, d.w)
		if err != nil {
			return nil, fmt.Errorf("verify %s: %w", f, err)
		}
		fr := d.featureReport(f, v)
		rep.Features[f] = fr
		rep.Lost += v.Lost
		rep.Duplicated += v.Duplicated
		for _, p := range v.Problems {
			rep.Problems = append(rep.Problems, f+": "+p)
		}
	}
	rep.Features["pay"].LedgerInvariants = rep.InvariantsOK
	rep.Timeline = d.rec.seconds
	for i := range rep.Faults {
		f := &rep.Faults[i]
		// What users saw: the longest write wait from the fault until a
		// few seconds after its DC was ready again.
		f.OutageMS = d.rec.faultOutage(f.At, f.End+5)
		if f.Kind == Fire || f.Kind == Rebuild {
			rep.RebuildMS = max(rep.RebuildMS, f.RecoveryMS)
		}
		if f.Error != "" {
			rep.Problems = append(rep.Problems, fmt.Sprintf("fault %s on %s: %s", f.Kind, f.DC, f.Error))
		}
	}
	rep.OK = rep.Lost == 0 && rep.Duplicated == 0 && rep.InvariantsOK && rep.Converged
	if d.o.ReportDir != "" {
		if err := os.MkdirAll(d.o.ReportDir, 0o755); err != nil {
			return rep, err
		}
		if err := rep.write(d.o.ReportDir); err != nil {
			return rep, err
		}
	}
	rep.print(d.o.Out)
	if d.o.ReportDir != "" {
		fmt.Fprintf(d.o.Out, "report: %s, %s\n", filepath.Join(d.o.ReportDir, "report.json"), filepath.Join(d.o.ReportDir, "report.html"))
	}
	if !rep.OK {
		return rep, errors.New("the drill failed: see the report's problems")
	}
	return rep, nil
}

func (d *drill) featureReport(f string, v verdict) *FeatureReport {
	d.rec.mu.Lock()
	defer d.rec.mu.Unlock()
	fc := d.rec.feats[f]
	wl, wp, w50 := outageStats(fc.writeOutage)
	rl, rp, r50 := outageStats(fc.readOutage)
	fr := &FeatureReport{
		Requests: fc.requests, FailedRequests: fc.failedAttempts, Acknowledged: fc.acked, FailedOperations: fc.failedOps,
		Lost: v.Lost, Duplicated: v.Duplicated,
		WriteOutageMaxMS: wl.Milliseconds(), WriteOutageP99MS: wp.Milliseconds(), WriteOutageP50MS: w50.Milliseconds(),
		ReadOutageMaxMS: rl.Milliseconds(), ReadOutageP99MS: rp.Milliseconds(), ReadOutageP50MS: r50.Milliseconds(),
	}
	if fc.requests > 0 {
		fr.SuccessRate = float64(fc.requests-fc.failedAttempts) / float64(fc.requests)
	}
	var slowest *wait
	for i, w := range d.rec.waits {
		if w.feature == f && (slowest == nil || w.d > slowest.d) {
			slowest = &d.rec.waits[i]
		}
	}
	if slowest != nil {
		began := slowest.end.Add(-slowest.d)
		fr.SlowestWrite = &SlowWrite{User: slowest.user, StartedAt: began.UTC().Format(time.RFC3339Nano),
			StartedS: began.Sub(d.rec.start).Seconds(), MS: slowest.d.Milliseconds(), Attempts: slowest.attempts}
	}
	return fr
}
