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

// foodOrderView is an order as GET /v1/food/orders/{id} shows it.
type foodOrderView struct {
	ID          string `json:"order_id"`
	Status      string `json:"status"`
	UserID      string `json:"user_id"`
	CourierID   string `json:"courier_id"`
	FoodTotal   uint64 `json:"food_total"`
	DeliveryFee uint64 `json:"delivery_fee"`
	PlatformFee uint64 `json:"platform_fee"`
	Total       uint64 `json:"total"`
	Payment     *struct {
		HoldID   string `json:"hold_id"`
		Status   string `json:"status"`
		Captured uint64 `json:"captured"`
	} `json:"payment"`
}

func foodEnded(status string) bool {
	return status == "delivered" || status == "rejected" || status == "cancelled"
}

const foodAllWeek = `[{"day":0,"open":"00:00","close":"24:00"},{"day":1,"open":"00:00","close":"24:00"},{"day":2,"open":"00:00","close":"24:00"},` +
	`{"day":3,"open":"00:00","close":"24:00"},{"day":4,"open":"00:00","close":"24:00"},{"day":5,"open":"00:00","close":"24:00"},{"day":6,"open":"00:00","close":"24:00"}]`

// TestFoodFire: users homed on every DC order food that a merchant accepts
// (or rejects) and couriers on every DC claim and deliver, while the DC
// leading the FOOD stream is SIGKILLed. Afterwards no acknowledged order is
// lost or doubled, no order had two couriers, the stock was taken once per
// order that kept it, every hold was captured (split to the won) or
// released exactly once, the ledger's invariants hold and the DCs converge.
func TestFoodFire(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c := dctest.Start(t)

	const (
		users, couriers = 6, 3
		ordersEach      = 4
		topUp           = 200_000
		stock           = 100
		price, fee      = 9_000, 3_000
	)
	signUp := func(kind string, i int) (*client.Client, string) {
		cl := client.New(rotate(c.URLs(), i%3))
		login := fmt.Sprintf("food-%s%d@example.com", kind, i)
		a, err := cl.SignUp(ctx, login, password, fmt.Sprintf("%s %d", kind, i))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cl.Login(ctx, login, password, "phone"); err != nil {
			t.Fatal(err)
		}
		return cl, a.UserID
	}
	do := func(cl *client.Client, method, path string, body, out any) error {
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		return cl.Do(rctx, client.Request{Method: method, Path: path, Body: body}, out)
	}

	merchant, merchantID := signUp("merchant", 0)
	if err := do(merchant, "POST", "/v1/merchants", map[string]string{"name": "Kimbap Heaven"}, nil); err != nil {
		t.Fatal(err)
	}
	var store struct {
		ID string `json:"store_id"`
	}
	if err := merchant.Do(ctx, client.Request{Method: "POST", Path: "/v1/food/stores", Raw: []byte(`{"id":"s1","name":"Kimbap Heaven","delivery_fee":3000,"hours":` + foodAllWeek + `}`), ContentType: "application/json"}, &store); err != nil {
		t.Fatal(err)
	}
	if err := do(merchant, "POST", "/v1/food/stores/"+store.ID+"/items", map[string]any{"id": "bibimbap", "name": "Bibimbap", "price": price, "stock": stock}, nil); err != nil {
		t.Fatal(err)
	}

	var (
		mu      sync.Mutex
		claimed = map[string][]string{} // order -> couriers told it was theirs
	)
	stop, stopWorkers := context.WithCancel(ctx)
	defer stopWorkers()
	var wg sync.WaitGroup
	// The merchant accepts orders and prepares them; it rejects a few.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for stop.Err() == nil {
			var list struct {
				Orders []foodOrderView `json:"orders"`
			}
			if err := merchant.Do(stop, client.Request{Method: "GET", Path: "/v1/food/stores/" + store.ID + "/orders"}, &list); err != nil {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			for _, o := range list.Orders {
				step := map[string]string{"placed": "accept", "accepted": "preparing", "preparing": "ready"}[o.Status]
				if o.Status == "placed" && o.ID[0] < '3' {
					step = "reject"
				}
				if step != "" {
					_ = do(merchant, "POST", "/v1/food/orders/"+o.ID+"/"+step, nil, nil)
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	courierClients := map[string]*client.Client{}
	for i := range couriers {
		cl, id := signUp("courier", i)
		courierClients[id] = cl
		if err := do(cl, "POST", "/v1/food/couriers/online", nil, nil); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for stop.Err() == nil {
				var list struct {
					Orders []foodOrderView `json:"orders"`
				}
				if err := cl.Do(stop, client.Request{Method: "GET", Path: "/v1/food/couriers/orders"}, &list); err != nil || len(list.Orders) == 0 {
					time.Sleep(100 * time.Millisecond)
					continue
				}
				o := list.Orders[(i)%len(list.Orders)]
				if err := do(cl, "POST", "/v1/food/orders/"+o.ID+"/claim", nil, nil); err != nil {
					continue // another courier's, or cancelled
				}
				mu.Lock()
				claimed[o.ID] = append(claimed[o.ID], id)
				mu.Unlock()
				for stop.Err() == nil {
					var v foodOrderView
					if err := cl.Do(stop, client.Request{Method: "GET", Path: "/v1/food/orders/" + o.ID}, &v); err != nil {
						continue
					}
					if v.Status == "ready" {
						_ = do(cl, "POST", "/v1/food/orders/"+o.ID+"/pickup", nil, nil)
						continue
					}
					if v.Status == "picked_up" {
						_ = do(cl, "POST", "/v1/food/orders/"+o.ID+"/deliver", nil, nil)
						continue
					}
					if foodEnded(v.Status) {
						break
					}
					time.Sleep(100 * time.Millisecond)
				}
			}
		}()
	}

	type placed struct {
		user int
		id   string
	}
	var (
		all      []placed
		orders   sync.WaitGroup
		fire     = make(chan struct{})
		fireOnce sync.Once
	)
	userClients := make([]*client.Client, users)
	userIDs := make([]string, users)
	for i := range users {
		userClients[i], userIDs[i] = signUp("eater", i)
		if _, err := userClients[i].TopUp(ctx, "initial", topUp, "KRW"); err != nil {
			t.Fatal(err)
		}
	}
	for i := range users {
		orders.Add(1)
		go func() {
			defer orders.Done()
			cl := userClients[i]
			for k := range ordersEach {
				if err := do(cl, "POST", "/v1/food/stores/"+store.ID+"/cart", map[string]any{"item_id": "bibimbap", "quantity": 1}, nil); err != nil {
					t.Errorf("user %d cart %d: %v", i, k, err)
					return
				}
				var v foodOrderView
				// The client retries through the fire with the same id.
				in := map[string]any{"id": fmt.Sprintf("order-%d-%d", i, k), "store_id": store.ID, "address": "Teheran-ro 1"}
				if err := do(cl, "POST", "/v1/food/orders", in, &v); err != nil {
					t.Errorf("user %d order %d: %v", i, k, err)
					return
				}
				mu.Lock()
				all = append(all, placed{user: i, id: v.ID})
				if len(all) == users*ordersEach/3 {
					fireOnce.Do(func() { close(fire) })
				}
				mu.Unlock()
				if k%4 == 3 {
					_ = do(cl, "POST", "/v1/food/orders/"+v.ID+"/cancel", nil, nil) // may lose to the merchant's accept
				}
				for deadline := time.Now().Add(2 * time.Minute); !foodEnded(v.Status); time.Sleep(150 * time.Millisecond) {
					if time.Now().After(deadline) {
						t.Errorf("order %s stuck %s", v.ID, v.Status)
						return
					}
					_ = cl.Do(ctx, client.Request{Method: "GET", Path: "/v1/food/orders/" + v.ID}, &v)
				}
			}
		}()
	}
	<-fire
	victim := c.Leader(ctx, "FOOD")
	t.Logf("FOOD leader is %s: killing it with orders in flight", victim)
	fired := time.Now()
	c.Kill(victim)
	orders.Wait()
	t.Logf("MEASURE all %d orders ended %v after the fire", users*ordersEach, time.Since(fired).Round(time.Millisecond))
	stopWorkers()
	wg.Wait()
	if t.Failed() {
		return
	}
	if len(all) != users*ordersEach {
		t.Fatalf("acknowledged %d orders of %d", len(all), users*ordersEach)
	}

	check := func(d *dctest.DC) {
		t.Helper()
		paid := make([]uint64, users)
		earned := map[string]uint64{}
		statuses := map[string]int{}
		delivered := 0
		for _, p := range all {
			cl := client.New([]string{d.URL()})
			cl.UseTokens(client.Tokens{AccessToken: userClients[p.user].AccessToken(), UserID: userIDs[p.user]})
			cl.Observe(userClients[p.user].Position())
			var v foodOrderView
			// Settlement of orders homed on the burnt DC may take a takeover.
			for deadline := time.Now().Add(45 * time.Second); ; time.Sleep(200 * time.Millisecond) {
				if err := cl.Do(ctx, client.Request{Method: "GET", Path: "/v1/food/orders/" + p.id}, &v); err != nil {
					t.Fatalf("%s: order %s lost: %v", d.Name, p.id, err)
				}
				settled := v.Payment != nil && (v.Payment.Status == "captured" || v.Payment.Status == "released")
				if settled || time.Now().After(deadline) {
					break
				}
			}
			statuses[v.Status]++
			mu.Lock()
			got := claimed[p.id]
			mu.Unlock()
			switch {
			case !foodEnded(v.Status):
				t.Fatalf("%s: order %s still %s", d.Name, p.id, v.Status)
			case len(got) > 1 || (v.CourierID != "" && (len(got) != 1 || got[0] != v.CourierID)):
				t.Fatalf("%s: order %s has courier %q, claimed by %v", d.Name, p.id, v.CourierID, got)
			case v.Status == "delivered" && (v.Payment.Status != "captured" || v.Payment.Captured != v.Total || v.Total != price+fee):
				t.Fatalf("%s: delivered order %s: payment %+v, total %d", d.Name, p.id, v.Payment, v.Total)
			case v.Status != "delivered" && v.Payment.Status != "released":
				t.Fatalf("%s: %s order %s: payment %+v", d.Name, v.Status, p.id, v.Payment)
			}
			if v.Status == "delivered" {
				delivered++
				paid[p.user] += v.Total
				earned[v.CourierID] += v.DeliveryFee
			}
		}
		// Nothing doubled: each user has exactly the orders acknowledged.
		for i, ucl := range userClients {
			cl := client.New([]string{d.URL()})
			cl.UseTokens(client.Tokens{AccessToken: ucl.AccessToken(), UserID: userIDs[i]})
			var mine struct {
				Orders []foodOrderView `json:"orders"`
			}
			if err := cl.Do(ctx, client.Request{Method: "GET", Path: "/v1/food/orders"}, &mine); err != nil || len(mine.Orders) != ordersEach {
				t.Fatalf("%s: user %d has %d orders (%v), want %d", d.Name, i, len(mine.Orders), err, ordersEach)
			}
			bs, err := cl.Wallet(ctx)
			if err != nil || len(bs) != 1 || bs[0].Available != topUp-paid[i] || bs[0].Pending != 0 {
				t.Fatalf("%s: user %d wallet %+v (%v), paid %d", d.Name, i, bs, err, paid[i])
			}
		}
		for id, ccl := range courierClients {
			cl := client.New([]string{d.URL()})
			cl.UseTokens(client.Tokens{AccessToken: ccl.AccessToken(), UserID: id})
			bs, err := cl.Wallet(ctx)
			var got uint64
			if len(bs) == 1 {
				got = bs[0].Available
			}
			if err != nil || got != earned[id] {
				t.Fatalf("%s: courier %s wallet %+v (%v), earned %d", d.Name, id, bs, err, earned[id])
			}
		}
		// Stock taken once per order that kept it.
		var st struct {
			Items []struct {
				ID    string `json:"item_id"`
				Stock *int64 `json:"stock"`
			} `json:"items"`
		}
		cl := client.New([]string{d.URL()})
		cl.UseTokens(client.Tokens{AccessToken: merchant.AccessToken(), UserID: merchantID})
		if err := cl.Do(ctx, client.Request{Method: "GET", Path: "/v1/food/stores/" + store.ID}, &st); err != nil || len(st.Items) != 1 || st.Items[0].Stock == nil {
			t.Fatalf("%s: store %+v (%v)", d.Name, st, err)
		}
		if got := *st.Items[0].Stock; got != int64(stock-delivered) {
			t.Fatalf("%s: stock %d, want %d (%d delivered)", d.Name, got, stock-delivered, delivered)
		}
		if delivered == 0 {
			t.Fatalf("%s: nothing delivered: %v", d.Name, statuses)
		}
		// The merchant was paid once per delivered order: the food less 5%.
		var stmt struct {
			Entries []struct {
				Kind   string `json:"kind"`
				Amount uint64 `json:"amount"`
			} `json:"entries"`
		}
		if err := cl.Do(ctx, client.Request{Method: "GET", Path: "/v1/merchants/statement?limit=100"}, &stmt); err != nil {
			t.Fatalf("%s: merchant statement: %v", d.Name, err)
		}
		var sales uint64
		for _, e := range stmt.Entries {
			if e.Kind == "sale" {
				sales += e.Amount
			}
		}
		if want := uint64(delivered) * (price - price*5/100); sales != want {
			t.Fatalf("%s: merchant sales %d, want %d", d.Name, sales, want)
		}
		t.Logf("%s: orders %v, couriers earned %v", d.Name, statuses, earned)
	}
	for _, d := range c.DCs {
		if d.Name != victim {
			check(d)
		}
	}

	// The burnt DC comes back: all DCs converge, ledger invariants hold.
	c.Restart(victim)
	c.WaitReady(victim, 2*time.Minute)
	c.WaitConverged(ctx)
	check(c.DC(victim))
	for _, d := range c.DCs {
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
