package rides

import (
	"strconv"
	"testing"
	"time"

	"superapp/internal/ledger"
	"superapp/internal/store/storetest"
	"superapp/internal/store/storetest/streamtest"
)

// BenchmarkApplyRide measures what every node does for one ride, from
// request to completion: seven stream entries (request, offer, accept,
// hold, arrive, start, complete), each applied through a Machine on a
// real store. Drivers are online before the timer starts.
func BenchmarkApplyRide(b *testing.B) {
	const drivers = 64
	sp := storetest.OpenDefault(b).Space(Stream)
	st := NewState(sp)
	f := &streamtest.Feeder{Script: streamtest.Script{At: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC), Step: time.Millisecond},
		M: streamtest.Machine(Stream, sp, st.Apply)}
	apply := f.Apply
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
