package rides

import (
	"encoding/json"
	"io"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"superapp/internal/cmdlog"
	"superapp/internal/ledger"
	"superapp/internal/store"
)

// BenchmarkApplyRide measures what every node does for one ride, from
// request to completion: seven stream entries (request, offer, accept,
// hold, arrive, start, complete), each applied through a Machine on a
// real store. Drivers are online before the timer starts.
func BenchmarkApplyRide(b *testing.B) {
	const drivers = 64
	st := newBenchState(b)
	m := cmdlog.NewMachine(Stream, st.space, st.Apply, slog.New(slog.NewTextHandler(io.Discard, nil)))
	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	seq, n := uint64(0), 0
	apply := func(kind, actor string, data any) {
		raw, _ := json.Marshal(data)
		n++
		at = at.Add(time.Millisecond)
		e, _ := json.Marshal(cmdlog.Envelope{ID: "c" + strconv.Itoa(n), Kind: kind, Actor: actor, At: at, Data: raw})
		seq++
		m.Apply(seq, e, 0)
	}
	for d := range drivers {
		apply(kindOnline, "d"+strconv.Itoa(d), struct{}{})
	}
	fare := FareFor(gangnam.Meters(jamsil))
	i := 0
	for b.Loop() {
		id, rider, driver := "ride"+strconv.Itoa(i), "r"+strconv.Itoa(i), "d"+strconv.Itoa(i%drivers)
		i++
		apply(kindRequest, rider, requestCmd{RideID: id, Pickup: gangnam, Dropoff: jamsil, DistanceMeters: 6600, Fare: fare,
			Hold: HoldFor(fare), Currency: Currency, HoldID: ledger.IDFrom("p/" + id), DC: "dc1"})
		apply(kindOffer, "", offerCmd{RideID: id, Driver: driver, TimeoutMs: 15000, PickupMeters: 300, DC: "dc1"})
		apply(kindAccept, driver, rideCmd{RideID: id})
		apply(kindHold, "", rideCmd{RideID: id, HoldID: ledger.IDFrom("d/" + id)})
		apply(kindArrive, driver, rideCmd{RideID: id})
		apply(kindStart, driver, rideCmd{RideID: id})
		apply(kindComplete, driver, rideCmd{RideID: id, Fare: fare})
	}
	if r, ok := st.Ride("ride0"); !ok || r.Status != StatusCompleted {
		b.Fatalf("ride0: %+v", r)
	}
}

type benchState struct {
	*State
	space *store.Space
}

// newBenchState opens a store as a node does (the default block cache).
func newBenchState(tb testing.TB) benchState {
	db, err := store.Open(tb.TempDir(), store.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = db.Close() })
	sp := db.Space(Stream)
	return benchState{State: NewState(sp), space: sp}
}
