package dctest_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"testing"
	"time"

	"superapp/client"
	"superapp/internal/dctest"
)

type point struct {
	Lat float64 `json:"lat"`
	Lng float64 `json:"lng"`
}

// rideView is a ride as GET /v1/rides/{id} shows it.
type rideView struct {
	ID         string     `json:"ride_id"`
	Status     string     `json:"status"`
	RiderID    string     `json:"rider_id"`
	DriverID   string     `json:"driver_id"`
	Fare       uint64     `json:"fare"`
	CancelFee  uint64     `json:"cancel_fee"`
	AcceptedAt *time.Time `json:"accepted_at"`
	EndedAt    *time.Time `json:"ended_at"`
	Payment    *struct {
		HoldID       string `json:"hold_id"`
		DriverHoldID string `json:"driver_hold_id"`
	} `json:"payment"`
}

type holdView struct {
	Status   string `json:"status"`
	Amount   uint64 `json:"amount"`
	Captured uint64 `json:"captured"`
	Payee    string `json:"payee"`
}

func ended(status string) bool {
	return status == "completed" || status == "cancelled" || status == "no_driver"
}

// TestRidesFire: riders homed on every DC book rides that drivers on every
// DC accept and drive, while the DC leading the RIDES stream is SIGKILLed.
// Afterwards no acknowledged ride is lost, none had two drivers, no driver
// had two rides at once, every hold was captured or released exactly once
// (balances add up to the won), the ledger's invariants hold and the DCs
// converge.
func TestRidesFire(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := dctest.Start(t)

	const (
		riders, drivers = 6, 6
		ridesEach       = 4
		topUp           = 500_000
	)
	pickup := point{37.4979, 127.0276}
	dropoff := point{37.5133, 127.1001}
	signUp := func(kind string, i int) (*client.Client, string) {
		cl := client.New(rotate(c.URLs(), i%3))
		login := fmt.Sprintf("%s%d@example.com", kind, i)
		a, err := cl.SignUp(ctx, login, password, fmt.Sprintf("%s %d", kind, i))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cl.Login(ctx, login, password, "phone"); err != nil {
			t.Fatal(err)
		}
		return cl, a.UserID
	}

	// Drivers report where they are every second and drive every ride
	// they are offered to its end.
	var (
		mu       sync.Mutex
		accepted = map[string][]string{} // ride -> drivers told it was theirs
		ignored  = map[string]bool{}     // rides offered to the driver who never answers
	)
	stop, stopDrivers := context.WithCancel(ctx)
	defer stopDrivers()
	var dwg sync.WaitGroup
	driverClients := map[string]*client.Client{}
	for i := range drivers {
		cl, id := signUp("driver", i)
		driverClients[id] = cl
		// Driver 0, who never answers, is the farthest: offered a ride
		// when the others are busy.
		at := point{pickup.Lat + float64(100*((i+drivers-1)%drivers+1))/111_195, pickup.Lng}
		if err := cl.Do(ctx, client.Request{Method: "POST", Path: "/v1/rides/drivers/online", Body: at}, nil); err != nil {
			t.Fatal(err)
		}
		dwg.Add(2)
		go func() {
			defer dwg.Done()
			for stop.Err() == nil {
				_ = cl.Do(stop, client.Request{Method: "POST", Path: "/v1/rides/drivers/location", Body: at}, nil)
				select {
				case <-stop.Done():
				case <-time.After(time.Second):
				}
			}
		}()
		go func() {
			defer dwg.Done()
			for stop.Err() == nil {
				var offers struct {
					Offers []struct {
						RideID string `json:"ride_id"`
					} `json:"offers"`
				}
				if err := cl.Do(stop, client.Request{Method: "GET", Path: "/v1/rides/offers"}, &offers); err != nil || len(offers.Offers) == 0 {
					time.Sleep(100 * time.Millisecond)
					continue
				}
				ride := offers.Offers[0].RideID
				if i == 0 {
					// This driver never answers: its offers time out and
					// their rides move on, whichever DC dispatches them.
					mu.Lock()
					ignored[ride] = true
					mu.Unlock()
					time.Sleep(time.Second)
					continue
				}
				if err := cl.Do(stop, client.Request{Method: "POST", Path: "/v1/rides/" + ride + "/accept"}, nil); err != nil {
					continue // expired, or cancelled meanwhile
				}
				mu.Lock()
				accepted[ride] = append(accepted[ride], id)
				mu.Unlock()
				// Drive it; a step the rider's cancellation overtook is refused.
				for _, step := range []string{"arrive", "start", "complete"} {
					time.Sleep(150 * time.Millisecond)
					if err := cl.Do(stop, client.Request{Method: "POST", Path: "/v1/rides/" + ride + "/" + step}, nil); err != nil {
						break
					}
				}
			}
		}()
	}

	// Riders book rides one after another; every fourth is cancelled by
	// the rider once a driver accepts (within the free window).
	type booked struct {
		rider int
		id    string
	}
	var (
		all      []booked
		requests sync.WaitGroup
		fire     = make(chan struct{})
		fireOnce sync.Once
	)
	riderClients := make([]*client.Client, riders)
	riderIDs := make([]string, riders)
	for i := range riders {
		riderClients[i], riderIDs[i] = signUp("rider", i)
		if _, err := riderClients[i].TopUp(ctx, "initial", topUp, "KRW"); err != nil {
			t.Fatal(err)
		}
	}
	for i := range riders {
		requests.Add(1)
		go func() {
			defer requests.Done()
			cl := riderClients[i]
			r := rand.New(rand.NewPCG(uint64(i), 6))
			for k := range ridesEach {
				var v rideView
				// The client retries through the fire with the same id.
				in := map[string]any{"id": fmt.Sprintf("ride-%d-%d", i, k), "pickup": pickup, "dropoff": dropoff}
				if err := cl.Do(ctx, client.Request{Method: "POST", Path: "/v1/rides", Body: in}, &v); err != nil {
					t.Errorf("rider %d ride %d: %v", i, k, err)
					return
				}
				mu.Lock()
				all = append(all, booked{rider: i, id: v.ID})
				if len(all) == riders*ridesEach/3 {
					fireOnce.Do(func() { close(fire) })
				}
				mu.Unlock()
				cancelled := false
				for deadline := time.Now().Add(2 * time.Minute); !ended(v.Status); time.Sleep(time.Duration(100+r.IntN(100)) * time.Millisecond) {
					if time.Now().After(deadline) {
						t.Errorf("ride %s stuck %s", v.ID, v.Status)
						return
					}
					if err := cl.Do(ctx, client.Request{Method: "GET", Path: "/v1/rides/" + v.ID}, &v); err != nil {
						continue
					}
					if k%4 == 3 && v.Status == "accepted" && !cancelled {
						_ = cl.Do(ctx, client.Request{Method: "POST", Path: "/v1/rides/" + v.ID + "/cancel", Body: map[string]string{"reason": "test"}}, &v)
						cancelled = true
					}
				}
			}
		}()
	}
	<-fire
	victim := c.Leader(ctx, "RIDES")
	t.Logf("RIDES leader is %s: killing it with rides in flight", victim)
	fired := time.Now()
	c.Kill(victim)
	requests.Wait()
	t.Logf("MEASURE all %d rides ended %v after the fire; %d offers were left to time out", riders*ridesEach, time.Since(fired).Round(time.Millisecond), len(ignored))
	stopDrivers()
	dwg.Wait()
	if t.Failed() {
		return
	}
	if len(all) != riders*ridesEach {
		t.Fatalf("acknowledged %d rides of %d", len(all), riders*ridesEach)
	}

	// A ride ends before its money settles (a ride whose dispatching DC
	// burnt is settled by another after a takeover delay): wait, bounded,
	// until every hold is resolved as seen from a surviving DC.
	survivor := c.DCs[0]
	if survivor.Name == victim {
		survivor = c.DCs[1]
	}
	settledAll := func() bool {
		for _, b := range all {
			cl := client.New([]string{survivor.URL()})
			cl.UseTokens(client.Tokens{AccessToken: riderClients[b.rider].AccessToken(), UserID: riderIDs[b.rider]})
			cl.Observe(riderClients[b.rider].Position())
			var v rideView
			if cl.Do(ctx, client.Request{Method: "GET", Path: "/v1/rides/" + b.id}, &v) != nil || v.Payment == nil {
				return false
			}
			for _, id := range []string{v.Payment.HoldID, v.Payment.DriverHoldID} {
				if id == "" {
					if v.DriverID != "" {
						return false
					}
					continue
				}
				var h holdView
				if cl.Do(ctx, client.Request{Method: "GET", Path: "/v1/wallet/holds/" + id}, &h) != nil || h.Status == "pending" {
					return false
				}
			}
		}
		return true
	}
	for deadline := time.Now().Add(time.Minute); !settledAll() && time.Now().Before(deadline); {
		time.Sleep(200 * time.Millisecond)
	}

	// Read every ride and hold back from each surviving DC.
	for _, d := range c.DCs {
		if d.Name == victim {
			continue
		}
		paid := make([]uint64, riders)
		earned := map[string]uint64{}
		byDriver := map[string][]rideView{}
		statuses := map[string]int{}
		for _, b := range all {
			cl := client.New([]string{d.URL()})
			cl.UseTokens(client.Tokens{AccessToken: riderClients[b.rider].AccessToken(), UserID: riderIDs[b.rider]})
			cl.Observe(riderClients[b.rider].Position())
			var v rideView
			if err := cl.Do(ctx, client.Request{Method: "GET", Path: "/v1/rides/" + b.id}, &v); err != nil {
				t.Fatalf("%s: ride %s lost: %v", d.Name, b.id, err)
			}
			statuses[v.Status]++
			if !ended(v.Status) {
				t.Fatalf("%s: ride %s still %s", d.Name, b.id, v.Status)
			}
			mu.Lock()
			got := accepted[b.id]
			mu.Unlock()
			if len(got) > 1 || (v.DriverID != "" && (len(got) != 1 || got[0] != v.DriverID)) {
				t.Fatalf("%s: ride %s has driver %q, accepted by %v", d.Name, b.id, v.DriverID, got)
			}
			hold := func(id string) holdView {
				var h holdView
				if err := cl.Do(ctx, client.Request{Method: "GET", Path: "/v1/wallet/holds/" + id}, &h); err != nil {
					t.Fatalf("%s: hold %s of ride %s: %v", d.Name, id, b.id, err)
				}
				return h
			}
			if h := hold(v.Payment.HoldID); h.Status != "released" {
				t.Fatalf("%s: ride %s (%s): request hold %+v", d.Name, b.id, v.Status, h)
			}
			if v.DriverID == "" {
				continue
			}
			byDriver[v.DriverID] = append(byDriver[v.DriverID], v)
			if v.Payment.DriverHoldID == "" {
				// Cancelled before the hold for its driver was placed
				// (the rider cancelled right after the accept, during the
				// fire): the driver is owed nothing, as a fee is taken only
				// from that hold.
				if v.Status == "cancelled" && v.CancelFee == 0 {
					continue
				}
				t.Fatalf("%s: ride %s (%s) has a driver but no hold for them", d.Name, b.id, v.Status)
			}
			h := hold(v.Payment.DriverHoldID)
			want := v.Fare + v.CancelFee
			switch {
			case want > 0 && (h.Status != "captured" || h.Captured != want || h.Payee != v.DriverID):
				t.Fatalf("%s: ride %s (%s, fare %d, fee %d): driver hold %+v", d.Name, b.id, v.Status, v.Fare, v.CancelFee, h)
			case want == 0 && h.Status != "released":
				t.Fatalf("%s: ride %s (%s): driver hold %+v", d.Name, b.id, v.Status, h)
			}
			paid[b.rider] += want
			earned[v.DriverID] += want
		}
		// Each hold resolved exactly once: every balance is what the rides say.
		for i, cl := range riderClients {
			dc := client.New([]string{d.URL()})
			dc.UseTokens(client.Tokens{AccessToken: cl.AccessToken(), UserID: riderIDs[i]})
			bs, err := dc.Wallet(ctx)
			if err != nil || len(bs) != 1 || bs[0].Available != topUp-paid[i] || bs[0].Pending != 0 {
				t.Fatalf("%s: rider %d wallet %+v (%v), paid %d", d.Name, i, bs, err, paid[i])
			}
		}
		if len(earned) == 0 {
			t.Fatalf("%s: no driver earned anything: %v", d.Name, statuses)
		}
		for id, cl := range driverClients {
			dc := client.New([]string{d.URL()})
			dc.UseTokens(client.Tokens{AccessToken: cl.AccessToken(), UserID: id})
			bs, err := dc.Wallet(ctx)
			var got uint64
			if len(bs) == 1 {
				got = bs[0].Available
			}
			if err != nil || got != earned[id] {
				t.Fatalf("%s: driver %s wallet %+v (%v), earned %d", d.Name, id, bs, err, earned[id])
			}
		}
		// No driver had two rides at once.
		for drv, vs := range byDriver {
			sort.Slice(vs, func(i, j int) bool { return vs[i].AcceptedAt.Before(*vs[j].AcceptedAt) })
			for i := 1; i < len(vs); i++ {
				if vs[i].AcceptedAt.Before(*vs[i-1].EndedAt) {
					t.Fatalf("%s: driver %s had rides %s and %s at once", d.Name, drv, vs[i-1].ID, vs[i].ID)
				}
			}
		}
		t.Logf("%s: rides %v, drivers earned %v", d.Name, statuses, earned)
	}

	// The burnt DC comes back: all DCs converge, ledger invariants hold.
	c.Restart(victim)
	c.WaitReady(victim, 2*time.Minute)
	c.WaitConverged(ctx)
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
