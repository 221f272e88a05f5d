package rides

import (
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"superapp/internal/apperr"
	"superapp/internal/cmdlog"
	"superapp/internal/ledger"
	"superapp/internal/store"
	"superapp/internal/store/storetest"
)

// book drives a State with commands the way the log would, with a clock
// the test moves.
type book struct {
	t     *testing.T
	s     *State
	space *store.Space
	at    time.Time
	n     int
	got   []Push
}

func newBook(t *testing.T) *book {
	sp := storetest.Space(t, Stream)
	b := &book{t: t, s: NewState(sp), space: sp, at: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
	b.s.Observe(func(ps []Push, _ []Change) { b.got = append(b.got, ps...) })
	return b
}

func (b *book) apply(kind, actor string, data any) (Ack, *apperr.Error) {
	b.t.Helper()
	raw, err := json.Marshal(data)
	if err != nil {
		b.t.Fatal(err)
	}
	b.n++
	// One command per entry, committed before the next, as a machine does.
	tx := b.space.Begin()
	v, aerr := b.s.Apply(uint64(b.n), &cmdlog.Envelope{ID: "c" + string(rune('a'+b.n%26)), Kind: kind, Actor: actor, At: b.at, Data: raw})
	tx.Commit()
	tx.RunAfterCommit()
	if aerr != nil {
		return Ack{}, aerr
	}
	return v.(Ack), nil
}

func (b *book) ok(kind, actor string, data any) Ack {
	b.t.Helper()
	a, err := b.apply(kind, actor, data)
	if err != nil {
		b.t.Fatalf("%s by %q: %v", kind, actor, err)
	}
	return a
}

func (b *book) refused(code, kind, actor string, data any) {
	b.t.Helper()
	_, err := b.apply(kind, actor, data)
	if err == nil || err.Code != code {
		b.t.Fatalf("%s by %q: got %v, want %s", kind, actor, err, code)
	}
}

func (b *book) ride(id string) *Ride {
	b.t.Helper()
	r, ok := b.s.Ride(id)
	if !ok {
		b.t.Fatalf("no ride %s", id)
	}
	return r
}

var (
	gangnam = Point{Lat: 37.4979, Lng: 127.0276}
	jamsil  = Point{Lat: 37.5133, Lng: 127.1001}
)

func (b *book) request(rider, id string) {
	b.t.Helper()
	fare := FareFor(gangnam.Meters(jamsil))
	b.ok(kindRequest, rider, requestCmd{RideID: id, Pickup: gangnam, Dropoff: jamsil, DistanceMeters: 6600, Fare: fare,
		Hold: HoldFor(fare), Currency: Currency, HoldID: ledger.IDFrom("p/" + id), DC: "dc1"})
}

func (b *book) offer(id, driver string) (Ack, *apperr.Error) {
	return b.apply(kindOffer, "", offerCmd{RideID: id, Driver: driver, TimeoutMs: 15000, PickupMeters: 300, DC: "dc1"})
}

func ride(id string) rideCmd { return rideCmd{RideID: id} }

func TestLifecycle(t *testing.T) {
	b := newBook(t)
	b.ok(kindOnline, "d1", struct{}{})
	b.request("r1", "ride1")
	if r := b.ride("ride1"); r.Status != StatusRequested || r.HoldAmount < r.EstimatedFare {
		t.Fatalf("requested: %+v", r)
	}
	if _, err := b.offer("ride1", "d1"); err != nil {
		t.Fatal(err)
	}
	if offers := b.s.Offers("d1", b.at); len(offers) != 1 || offers[0].RideID != "ride1" {
		t.Fatalf("offers of d1: %+v", offers)
	}
	b.at = b.at.Add(5 * time.Second)
	b.ok(kindAccept, "d1", ride("ride1"))
	if st := b.s.Driver("d1"); st.RideID != "ride1" {
		t.Fatalf("driver after accept: %+v", st)
	}
	b.ok(kindArrive, "d1", ride("ride1"))
	// No trip before the rider's money is held for the driver.
	b.refused(PaymentPending, kindStart, "d1", ride("ride1"))
	b.ok(kindHold, "", rideCmd{RideID: "ride1", HoldID: ledger.IDFrom("d/ride1")})
	b.ok(kindStart, "d1", ride("ride1"))
	b.refused(apperr.Invalid, kindComplete, "d1", ride("ride1")) // no fare
	b.ok(kindComplete, "d1", rideCmd{RideID: "ride1", Fare: 1 << 40})
	r := b.ride("ride1")
	if r.Status != StatusCompleted || r.Fare != r.HoldAmount {
		t.Fatalf("completed: a fare above the hold is capped at it: %+v", r)
	}
	// Double completion is refused; rider and driver are free again.
	b.refused(apperr.Conflict, kindComplete, "d1", rideCmd{RideID: "ride1", Fare: 100})
	if _, ok := b.s.ActiveRide("r1"); ok {
		t.Fatal("rider still has an active ride")
	}
	if st := b.s.Driver("d1"); st.RideID != "" || !st.Online {
		t.Fatalf("driver after the ride: %+v", st)
	}
	// The rider heard of every step, the driver of the offer.
	var riderFrames, offers int
	for _, p := range b.got {
		if p.User == "r1" && p.Frame.Type == "ride" {
			riderFrames++
			if p.Frame.Ride.Payment == nil {
				t.Fatal("the rider's view lacks the payment")
			}
		}
		if p.User == "d1" && p.Frame.Type == "ride" && p.Frame.Ride.Payment != nil {
			t.Fatal("the driver sees the hold ids")
		}
		if p.User == "d1" && p.Frame.Type == "ride.offer" {
			offers++
		}
	}
	if riderFrames != 5 || offers != 1 { // requested, accepted, arrived, started, completed
		t.Fatalf("rider frames %d, offers %d", riderFrames, offers)
	}
}

func TestConflictingOffers(t *testing.T) {
	b := newBook(t)
	for _, d := range []string{"d1", "d2"} {
		b.ok(kindOnline, d, struct{}{})
	}
	b.request("r1", "ride1")
	b.request("r2", "ride2")
	// Two DCs offer ride1 at once, to different drivers: the first wins.
	if _, err := b.offer("ride1", "d1"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.offer("ride1", "d2"); err == nil || err.Code != apperr.Conflict {
		t.Fatalf("a second offer for one ride: %v", err)
	}
	// ... and d1 cannot be offered ride2 while ride1's offer stands.
	if _, err := b.offer("ride2", "d1"); err == nil || err.Code != apperr.Conflict {
		t.Fatalf("a second ride for one driver: %v", err)
	}
	if _, err := b.offer("ride2", "d2"); err != nil {
		t.Fatal(err)
	}
	// Each driver accepts their own; neither can take the other's.
	b.refused(apperr.NotFound, kindAccept, "d2", ride("ride1"))
	b.refused(apperr.NotFound, kindDecline, "d1", ride("ride2"))
	b.ok(kindAccept, "d1", ride("ride1"))
	b.ok(kindAccept, "d2", ride("ride2"))
	if r := b.ride("ride1"); r.Driver != "d1" {
		t.Fatalf("ride1: %+v", r)
	}
	if r := b.ride("ride2"); r.Driver != "d2" {
		t.Fatalf("ride2: %+v", r)
	}
	// A driver on a ride gets no offer.
	b.request("r3", "ride3")
	if _, err := b.offer("ride3", "d1"); err == nil {
		t.Fatal("offered a ride to a driver on a ride")
	}
}

func TestOfferExpiry(t *testing.T) {
	b := newBook(t)
	for _, d := range []string{"d1", "d2"} {
		b.ok(kindOnline, d, struct{}{})
	}
	b.request("r1", "ride1")
	if _, err := b.offer("ride1", "d1"); err != nil {
		t.Fatal(err)
	}
	// While it stands, nobody else is offered the ride, and giving up waits.
	b.at = b.at.Add(14 * time.Second)
	b.refused(apperr.Conflict, kindGiveUp, "", ride("ride1"))
	// At 15s it is over: accepting is refused, the next driver is offered.
	b.at = b.at.Add(time.Second)
	b.refused(OfferExpired, kindAccept, "d1", ride("ride1"))
	if offers := b.s.Offers("d1", b.at); len(offers) != 0 {
		t.Fatalf("an expired offer is listed: %+v", offers)
	}
	if _, err := b.offer("ride1", "d2"); err != nil {
		t.Fatal(err)
	}
	b.refused(OfferExpired, kindAccept, "d1", ride("ride1"))
	// The driver who let it go is not offered it again.
	b.ok(kindDecline, "d2", ride("ride1"))
	if _, err := b.offer("ride1", "d1"); err == nil {
		t.Fatal("re-offered to a driver who let the offer expire")
	}
	if r := b.ride("ride1"); r.Attempts != 2 || len(r.Tried) != 2 {
		t.Fatalf("attempts: %+v", r)
	}
	b.ok(kindGiveUp, "", ride("ride1"))
	if r := b.ride("ride1"); r.Status != StatusNoDriver {
		t.Fatalf("gave up: %+v", r)
	}
	if _, ok := b.s.ActiveRide("r1"); ok {
		t.Fatal("rider still busy after no driver was found")
	}
}

func TestMaxOffers(t *testing.T) {
	b := newBook(t)
	b.request("r1", "ride1")
	for i := range MaxOffers + 1 {
		d := "d" + string(rune('a'+i))
		b.ok(kindOnline, d, struct{}{})
		_, err := b.offer("ride1", d)
		if i < MaxOffers && err != nil {
			t.Fatal(err)
		}
		if i == MaxOffers && err == nil {
			t.Fatalf("offered to %d drivers", i+1)
		}
		if err == nil {
			b.ok(kindDecline, d, ride("ride1"))
		}
	}
}

func TestCancellation(t *testing.T) {
	b := newBook(t)
	b.ok(kindOnline, "d1", struct{}{})
	assign := func(rider, id string) {
		b.request(rider, id)
		if _, err := b.offer(id, "d1"); err != nil {
			t.Fatal(err)
		}
		b.ok(kindAccept, "d1", ride(id))
		b.ok(kindHold, "", rideCmd{RideID: id, HoldID: ledger.IDFrom("d/" + id)})
	}

	// While an offer is out: free, and the driver's offer is withdrawn.
	b.request("r1", "ride1")
	if _, err := b.offer("ride1", "d1"); err != nil {
		t.Fatal(err)
	}
	b.got = nil
	b.ok(kindCancel, "r1", ride("ride1"))
	if r := b.ride("ride1"); r.CancelFee != 0 || r.CancelledBy != ByRider {
		t.Fatalf("cancelled while searching: %+v", r)
	}
	if len(b.got) == 0 || b.got[0].User != "d1" || b.got[0].Frame.Type != "ride.offer_withdrawn" {
		t.Fatalf("pushes: %+v", b.got)
	}
	b.refused(apperr.NotFound, kindAccept, "d1", ride("ride1"))

	// Within two minutes of acceptance: free.
	assign("r2", "ride2")
	b.at = b.at.Add(FreeCancelWindow)
	b.ok(kindCancel, "r2", ride("ride2"))
	if r := b.ride("ride2"); r.CancelFee != 0 {
		t.Fatalf("cancelled within the window: %+v", r)
	}

	// Later: the fee, for the driver.
	assign("r3", "ride3")
	b.at = b.at.Add(FreeCancelWindow + time.Second)
	b.ok(kindArrive, "d1", ride("ride3"))
	b.ok(kindCancel, "r3", ride("ride3"))
	if r := b.ride("ride3"); r.CancelFee != CancelFee {
		t.Fatalf("cancelled late: %+v", r)
	}
	b.refused(apperr.Conflict, kindCancel, "r3", ride("ride3"))

	// The driver cancelling never charges the rider, however late.
	assign("r4", "ride4")
	b.at = b.at.Add(10 * time.Minute)
	b.refused(apperr.NotFound, kindCancel, "someone", ride("ride4"))
	b.ok(kindCancel, "d1", ride("ride4"))
	if r := b.ride("ride4"); r.CancelFee != 0 || r.CancelledBy != ByDriver {
		t.Fatalf("cancelled by the driver: %+v", r)
	}

	// A started trip is completed, not cancelled.
	assign("r5", "ride5")
	b.ok(kindArrive, "d1", ride("ride5"))
	b.ok(kindStart, "d1", ride("ride5"))
	b.refused(apperr.Conflict, kindCancel, "r5", ride("ride5"))
	b.refused(apperr.Conflict, kindCancel, "d1", ride("ride5"))
}

func TestForbidden(t *testing.T) {
	b := newBook(t)
	b.ok(kindOnline, "d1", struct{}{})
	b.request("r1", "ride1")
	// The rider cannot accept their own ride, nor be offered it.
	b.ok(kindOnline, "r1", struct{}{})
	if _, err := b.offer("ride1", "r1"); err == nil {
		t.Fatal("offered riders their own ride")
	}
	if _, err := b.offer("ride1", "d1"); err != nil {
		t.Fatal(err)
	}
	b.refused(apperr.NotFound, kindAccept, "r1", ride("ride1"))
	b.ok(kindAccept, "d1", ride("ride1"))
	// The rider cannot act as the driver; a stranger cannot act at all.
	b.refused(apperr.Forbidden, kindArrive, "r1", ride("ride1"))
	b.refused(apperr.NotFound, kindArrive, "d2", ride("ride1"))
	if _, ok := b.s.RideFor("ride1", "d2"); ok {
		t.Fatal("a stranger reads the ride")
	}
	if v, ok := b.s.RideFor("ride1", "d1"); !ok || v.Payment != nil {
		t.Fatalf("the driver's view: %+v", v)
	}
	// A rider has one ride at a time.
	_, err := b.apply(kindRequest, "r1", requestCmd{RideID: "ride2", Pickup: gangnam, Dropoff: jamsil, Fare: 5000, Hold: 6500,
		Currency: Currency, HoldID: ledger.IDFrom("p/ride2")})
	if err == nil || err.Code != RideActive {
		t.Fatalf("second ride: %v", err)
	}
	// A driver on a ride cannot go offline.
	b.refused(apperr.Conflict, kindOffline, "d1", struct{}{})
}

func TestOfflineDeclines(t *testing.T) {
	b := newBook(t)
	b.ok(kindOnline, "d1", struct{}{})
	b.request("r1", "ride1")
	if _, err := b.offer("ride1", "d1"); err != nil {
		t.Fatal(err)
	}
	b.ok(kindOffline, "d1", struct{}{})
	r := b.ride("ride1")
	if r.Offer != nil || len(r.Tried) != 1 {
		t.Fatalf("offline with an offer in hand: %+v", r)
	}
	if _, err := b.offer("ride1", "d1"); err == nil {
		t.Fatal("offered to an offline driver")
	}
}

// TestDeterministic applies one log on two machines: same digest.
func TestDeterministic(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	env := func(id, kind, actor string, sec int, data any) []byte {
		raw, _ := json.Marshal(data)
		b, _ := json.Marshal(cmdlog.Envelope{ID: id, Kind: kind, Actor: actor, At: at.Add(time.Duration(sec) * time.Second), Data: raw})
		return b
	}
	entries := [][]byte{
		env("1", kindOnline, "d1", 0, struct{}{}),
		env("2", kindOnline, "d2", 0, struct{}{}),
		env("3", kindRequest, "r1", 1, requestCmd{RideID: "x", Pickup: gangnam, Dropoff: jamsil, Fare: 5000, Hold: 6500, Currency: Currency, HoldID: ledger.IDFrom("p")}),
		env("4", kindOffer, "", 2, offerCmd{RideID: "x", Driver: "d1", TimeoutMs: 15000}),
		env("5", kindOffer, "", 2, offerCmd{RideID: "x", Driver: "d2", TimeoutMs: 15000}),
		env("6", kindAccept, "d1", 20, rideCmd{RideID: "x"}),
		env("7", kindOffer, "", 21, offerCmd{RideID: "x", Driver: "d2", TimeoutMs: 15000}),
		env("8", kindAccept, "d2", 22, rideCmd{RideID: "x"}),
	}
	var digests []string
	var views []string
	for range 2 {
		sp := storetest.Space(t, Stream)
		st := NewState(sp)
		m := cmdlog.NewMachine(Stream, sp, st.Apply, log)
		for i, e := range entries {
			m.Apply(uint64(i+1), e, 0)
		}
		_, d := m.Digest()
		digests = append(digests, d)
		r, _ := st.Ride("x")
		b, _ := json.Marshal(r)
		views = append(views, string(b))
		if r.Driver != "d2" || r.Attempts != 2 {
			t.Fatalf("ride: %+v", r)
		}
	}
	if digests[0] != digests[1] || views[0] != views[1] {
		t.Fatalf("two machines differ: %v\n%s\n%s", digests, views[0], views[1])
	}
}

// TestSkewedClocks: commands carry the clocks of the DCs that sent them.
// An accept stamped (by a slow clock) before an offer of another ride to
// the same driver, but logged after it, must not give the driver two
// rides.
func TestSkewedClocks(t *testing.T) {
	b := newBook(t)
	b.ok(kindOnline, "d1", struct{}{})
	b.request("r1", "rideA")
	b.request("r2", "rideB")
	if _, err := b.offer("rideA", "d1"); err != nil {
		t.Fatal(err)
	}
	start := b.at
	// A DC whose clock runs ahead offers rideB to d1 once rideA's offer
	// looks expired to it.
	b.at = start.Add(MaxOfferTimeout + time.Second)
	if _, err := b.offer("rideB", "d1"); err != nil {
		t.Fatal(err)
	}
	// d1's accept of rideA, stamped by a slow clock, is logged afterwards.
	b.at = start.Add(time.Second)
	b.apply(kindAccept, "d1", ride("rideA"))
	b.at = start.Add(MaxOfferTimeout + 2*time.Second)
	b.apply(kindAccept, "d1", ride("rideB"))
	rides := 0
	for _, id := range []string{"rideA", "rideB"} {
		if r := b.ride(id); r.Driver == "d1" && r.Status == StatusAccepted {
			rides++
		}
	}
	if rides > 1 {
		t.Fatalf("d1 was given %d rides at once", rides)
	}
}

// TestNoFeeBeforeArrival: a rider who cancels late pays a fee only if the
// driver actually came.
func TestNoFeeBeforeArrival(t *testing.T) {
	b := newBook(t)
	b.ok(kindOnline, "d1", struct{}{})
	b.request("r1", "ride1")
	if _, err := b.offer("ride1", "d1"); err != nil {
		t.Fatal(err)
	}
	b.ok(kindAccept, "d1", ride("ride1"))
	b.ok(kindHold, "", rideCmd{RideID: "ride1", HoldID: ledger.IDFrom("d/ride1")})
	b.at = b.at.Add(10 * time.Minute)
	b.ok(kindCancel, "r1", ride("ride1"))
	if r := b.ride("ride1"); r.CancelFee != 0 {
		t.Fatalf("charged a fee for a driver who never arrived: %+v", r)
	}
}
