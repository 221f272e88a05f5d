package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"superapp/client"
)

const (
	pickup  = `{"lat":37.4979,"lng":127.0276}`
	dropoff = `{"lat":37.5133,"lng":127.1001}`
)

// at is a location body meters north of the pickup.
func at(meters float64) string {
	return fmt.Sprintf(`{"lat":%f,"lng":127.0276}`, 37.4979+meters/111_195)
}

func (e *env) ok(method, path, token, body string, want int) resp {
	e.t.Helper()
	r := e.do(method, path, token, body)
	if r.status != want {
		e.t.Fatalf("%s %s: %d %s, want %d", method, path, r.status, r.raw, want)
	}
	return r
}

func (e *env) refused(method, path, token, body string, status int, code, field string) {
	e.t.Helper()
	r := e.do(method, path, token, body)
	if r.status != status || r.errCode() != code || r.errField() != field {
		e.t.Fatalf("%s %s: %d %s, want %d %s (field %q)", method, path, r.status, r.raw, status, code, field)
	}
}

// offerFor waits until driver is offered a ride and returns its id.
func (e *env) offerFor(driver *client.Client) string {
	e.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		r := e.ok("GET", "/v1/rides/offers", driver.AccessToken(), "", 200)
		if os, _ := r.body["offers"].([]any); len(os) == 1 {
			return os[0].(map[string]any)["ride_id"].(string)
		}
	}
	e.t.Fatal("no offer within 10s")
	return ""
}

func (e *env) noOffers(driver *client.Client) {
	e.t.Helper()
	r := e.ok("GET", "/v1/rides/offers", driver.AccessToken(), "", 200)
	if os, _ := r.body["offers"].([]any); len(os) != 0 {
		e.t.Fatalf("offers: %s", r.raw)
	}
}

func (e *env) waitStatus(user *client.Client, ride, status string) resp {
	e.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		r := e.ok("GET", "/v1/rides/"+ride, user.AccessToken(), "", 200)
		if r.body["status"] == status {
			return r
		}
	}
	e.t.Fatalf("ride %s never became %s", ride, status)
	return resp{}
}

func (e *env) wallet(user *client.Client) (available, pending float64) {
	e.t.Helper()
	r := e.ok("GET", "/v1/wallet", user.AccessToken(), "", 200)
	bs, _ := r.body["balances"].([]any)
	for _, b := range bs {
		if m := b.(map[string]any); m["currency"] == "KRW" {
			return m["available"].(float64), m["pending"].(float64)
		}
	}
	return 0, 0
}

// rideFrames reads a user's event stream, live: its ride frames only.
func rideFrames(t *testing.T, ctx context.Context, url string, user *client.Client) <-chan map[string]any {
	t.Helper()
	ws := dialEvents(t, ctx, url, user.AccessToken())
	out := make(chan map[string]any, 64)
	live := make(chan struct{})
	go func() {
		defer close(out)
		defer ws.CloseNow()
		for {
			_, b, err := ws.Read(ctx)
			if err != nil {
				return
			}
			var f map[string]any
			if json.Unmarshal(b, &f) != nil {
				continue
			}
			switch t, _ := f["type"].(string); {
			case t == "sync.done":
				close(live)
			case strings.HasPrefix(t, "ride"):
				out <- f
			}
		}
	}()
	select {
	case <-live:
	case <-time.After(10 * time.Second):
		t.Fatal("event stream never went live")
	}
	return out
}

func nextFrame(t *testing.T, ch <-chan map[string]any, typ string) map[string]any {
	t.Helper()
	for {
		select {
		case f := <-ch:
			if f["type"] == typ {
				return f
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no %s frame within 10s", typ)
		}
	}
}

func rideStatus(f map[string]any) any {
	r, _ := f["ride"].(map[string]any)
	return r["status"]
}

// TestRide is a full taxi ride through the public API, with payment: the
// rider pays the fare, the driver earns it, and nobody else sees a thing.
func TestRide(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rider, _ := e.user("Rider")
	driver, _ := e.user("Driver")
	other, _ := e.user("Other")
	stranger, _ := e.user("Stranger")
	e.ok("POST", "/v1/wallet/topups", rider.AccessToken(), `{"id":"t1","amount":100000,"currency":"KRW"}`, 201)

	// Bad input names its field.
	e.refused("POST", "/v1/rides/drivers/location", driver.AccessToken(), at(10), 409, "driver_offline", "")
	e.refused("POST", "/v1/rides/drivers/online", driver.AccessToken(), `{"lat":95,"lng":127}`, 400, "invalid_field", "lat")
	e.refused("POST", "/v1/rides/drivers/online", driver.AccessToken(), `{"lat":37}`, 400, "invalid_field", "lng")
	e.refused("GET", "/v1/rides/estimate?from_lat=x&from_lng=127&to_lat=37&to_lng=127", rider.AccessToken(), "", 400, "invalid_field", "from_lat")
	e.refused("GET", "/v1/rides/estimate?from_lat=37&from_lng=127&to_lat=37", rider.AccessToken(), "", 400, "invalid_field", "to_lng")
	e.refused("GET", "/v1/rides/estimate?from_lat=37&from_lng=127&to_lat=-37&to_lng=127", rider.AccessToken(), "", 400, "invalid_field", "to_lat")
	e.refused("POST", "/v1/rides", rider.AccessToken(), `{"id":"trip-1","dropoff":`+dropoff+`}`, 400, "invalid_field", "pickup")
	e.refused("POST", "/v1/rides", rider.AccessToken(), `{"id":"trip 1","pickup":`+pickup+`,"dropoff":`+dropoff+`}`, 400, "invalid_field", "id")
	e.refused("POST", "/v1/rides", rider.AccessToken(), `{"id":"trip-1","pickup":{"lat":37,"lng":200},"dropoff":`+dropoff+`}`, 400, "invalid_field", "pickup")
	e.refused("POST", "/v1/rides", rider.AccessToken(), `{"id":"trip-1","pickup":`+pickup+`,"dropoff":`+dropoff+`,"currency":"USD"}`, 400, "invalid_field", "currency")
	e.refused("POST", "/v1/rides", rider.AccessToken(), `{"id":"trip-1","pickup":`+pickup+`,"dropoff":`+dropoff+`,"tip":1}`, 400, "unknown_field", "tip")
	e.refused("GET", "/v1/rides/estimate?from_lat=37&from_lng=127&to_lat=37&to_lng=127", "", "", 401, "unauthenticated", "")

	e.ok("POST", "/v1/rides/drivers/online", driver.AccessToken(), at(100), 200)
	e.ok("POST", "/v1/rides/drivers/online", other.AccessToken(), "", 200)
	e.ok("POST", "/v1/rides/drivers/location", other.AccessToken(), at(400), 200)
	est := e.ok("GET", "/v1/rides/estimate?from_lat=37.4979&from_lng=127.0276&to_lat=37.5133&to_lng=127.1001", rider.AccessToken(), "", 200)
	if est.body["drivers_nearby"] != float64(2) || est.body["fare"].(float64) < 4800 || est.body["hold_amount"].(float64) < est.body["fare"].(float64) {
		t.Fatalf("estimate: %s", est.raw)
	}

	events := rideFrames(t, ctx, e.url, rider)
	r := e.ok("POST", "/v1/rides", rider.AccessToken(), `{"id":"trip-1","pickup":`+pickup+`,"dropoff":`+dropoff+`}`, 201)
	ride := r.body["ride_id"].(string)
	hold := r.body["payment"].(map[string]any)["hold_amount"].(float64)
	if r.body["status"] != "requested" || r.body["estimated_fare"] != est.body["fare"] || !strings.Contains(r.header.Get("X-Superapp-Position"), "RIDES:") {
		t.Fatalf("request: %s %v", r.raw, r.header)
	}
	// The same request again: the same ride, once.
	again := e.ok("POST", "/v1/rides", rider.AccessToken(), `{"id":"trip-1","pickup":`+pickup+`,"dropoff":`+dropoff+`}`, 200)
	if again.body["ride_id"] != ride {
		t.Fatalf("repeated request: %s", again.raw)
	}
	if av, pe := e.wallet(rider); av != 100000-hold || pe != hold {
		t.Fatalf("held at request: available %v pending %v, hold %v", av, pe, hold)
	}
	e.refused("POST", "/v1/rides", rider.AccessToken(), `{"id":"trip-2","pickup":`+pickup+`,"dropoff":`+dropoff+`}`, 409, "ride_active", "")

	// The nearest driver is offered the ride; nobody else sees the offer.
	if got := e.offerFor(driver); got != ride {
		t.Fatalf("offer for %s, want %s", got, ride)
	}
	e.noOffers(other)
	e.noOffers(rider)
	for _, u := range []*client.Client{other, stranger, rider} {
		e.refused("POST", "/v1/rides/"+ride+"/accept", u.AccessToken(), "", 404, "not_found", "")
		e.refused("POST", "/v1/rides/"+ride+"/decline", u.AccessToken(), "", 404, "not_found", "")
	}
	for _, u := range []*client.Client{other, stranger, driver} {
		e.refused("GET", "/v1/rides/"+ride, u.AccessToken(), "", 404, "not_found", "")
	}

	acc := e.ok("POST", "/v1/rides/"+ride+"/accept", driver.AccessToken(), "", 200)
	if acc.body["status"] != "accepted" || acc.body["payment"] != nil || !strings.Contains(acc.header.Get("X-Superapp-Position"), "LEDGER:") {
		t.Fatalf("accept (the driver never sees the hold ids): %s %v", acc.raw, acc.header)
	}
	if f := nextFrame(t, events, "ride"); rideStatus(f) != "requested" {
		t.Fatalf("first frame: %v", f)
	}
	if f := nextFrame(t, events, "ride"); rideStatus(f) != "accepted" || f["ride"].(map[string]any)["driver_id"] != driver.UserID() {
		t.Fatalf("accepted frame: %v", f)
	}
	// Only the driver drives; only the rider and driver see the ride.
	e.refused("POST", "/v1/rides/"+ride+"/arrive", rider.AccessToken(), "", 403, "forbidden", "")
	for _, path := range []string{"arrive", "start", "complete", "cancel"} {
		e.refused("POST", "/v1/rides/"+ride+"/"+path, other.AccessToken(), "", 404, "not_found", "")
	}
	e.refused("GET", "/v1/rides/"+ride, stranger.AccessToken(), "", 404, "not_found", "")
	e.refused("POST", "/v1/rides/drivers/offline", driver.AccessToken(), "", 409, "conflict", "")

	// The rider watches the driver come.
	e.ok("POST", "/v1/rides/drivers/location", driver.AccessToken(), at(50), 200)
	if f := nextFrame(t, events, "ride.location"); f["ride_id"] != ride || f["location"] == nil {
		t.Fatalf("location frame: %v", f)
	}
	seen := e.ok("GET", "/v1/rides/"+ride, rider.AccessToken(), "", 200)
	if seen.body["driver_location"] == nil || seen.body["payment"].(map[string]any)["driver_hold_id"] == nil {
		t.Fatalf("rider's view: %s", seen.raw)
	}
	e.ok("POST", "/v1/rides/"+ride+"/arrive", driver.AccessToken(), "", 200)
	e.ok("POST", "/v1/rides/"+ride+"/start", driver.AccessToken(), "", 200)
	e.ok("POST", "/v1/rides/drivers/location", driver.AccessToken(), dropoff, 200)
	done := e.ok("POST", "/v1/rides/"+ride+"/complete", driver.AccessToken(), "", 200)
	fare := done.body["fare"].(float64)
	if done.body["status"] != "completed" || fare <= 0 || fare > hold {
		t.Fatalf("complete: %s", done.raw)
	}
	if f := nextFrame(t, events, "ride"); rideStatus(f) != "arrived" {
		t.Fatalf("frame: %v", f)
	}
	// A retried completion answers the same; a cancellation comes too late.
	if again := e.ok("POST", "/v1/rides/"+ride+"/complete", driver.AccessToken(), "", 200); again.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("completion retried: %v", again.header)
	}
	e.refused("POST", "/v1/rides/"+ride+"/cancel", rider.AccessToken(), "", 409, "conflict", "")

	// The money: the rider paid the fare, the driver earned it.
	if av, pe := e.wallet(rider); av != 100000-fare || pe != 0 {
		t.Fatalf("rider: available %v pending %v, fare %v", av, pe, fare)
	}
	if av, _ := e.wallet(driver); av != fare {
		t.Fatalf("driver: available %v, fare %v", av, fare)
	}
	e.ok("POST", "/v1/rides/drivers/offline", driver.AccessToken(), "", 200)
}

// TestRideCancelAndTimeouts: cancellation rules, a timed-out offer moving
// to the next driver, and a search that finds nobody.
func TestRideCancelAndTimeouts(t *testing.T) {
	e := newEnv(t)
	rider, _ := e.user("Rider")
	near, _ := e.user("Near")
	far, _ := e.user("Far")
	e.ok("POST", "/v1/wallet/topups", rider.AccessToken(), `{"id":"t1","amount":100000,"currency":"KRW"}`, 201)
	request := func(id string) string {
		t.Helper()
		return e.ok("POST", "/v1/rides", rider.AccessToken(), `{"id":"`+id+`","pickup":`+pickup+`,"dropoff":`+dropoff+`}`, 201).body["ride_id"].(string)
	}
	report := func() {
		t.Helper()
		e.ok("POST", "/v1/rides/drivers/location", near.AccessToken(), at(100), 200)
		e.ok("POST", "/v1/rides/drivers/location", far.AccessToken(), at(900), 200)
	}

	// Nobody online: the search gives up after a minute; nothing charged.
	lonely := request("lonely")
	e.clock.Advance(61 * time.Second)
	e.waitStatus(rider, lonely, "no_driver")
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if av, pe := e.wallet(rider); av == 100000 && pe == 0 {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("hold not released after no driver: %v %v", av, pe)
		}
	}

	e.ok("POST", "/v1/rides/drivers/online", near.AccessToken(), at(100), 200)
	e.ok("POST", "/v1/rides/drivers/online", far.AccessToken(), at(900), 200)

	// Cancelled while looking for a driver: free.
	first := request("first")
	if e.offerFor(near) != first {
		t.Fatal("offer to the nearest")
	}
	e.ok("POST", "/v1/rides/"+first+"/cancel", rider.AccessToken(), `{"reason":"changed my mind"}`, 200)
	e.noOffers(near)
	if av, pe := e.wallet(rider); av != 100000 || pe != 0 {
		t.Fatalf("after a free cancellation: %v %v", av, pe)
	}

	// An offer left to time out goes to the next driver.
	second := request("second")
	if e.offerFor(near) != second {
		t.Fatal("offer to the nearest")
	}
	e.clock.Advance(16 * time.Second)
	if e.offerFor(far) != second {
		t.Fatal("offer to the next")
	}
	e.refused("POST", "/v1/rides/"+second+"/accept", near.AccessToken(), "", 409, "offer_expired", "")
	e.ok("POST", "/v1/rides/"+second+"/accept", far.AccessToken(), "", 200)
	// Cancelled by the rider more than two minutes after acceptance, the
	// driver waiting at the pickup: the fee.
	e.clock.Advance(2*time.Minute + time.Second)
	e.ok("POST", "/v1/rides/"+second+"/arrive", far.AccessToken(), "", 200)
	c := e.ok("POST", "/v1/rides/"+second+"/cancel", rider.AccessToken(), "", 200)
	if c.body["cancel_fee"] != float64(3000) || c.body["cancelled_by"] != "rider" {
		t.Fatalf("late cancellation: %s", c.raw)
	}
	if av, pe := e.wallet(rider); av != 97000 || pe != 0 {
		t.Fatalf("rider after the fee: %v %v", av, pe)
	}
	if av, _ := e.wallet(far); av != 3000 {
		t.Fatalf("driver after the fee: %v", av)
	}

	// Cancelled by the driver, however late: the rider pays nothing.
	report()
	third := request("third")
	if e.offerFor(near) != third {
		t.Fatal("offer to the nearest")
	}
	e.ok("POST", "/v1/rides/"+third+"/accept", near.AccessToken(), "", 200)
	e.clock.Advance(5 * time.Minute)
	c = e.ok("POST", "/v1/rides/"+third+"/cancel", near.AccessToken(), `{"reason":"flat tyre"}`, 200)
	if c.body["cancel_fee"] != nil || c.body["cancelled_by"] != "driver" {
		t.Fatalf("driver's cancellation: %s", c.raw)
	}
	if av, pe := e.wallet(rider); av != 97000 || pe != 0 {
		t.Fatalf("rider after the driver cancelled: %v %v", av, pe)
	}
	// The driver is free again; a decline moves the ride on at once.
	report()
	fourth := request("fourth")
	if e.offerFor(near) != fourth {
		t.Fatal("offer to the nearest")
	}
	e.ok("POST", "/v1/rides/"+fourth+"/decline", near.AccessToken(), "", 200)
	if e.offerFor(far) != fourth {
		t.Fatal("offer to the next after a decline")
	}
}

// TestRideNoMoney: a rider who cannot pay the hold gets no ride.
func TestRideNoMoney(t *testing.T) {
	e := newEnv(t)
	rider, _ := e.user("Broke")
	r := e.do("POST", "/v1/rides", rider.AccessToken(), `{"id":"x","pickup":`+pickup+`,"dropoff":`+dropoff+`}`)
	if r.status != http.StatusUnprocessableEntity || r.errCode() != "exceeds_credits" {
		t.Fatalf("no money: %d %s", r.status, r.raw)
	}
	e.ok("POST", "/v1/wallet/topups", rider.AccessToken(), `{"id":"t1","amount":100000,"currency":"KRW"}`, 201)
	// The refused id does not block a new request with it.
	e.ok("POST", "/v1/rides", rider.AccessToken(), `{"id":"x","pickup":`+pickup+`,"dropoff":`+dropoff+`}`, 201)
}
