package dctest_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"superapp/client"
	"superapp/internal/dctest"
)

// TestMerchantFire: paying at a store keeps working through a fire.
// Customers on every DC pay a shop's static QR and present one-time codes
// the shop's point of sale charges, while the DC leading the ledger is
// SIGKILLed. Every acknowledged sale is applied once: the shop holds
// exactly what the acknowledgements say, every customer the rest; the
// ledger's invariants hold and the DCs converge.
func TestMerchantFire(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := dctest.Start(t)
	signUp := func(i int, name string) (*client.Client, string) {
		cl := client.New(rotate(c.URLs(), i%3))
		login := fmt.Sprintf("%s%d@example.com", name, i)
		a, err := cl.SignUp(ctx, login, password, login)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cl.Login(ctx, login, password, "phone"); err != nil {
			t.Fatal(err)
		}
		return cl, a.UserID
	}
	shop, _ := signUp(0, "shop")
	if err := shop.RegisterMerchant(ctx, "Corner Store"); err != nil {
		t.Fatal(err)
	}
	qr, err := shop.MerchantQR(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	const start, rounds = 500_000, 30
	type customer struct {
		c    *client.Client
		paid uint64
	}
	var cs []*customer
	for i := 1; i <= 4; i++ {
		cl, _ := signUp(i, "customer")
		if _, err := cl.TopUp(ctx, "fund", start, "KRW"); err != nil {
			t.Fatal(err)
		}
		cl.Observe(shop.Position())
		cs = append(cs, &customer{c: cl})
	}
	var mu sync.Mutex
	var acks []time.Time
	var sold uint64
	fired := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	for i, cu := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; n < rounds; n++ {
				amount := uint64(1000 + 10*n + i)
				var err error
				if n%2 == 0 {
					_, err = cu.c.PayQR(ctx, fmt.Sprintf("qr-%d-%d", i, n), qr, amount)
				} else {
					// The customer shows a code; the shop's terminal charges it.
					var code string
					if code, err = cu.c.PaymentCode(ctx); err == nil {
						shop.Observe(cu.c.Position())
						_, err = shop.Charge(ctx, fmt.Sprintf("code-%d-%d", i, n), code, amount)
					}
				}
				if err != nil {
					t.Errorf("sale %d-%d: %v", i, n, err)
					return
				}
				mu.Lock()
				cu.paid += amount
				sold += amount
				acks = append(acks, time.Now())
				mu.Unlock()
				if n == rounds/3 {
					once.Do(func() { close(fired) })
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	<-fired
	victim := c.Leader(ctx, "LEDGER")
	fire := time.Now()
	c.Kill(victim)
	wg.Wait()
	if t.Failed() {
		return
	}
	var gap time.Duration
	mu.Lock()
	for i := 1; i < len(acks); i++ {
		if acks[i].After(fire) && acks[i-1].After(fire.Add(-time.Second)) {
			gap = max(gap, acks[i].Sub(acks[i-1]))
		}
	}
	mu.Unlock()
	t.Logf("MEASURE %d store payments acknowledged around the SIGKILL of the ledger leader %s; longest gap between acknowledgements %v", len(acks), victim, gap.Round(time.Millisecond))
	c.Restart(victim)
	c.WaitReady(victim, 2*time.Minute)
	c.WaitConverged(ctx)
	for _, d := range c.DCs {
		view := client.New([]string{d.URL()})
		for _, cu := range cs {
			view.UseTokens(client.Tokens{AccessToken: cu.c.AccessToken(), UserID: cu.c.UserID()})
			view.Observe(cu.c.Position())
			bs, err := view.Wallet(ctx)
			if err != nil || len(bs) != 1 || bs[0].Available != start-cu.paid {
				t.Fatalf("%s: a customer holds %+v, the acknowledgements say %d (%v)", d.Name, bs, start-cu.paid, err)
			}
		}
		// The shop's statement: every acknowledged sale once, adding up.
		view.UseTokens(client.Tokens{AccessToken: shop.AccessToken(), UserID: shop.UserID()})
		view.Observe(shop.Position())
		var st struct {
			Entries []client.Entry `json:"entries"`
		}
		if err := view.Do(ctx, client.Request{Method: "GET", Path: "/v1/merchants/statement?limit=200"}, &st); err != nil {
			t.Fatal(err)
		}
		var total uint64
		seen := map[string]int{}
		for _, e := range st.Entries {
			if e.Kind == "sale" {
				total += e.Amount
				seen[e.ID]++
			}
		}
		if total != sold || len(seen) != len(acks) {
			t.Fatalf("%s: the shop's statement has %d sales for %d, the acknowledgements say %d for %d", d.Name, len(seen), total, len(acks), sold)
		}
		for id, n := range seen {
			if n != 1 {
				t.Fatalf("%s: sale %s %d times", d.Name, id, n)
			}
		}
		rms, err := c.ReadModels(d.Name)
		if err != nil {
			t.Fatal(err)
		}
		for _, rm := range rms {
			if rm.Stream == "LEDGER" && rm.Invariants != "ok" {
				t.Fatalf("%s ledger invariants: %s", d.Name, rm.Invariants)
			}
		}
	}
}
