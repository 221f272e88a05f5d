package dctest_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"superapp/client"
	"superapp/internal/dctest"
	"superapp/internal/engine"
)

// TestFeatureLoss burns, for every feature, the DC leading that feature's
// stream while people write through the failover client, once with
// SIGKILL (then a restart on its disk) and once with a blackout (frozen,
// then killed and restarted). Each person prefers the victim, so their
// first attempt goes to it, and sends every write with an id of their
// own. The longest pause in acknowledgements around the fault is logged as
// MEASURE (a figure, not asserted; only failing over at all is). Then
// every DC, the restarted one too, must hold every acknowledged write
// exactly once.
//
// One cluster serves all features of a fault kind: a case starts once
// the previous victim is back, every DC has applied the same state and
// every stream has three current replicas.
func TestFeatureLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three processes")
	}
	for _, fault := range []string{"kill", "blackout"} {
		t.Run(fault, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
			defer cancel()
			w := newLossWorld(ctx, t, dctest.Start(t))
			for _, f := range lossFeatures {
				t.Run(f.name, func(t *testing.T) { w.run(ctx, t, f, fault) })
			}
		})
	}
}

// lossFeature is one feature under a DC loss: the stream whose leader
// burns, and the load of one case.
type lossFeature struct {
	name, stream string
	// load prepares a case's writers, whose clients try urls in order
	// (the victim first), and the check of what one DC holds afterwards.
	load func(ctx context.Context, t *testing.T, w *lossWorld, urls []string) lossLoad
}

// lossLoad is one case: writers, and what every DC must hold once they
// are done (an error says what is missing or doubled).
type lossLoad struct {
	writers []lossWriter
	check   func(ctx context.Context, url string) error
}

// lossWriter takes one person's next step, calling ack for each write
// acknowledged. Once stopping, it starts nothing new and reports done
// when nothing it began is under way.
type lossWriter func(ctx context.Context, stopping bool, ack func()) (done bool, err error)

// lossFeatures are the features in the order their cases run. Pay runs
// before rides, food and miniapp, which move the same people's money.
var lossFeatures = []lossFeature{
	{"identity", "IDENTITY", identityLoad},
	{"social", "SOCIAL", socialLoad},
	{"chat", "CHAT", chatLoad},
	{"pay", "LEDGER", payLoad},
	{"rides", "RIDES", ridesLoad},
	{"food", "FOOD", foodLoad},
	{"oauth", "OAUTH", oauthLoad},
	{"miniapp", "MINIAPP", miniappLoad},
}

// lossWorld is what one cluster's cases share: people who use every
// feature, drivers, a merchant with a store, couriers, and a developer's
// two mini-apps (one to log in to, one that asks to be paid).
type lossWorld struct {
	c        *dctest.Cluster
	people   []*person
	logins   []string
	drivers  []*person
	couriers []*person
	merchant *person
	store    string
	loginApp client.App
	payApp   client.App
	payToken []string // each person's access token to payApp
}

const (
	lossRedirect = "https://loss-app.example.com/callback"
	lossItem     = "bibimbap"
	lossAmount   = 1_000 // what each mini-app pay request asks
)

var (
	lossPickup  = client.Point{Lat: 37.4979, Lng: 127.0276}
	lossDropoff = client.Point{Lat: 37.5159, Lng: 127.0276} // 2 km north
)

func newLossWorld(ctx context.Context, t *testing.T, c *dctest.Cluster) *lossWorld {
	t.Helper()
	urls := c.URLs()
	spread := func(i int) int { return i % len(urls) }
	w := &lossWorld{c: c, people: signUpPeople(ctx, t, urls, "loss", 4, spread)}
	for i := range w.people {
		w.logins = append(w.logins, fmt.Sprintf("loss%d@example.com", i))
	}
	w.drivers = signUpPeople(ctx, t, urls, "loss-driver", 3, spread)
	w.couriers = signUpPeople(ctx, t, urls, "loss-courier", 2, spread)
	w.merchant = signUpPeople(ctx, t, urls, "loss-merchant", 1, spread)[0]
	dev := signUpPeople(ctx, t, urls, "loss-dev", 1, spread)[0]

	m := w.merchant.c
	if err := m.RegisterMerchant(ctx, "Loss Kimbap"); err != nil {
		t.Fatal(err)
	}
	var hours []client.Hours
	for day := range 7 {
		hours = append(hours, client.Hours{Day: day, Open: "00:00", Close: "24:00"})
	}
	st, err := m.CreateStore(ctx, client.StoreInput{ID: "loss-store", Name: "Loss Kimbap", Hours: hours, DeliveryFee: 2_000})
	if err != nil {
		t.Fatal(err)
	}
	w.store = st.StoreID
	if err := m.AddItem(ctx, st.StoreID, client.ItemInput{ID: lossItem, Name: "Bibimbap", Price: 6_000}); err != nil {
		t.Fatal(err)
	}
	for _, cr := range w.couriers {
		if err := cr.c.CourierOnline(ctx); err != nil {
			t.Fatal(err)
		}
	}

	in := client.AppInput{Name: "Loss login", RedirectURIs: []string{lossRedirect}, Scopes: []string{"profile"}}
	if w.loginApp, err = dev.c.RegisterApp(ctx, "loss-login-app", in); err != nil {
		t.Fatal(err)
	}
	in.Name, in.Scopes = "Loss shop", []string{"profile", "pay"}
	if w.payApp, err = dev.c.RegisterApp(ctx, "loss-pay-app", in); err != nil {
		t.Fatal(err)
	}
	backend := client.New(urls)
	for i, p := range w.people {
		l := newAppLogin(fmt.Sprintf("loss-u%d-shop", i), "openid", "profile", "pay")
		for {
			tok, err := l.next(ctx, p.c, backend, w.payApp)
			if err != nil && client.Code(err) != "temporarily_unavailable" {
				t.Fatalf("person %d logs in to the shop: %v", i, err)
			}
			if tok != nil {
				w.payToken = append(w.payToken, tok.AccessToken)
				break
			}
			if err != nil {
				time.Sleep(200 * time.Millisecond)
			}
		}
	}
	return w
}

// session is p's session through a new failover client that tries urls
// in order.
func (p *person) session(urls []string) *client.Client {
	cl := client.New(urls)
	cl.UseTokens(client.Tokens{AccessToken: p.c.AccessToken(), UserID: p.id})
	cl.Observe(p.c.Position())
	return cl
}

// pinned is cl's session on one DC only, at least as current as cl's writes.
func pinned(cl *client.Client, url string) *client.Client {
	pc := client.New([]string{url})
	pc.UseTokens(client.Tokens{AccessToken: cl.AccessToken(), UserID: cl.UserID()})
	pc.Observe(cl.Position())
	return pc
}

// steady waits until every DC is ready, all hold the same state and every
// stream has a leader and two current followers: a DC may burn again.
func (w *lossWorld) steady(ctx context.Context, t *testing.T) {
	t.Helper()
	for _, d := range w.c.DCs {
		if _, err := w.c.Cluster.WaitReady(ctx, d.Name); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.c.Cluster.WaitConverged(ctx); err != nil {
		t.Fatal(err)
	}
	for _, s := range engine.Streams {
		for {
			info := w.c.StreamInfo(ctx, s.Name).Cluster
			current := len(info.Replicas) == len(w.c.DCs)-1
			for _, r := range info.Replicas {
				current = current && r.Current && !r.Offline
			}
			if current {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("%s: replicas %+v never all current", s.Name, info.Replicas)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// run is one case: load, the fault mid-load, the measurement, the
// victim back, and the check of every DC.
func (w *lossWorld) run(ctx context.Context, t *testing.T, f lossFeature, fault string) {
	c := w.c
	w.steady(ctx, t)
	victim := c.Leader(ctx, f.stream)
	ld := f.load(ctx, t, w, rotate(c.URLs(), slices.Index(dctest.Names, victim)))

	var (
		mu       sync.Mutex
		acks     []time.Time
		stopping atomic.Bool
		wg       sync.WaitGroup
	)
	ack := func() {
		mu.Lock()
		acks = append(acks, time.Now())
		mu.Unlock()
	}
	// since counts the acknowledgements after at.
	since := func(at time.Time) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, a := range acks {
			if a.After(at) {
				n++
			}
		}
		return n
	}
	lctx, cancelLoad := context.WithCancel(ctx)
	restored := false
	defer func() {
		// On a failure, too: no writer outlives the case, and the next
		// case finds the victim running.
		stopping.Store(true)
		cancelLoad()
		wg.Wait()
		if !restored {
			_ = c.Cluster.Kill(victim)
			_ = c.Cluster.Start(victim)
		}
	}()
	for i, wr := range ld.writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				stop := stopping.Load()
				n := since(time.Time{})
				wctx, cancel := context.WithTimeout(lctx, 30*time.Second)
				done, err := wr(wctx, stop, ack)
				cancel()
				if err != nil {
					t.Errorf("writer %d: %v", i, err)
					stopping.Store(true)
					return
				}
				if done && stop {
					return
				}
				pause := 20 * time.Millisecond
				if since(time.Time{}) == n {
					pause = 100 * time.Millisecond // nothing written: polling
				}
				time.Sleep(pause)
			}
		}()
	}
	waitFor := func(bound time.Duration, ok func() bool) bool {
		for end := time.Now().Add(bound); time.Now().Before(end) && !stopping.Load(); time.Sleep(20 * time.Millisecond) {
			if ok() {
				return true
			}
		}
		return false
	}
	start := time.Now()
	waitFor(30*time.Second, func() bool {
		return time.Since(start) > 1500*time.Millisecond && since(time.Time{}) >= 2*len(ld.writers)
	})

	t.Logf("%s leads %s: %s of it after %d acknowledgements", victim, f.stream, fault, since(time.Time{}))
	at := time.Now()
	var err error
	if fault == "kill" {
		err = c.Cluster.Kill(victim)
	} else {
		err = c.Cluster.Freeze(victim)
	}
	if err != nil {
		t.Fatal(err)
	}
	// Back to work: a few seconds of writes after the fault.
	if !waitFor(30*time.Second, func() bool { return time.Since(at) > 3*time.Second && since(at) >= 10 }) && !stopping.Load() {
		t.Errorf("writes did not resume within 30 s of the %s of %s", fault, victim)
	}
	stopAt := time.Now()
	stopping.Store(true)
	// The victim comes back while the writers finish what they began.
	if fault == "blackout" {
		err = c.Cluster.Kill(victim)
	}
	if err == nil {
		err = c.Cluster.Start(victim)
	}
	if err != nil {
		t.Fatal(err)
	}
	restored = true
	// A writer that has not finished a minute after the stop has hung.
	time.AfterFunc(time.Minute, cancelLoad)
	wg.Wait()

	mu.Lock()
	measured := slices.DeleteFunc(slices.Clone(acks), func(a time.Time) bool { return a.After(stopAt) })
	total := len(acks)
	mu.Unlock()
	gap := longestGap(measured, at)
	t.Logf("MEASURE %s %s: %d writes acknowledged; longest gap between acknowledgements around the fault: %v", f.name, fault, total, gap.Round(time.Millisecond))
	if gap > 10*time.Second {
		t.Errorf("%s of %s (leading %s): writes stopped for %v; no failover", fault, victim, f.stream, gap)
	}
	if t.Failed() {
		return
	}
	if _, err := c.Cluster.WaitReady(ctx, victim); err != nil {
		t.Fatal(err)
	}
	if err := c.Cluster.WaitConverged(ctx); err != nil {
		t.Fatal(err)
	}
	for _, d := range c.DCs {
		if err := eventually(ctx, 30*time.Second, func(ctx context.Context) error { return ld.check(ctx, d.URL()) }); err != nil {
			t.Errorf("%s (%s): %v", d.Name, map[bool]string{true: "restarted", false: "survivor"}[d.Name == victim], err)
		}
	}
	if !t.Failed() {
		t.Logf("every DC, %s (restarted) too, holds what the %d acknowledgements say, once", victim, total)
	}
}

// eventually runs check until it succeeds or bound passes (money settles
// after a ride or an order ends), and returns its last error.
func eventually(ctx context.Context, bound time.Duration, check func(ctx context.Context) error) error {
	end := time.Now().Add(bound)
	for {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := check(cctx)
		cancel()
		if err == nil || time.Now().After(end) || ctx.Err() != nil {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// refused reports whether the server turned a request down for good (a
// 4xx): the step is past, taken by someone else, or not possible yet.
func refused(err error) bool {
	var e *client.Error
	return errors.As(err, &e) && e.Status >= 400 && e.Status < 500
}
