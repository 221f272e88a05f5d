package dctest_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"superapp/client"
	"superapp/internal/dctest"
)

// TestPayFire: clients on every DC pay each other continuously; the DC
// leading the ledger stream is SIGKILLed. Every acknowledged payment is
// applied exactly once (balances add up to the cent), the ledger's
// invariants hold and every DC reports the same state.
func TestPayFire(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := dctest.Start(t)

	const start = 1_000_000
	type payer struct {
		id   string
		c    *client.Client
		sent int64
		got  int64
	}
	var ps []*payer
	for i := 0; i < 6; i++ {
		p := &payer{c: client.New(rotate(c.URLs(), i%3))}
		login := fmt.Sprintf("pay%d@example.com", i)
		a, err := p.c.SignUp(ctx, login, password, fmt.Sprintf("Payer %d", i))
		if err != nil {
			t.Fatal(err)
		}
		p.id = a.UserID
		if _, err := p.c.Login(ctx, login, password, "phone"); err != nil {
			t.Fatal(err)
		}
		if _, err := p.c.TopUp(ctx, "initial", start, "KRW"); err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	type ack struct {
		from, to int
		amount   int64
		at       time.Time
	}
	var (
		mu   sync.Mutex
		acks []ack
	)
	const rounds = 50
	fired := make(chan struct{})
	var wg sync.WaitGroup
	for i, p := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(i), 7))
			for n := 0; n < rounds; n++ {
				to := (i + 1 + r.IntN(len(ps)-1)) % len(ps)
				amount := int64(1 + r.IntN(1000))
				// The client retries through the fire with the same id
				// until the payment is acknowledged.
				pm, err := p.c.Pay(ctx, fmt.Sprintf("p%d-%03d", i, n), ps[to].id, uint64(amount), "KRW")
				if err != nil || pm.Status != "ok" {
					t.Errorf("payment %d-%d: %v %+v", i, n, err, pm)
					return
				}
				mu.Lock()
				acks = append(acks, ack{from: i, to: to, amount: amount, at: time.Now()})
				mu.Unlock()
				if i == 0 && n == rounds/3 {
					close(fired)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	<-fired
	victim := c.Leader(ctx, "LEDGER")
	fire := time.Now()
	t.Logf("ledger leader is %s: killing it mid-traffic", victim)
	c.Kill(victim)
	wg.Wait()
	if t.Failed() {
		return
	}
	var times []time.Time
	for _, a := range acks {
		times = append(times, a.at)
	}
	outage := longestGap(times, fire)
	t.Logf("MEASURE %d payments acknowledged; longest gap between acknowledgements around the fire: %v", len(acks), outage.Round(time.Millisecond))
	if len(acks) != len(ps)*rounds {
		t.Fatalf("acknowledged %d of %d", len(acks), len(ps)*rounds)
	}
	for _, a := range acks {
		ps[a.from].sent += a.amount
		ps[a.to].got += a.amount
	}
	// Each acknowledged payment applied exactly once: every balance is
	// what the acknowledgements say, on every surviving DC.
	for _, d := range c.DCs {
		if d.Name == victim {
			continue
		}
		for i, p := range ps {
			cl := client.New([]string{d.URL()})
			cl.UseTokens(client.Tokens{AccessToken: p.c.AccessToken(), UserID: p.id})
			cl.Observe(p.c.Position())
			bs, err := cl.Wallet(ctx)
			if err != nil || len(bs) != 1 {
				t.Fatalf("%s wallet of %d: %v %+v", d.Name, i, err, bs)
			}
			want := uint64(start - p.sent + p.got)
			if bs[0].Available != want || bs[0].Pending != 0 {
				t.Fatalf("%s: payer %d has %d, the acknowledgements say %d", d.Name, i, bs[0].Available, want)
			}
		}
	}
	// The burnt DC comes back: every DC holds the same ledger, invariants hold.
	c.Restart(victim)
	c.WaitReady(victim, 2*time.Minute)
	c.WaitConverged(ctx)
	var states []string
	for _, d := range c.DCs {
		rms, err := c.ReadModels(d.Name)
		if err != nil {
			t.Fatal(err)
		}
		for _, rm := range rms {
			if rm.Stream == "LEDGER" {
				if rm.Invariants != "ok" {
					t.Fatalf("%s ledger invariants: %s", d.Name, rm.Invariants)
				}
				states = append(states, rm.State)
			}
		}
	}
	if len(states) != 3 || states[0] != states[1] || states[1] != states[2] {
		t.Fatalf("ledger states differ across DCs: %v", states)
	}
}
