package rides

import (
	"encoding/json"
	"slices"
	"strconv"
	"testing"
	"time"

	"superapp/internal/cmdlog"
	"superapp/internal/ledger"
	"superapp/internal/store"
	"superapp/internal/store/storetest"
	"superapp/internal/store/storetest/streamtest"
)

// replica is one node's rides read model on its own store.
type replica struct {
	st *State
	m  *cmdlog.Machine
}

func newReplica(db *store.DB) replica {
	sp := db.Space(Stream)
	st := NewState(sp)
	m := streamtest.Machine(Stream, sp, st.Apply)
	m.SetLoader(st.load)
	return replica{st: st, m: m}
}

// script writes RIDES entries with a clock it moves.
type script struct{ streamtest.Script }

func (sc *script) request(rider, id string) {
	fare := FareFor(gangnam.Meters(jamsil))
	sc.Add(kindRequest, rider, requestCmd{RideID: id, Pickup: gangnam, Dropoff: jamsil, DistanceMeters: 6600, Fare: fare,
		Hold: HoldFor(fare), Currency: Currency, HoldID: ledger.IDFrom("p/" + id), DC: "dc1"})
}

func (sc *script) offer(id, driver string) {
	sc.Add(kindOffer, "", offerCmd{RideID: id, Driver: driver, TimeoutMs: 15000, PickupMeters: 300, DC: "dc2"})
}

// answers is every query of the read model about the script's ids at at.
func (r replica) answers(t *testing.T, at time.Time) string {
	t.Helper()
	out := map[string]any{}
	for i := range 8 {
		id, rider, driver := "ride"+strconv.Itoa(i), "r"+strconv.Itoa(i), "d"+strconv.Itoa(i)
		ride, ok := r.st.Ride(id)
		out["ride/"+id] = []any{ride, ok}
		for _, u := range []string{rider, driver, "d0", "d1", "d2", "stranger"} {
			v, ok := r.st.RideFor(id, u)
			out["for/"+id+"/"+u] = []any{v, ok}
		}
		active, ok := r.st.ActiveRide(rider)
		out["active/"+rider] = []any{active, ok}
		out["driver/"+driver] = r.st.Driver(driver)
		out["offers/"+driver] = r.st.Offers(driver, at)
		rideID, riderOf, ok := r.st.DriversRider(driver)
		out["rider-of/"+driver] = []any{rideID, riderOf, ok}
	}
	r.st.mu.RLock()
	var open []string
	for id := range r.st.live {
		open = append(open, id)
	}
	var online []string
	for id, d := range r.st.online {
		online = append(online, id+"/"+d.Since.String()+"/"+d.Ride+"/"+d.Rider)
	}
	out["offers"] = r.st.offers // maps encode sorted
	out["lastAt"] = r.st.lastAt
	r.st.mu.RUnlock()
	slices.Sort(open)
	slices.Sort(online)
	out["live"], out["online"] = open, online
	b, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestRestart: a node restarted on its own store resumes at the next
// entry with the read model it had (rides on disk, the rides under way
// and the drivers online back in memory), answers every query as a node that applied the
// whole stream, and goes on applying in step with it.
func TestRestart(t *testing.T) {
	sc := &script{streamtest.Script{At: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}}
	for _, d := range []string{"d0", "d1", "d2", "d3", "d4"} {
		sc.Add(kindOnline, d, struct{}{})
	}
	// ride0: completed by d0.
	sc.request("r0", "ride0")
	sc.offer("ride0", "d0")
	sc.Add(kindAccept, "d0", rideCmd{RideID: "ride0"})
	sc.Add(kindHold, "", rideCmd{RideID: "ride0", HoldID: ledger.IDFrom("d/ride0")})
	sc.Add(kindArrive, "d0", rideCmd{RideID: "ride0"})
	sc.Add(kindStart, "d0", rideCmd{RideID: "ride0"})
	sc.Add(kindComplete, "d0", rideCmd{RideID: "ride0", Fare: 9000})
	// ride1: in progress with d1.
	sc.request("r1", "ride1")
	sc.offer("ride1", "d1")
	sc.Add(kindAccept, "d1", rideCmd{RideID: "ride1"})
	sc.Add(kindHold, "", rideCmd{RideID: "ride1", HoldID: ledger.IDFrom("d/ride1")})
	sc.Add(kindArrive, "d1", rideCmd{RideID: "ride1"})
	sc.Add(kindStart, "d1", rideCmd{RideID: "ride1"})
	// ride2: declined by d2, offered to d3 (live at the restart).
	sc.request("r2", "ride2")
	sc.offer("ride2", "d2")
	sc.Add(kindDecline, "d2", rideCmd{RideID: "ride2"})
	sc.At = sc.At.Add(time.Second)
	sc.offer("ride2", "d3")
	// ride3: cancelled by its rider while d4's offer stood; d4 goes offline.
	sc.request("r3", "ride3")
	sc.offer("ride3", "d4")
	sc.Add(kindCancel, "r3", rideCmd{RideID: "ride3"})
	sc.Add(kindOffline, "d4", struct{}{})
	// ride4: nobody took it; ride5: waiting, its offer to d2 let expire.
	sc.request("r4", "ride4")
	sc.request("r5", "ride5")
	sc.offer("ride5", "d2")
	sc.At = sc.At.Add(20 * time.Second)
	sc.Add(kindGiveUp, "", rideCmd{RideID: "ride4"})
	// A refused command and a command stamped by a slow clock.
	sc.Add(kindAccept, "d2", rideCmd{RideID: "ride5"})
	sc.At = sc.At.Add(-10 * time.Second)
	sc.request("r6", "ride6")
	sc.At = sc.At.Add(10 * time.Second)
	// d2, whose offer of ride5 expired, is offered ride6 and declines it:
	// ride5 still names d2, who holds no offer. d3 goes offline with
	// ride2's expired offer in hand.
	sc.offer("ride6", "d2")
	sc.Add(kindDecline, "d2", rideCmd{RideID: "ride6"})
	sc.Add(kindOffline, "d3", struct{}{})
	// Last, a refused command moves the clock.
	sc.At = sc.At.Add(2 * time.Second)
	sc.Add(kindAccept, "d2", rideCmd{RideID: "ride5"})
	first := sc.Entries

	// A node that restarts after any entry answers as before it stopped.
	db := storetest.Open(t)
	node := newReplica(db)
	streamtest.Restore(t, node.m, 0)
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	probes := []time.Time{t0.Add(6 * time.Second), t0.Add(time.Minute)} // offers live, and expired
	for i, e := range first {
		node.m.Apply(uint64(i+1), e, 0)
		again := newReplica(db)
		streamtest.Restore(t, again.m, uint64(i+1))
		for _, at := range probes {
			if got, want := again.answers(t, at), node.answers(t, at); got != want {
				t.Fatalf("restarted after entry %d:\n%s\nbefore:\n%s", i+1, got, want)
			}
		}
	}
	whole := newReplica(storetest.Open(t))
	streamtest.Apply(whole.m, 1, first)
	at := probes[0]
	before := node.answers(t, at)

	// The node restarts on its store.
	restarted := newReplica(db)
	streamtest.Restore(t, restarted.m, uint64(len(first)))
	if got := restarted.answers(t, at); got != before {
		t.Fatalf("after the restart:\n%s\nbefore:\n%s", got, before)
	}
	if got, want := restarted.answers(t, at), whole.answers(t, at); got != want {
		t.Fatalf("restarted:\n%s\nreplayed everything:\n%s", got, want)
	}
	streamtest.SameDigest(t, restarted.m, whole.m)
	if got, live := len(restarted.st.live), 4; got != live { // ride1, ride2, ride5, ride6
		t.Fatalf("rides under way in memory: %d, want %d", got, live)
	}
	if _, ok := restarted.st.offers["d2"]; ok || restarted.st.offers["d3"] != "ride2" {
		t.Fatalf("offers held: %v", restarted.st.offers)
	}
	if want := sc.At; !restarted.st.lastAt.Equal(want) {
		t.Fatalf("clock: %v, want %v", restarted.st.lastAt, want)
	}
	// The settlement is handed the rides not ended and those that ended
	// lately.
	unsettled := restarted.st.unsettled(time.Hour)
	slices.Sort(unsettled)
	if want := []string{"ride0", "ride1", "ride2", "ride3", "ride4", "ride5", "ride6"}; !slices.Equal(unsettled, want) {
		t.Fatalf("unsettled: %v, want %v", unsettled, want)
	}

	// Both go on: the restarted node decides as the other one does.
	sc.Entries = nil
	sc.Add(kindAccept, "d3", rideCmd{RideID: "ride2"}) // expired meanwhile: refused
	sc.offer("ride2", "d0")
	sc.Add(kindAccept, "d0", rideCmd{RideID: "ride2"})
	sc.Add(kindComplete, "d1", rideCmd{RideID: "ride1", Fare: 100})
	sc.Add(kindOffline, "d1", struct{}{})
	sc.Add(kindOnline, "d4", struct{}{})
	sc.offer("ride6", "d4")
	sc.At = sc.At.Add(-time.Minute) // a slow clock again: lastAt came back from the store
	sc.Add(kindAccept, "d4", rideCmd{RideID: "ride6"})
	sc.request("r1", "ride7")
	sc.Add(kindCancel, "r5", rideCmd{RideID: "ride5"})
	more := sc.Entries
	streamtest.Apply(restarted.m, uint64(len(first)+1), more)
	streamtest.Apply(whole.m, uint64(len(first)+1), more)
	streamtest.SameDigest(t, restarted.m, whole.m)
	if got, want := restarted.answers(t, sc.At), whole.answers(t, sc.At); got != want {
		t.Fatalf("restarted:\n%s\nreplayed everything:\n%s", got, want)
	}
	if r, _ := restarted.st.Ride("ride6"); r.Status != StatusAccepted || r.Driver != "d4" {
		t.Fatalf("ride6: %+v", r)
	}
	if r, _ := restarted.st.Ride("ride2"); r.Status != StatusAccepted || r.Driver != "d0" {
		t.Fatalf("ride2: %+v", r)
	}
	if _, ok := restarted.st.ActiveRide("r1"); !ok {
		t.Fatal("r1's new ride is not active")
	}
}

// TestOneEntry: the commands of one entry see what the earlier ones wrote,
// also what no longer lives in memory (an ended ride, an offline driver).
func TestOneEntry(t *testing.T) {
	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	fare := FareFor(gangnam.Meters(jamsil))
	env := (&streamtest.Script{At: at}).Command
	entry := func(es ...cmdlog.Envelope) []byte {
		b, _ := json.Marshal(es)
		return b
	}
	r := newReplica(storetest.Open(t))
	r.m.Apply(1, entry(
		env(kindOnline, "d1", struct{}{}),
		env(kindRequest, "r1", requestCmd{RideID: "ride1", Pickup: gangnam, Dropoff: jamsil, Fare: fare, Hold: HoldFor(fare), Currency: Currency,
			HoldID: ledger.IDFrom("p"), Offer: &offerCmd{Driver: "d1", TimeoutMs: 15000}}),
		env(kindAccept, "d1", rideCmd{RideID: "ride1"}),
		env(kindHold, "", rideCmd{RideID: "ride1", HoldID: ledger.IDFrom("d")}),
		env(kindArrive, "d1", rideCmd{RideID: "ride1"}),
		env(kindStart, "d1", rideCmd{RideID: "ride1"}),
		env(kindComplete, "d1", rideCmd{RideID: "ride1", Fare: fare}),
		env(kindCancel, "r1", rideCmd{RideID: "ride1"}), // completed: refused
		env(kindOffline, "d1", struct{}{}),
		env(kindOnline, "d1", struct{}{}),
		env(kindOffline, "d1", struct{}{}),
		env(kindRequest, "r1", requestCmd{RideID: "ride1", Pickup: gangnam, Dropoff: jamsil, Fare: fare, Hold: HoldFor(fare), Currency: Currency,
			HoldID: ledger.IDFrom("p")}), // exists: refused
	), 0)
	want := map[string]string{"e2": "", "e3": "", "e7": "", "e8": "conflict", "e9": "", "e10": "", "e11": "", "e12": "conflict"}
	for id, code := range want {
		o, ok := r.m.Outcome(id)
		got := ""
		if o.Err != nil {
			got = o.Err.Code
		}
		if !ok || got != code {
			t.Fatalf("%s: %+v, want %q", id, o, code)
		}
	}
	if ride, _ := r.st.Ride("ride1"); ride.Status != StatusCompleted {
		t.Fatalf("ride: %+v", ride)
	}
	if d := r.st.Driver("d1"); d.Online || d.RideID != "" {
		t.Fatalf("driver: %+v", d)
	}
}
