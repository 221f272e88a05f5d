package rides

import (
	"encoding/hex"
	"encoding/json"
	"testing"
	"time"

	"superapp/internal/ledger"
)

// TestCodec: what is stored reads back as it was written, every field,
// times with their zone.
func TestCodec(t *testing.T) {
	kst := time.FixedZone("KST", 9*3600)
	at := time.Date(2026, 3, 1, 9, 0, 0, 123456789, time.UTC)
	t1, t2, t3, t4 := at.Add(time.Minute), at.Add(2*time.Minute).In(kst), at.Add(3*time.Minute), at.Add(4*time.Minute)
	full := &Ride{ID: "ride", Rider: "r", Driver: "d", Status: StatusCancelled, Pickup: gangnam, Dropoff: Point{Lat: -33.5, Lng: 151.25},
		DistanceMeters: 6600, EstimatedFare: 9000, HoldAmount: 11700, Fare: 8000, CancelFee: 3000, Currency: Currency, HomeDC: "dc1",
		Dispatcher: "dc2", Offer: &Offer{Driver: "d2", OfferedAt: at, ExpiresAt: at.Add(15 * time.Second).In(kst), PickupMeters: 300},
		Attempts: 3, Tried: []string{"d3", "d4"}, RiderHold: ledger.IDFrom("p"), DriverHold: ledger.IDFrom("d"), RequestedAt: at,
		AcceptedAt: &t1, ArrivedAt: &t2, StartedAt: &t3, EndedAt: &t4, CancelledBy: ByRider, CancelReason: "changed my mind", IdleSince: t2}
	bare := &Ride{ID: "x", Status: StatusRequested, RequestedAt: at}
	for _, r := range []*Ride{full, bare} {
		for _, held := range []bool{true, false} {
			got, gotHeld, stamp, err := decodeRide(encodeRide(r, held, t2))
			if err != nil {
				t.Fatal(err)
			}
			want, _ := json.Marshal(r)
			have, _ := json.Marshal(got)
			if string(have) != string(want) || (gotHeld != (held && r.Offer != nil)) || !stamp.Equal(t2) || stamp.Format(time.RFC3339) != t2.Format(time.RFC3339) {
				t.Fatalf("ride:\n%s\n%s\nheld %v stamp %v", have, want, gotHeld, stamp)
			}
		}
	}
	d := &driverState{Online: true, Since: t2}
	if got, err := decodeDriver(encodeDriver(d)); err != nil || got.Online != d.Online || !got.Since.Equal(d.Since) || got.Since.Format(time.RFC3339) != d.Since.Format(time.RFC3339) {
		t.Fatalf("driver: %+v", got)
	}
	if got, err := decodeTime(encodeTime(time.Time{})); err != nil || !got.IsZero() {
		t.Fatalf("zero time: %v", got)
	}
	if _, _, _, err := decodeRide(encodeRide(full, true, t2)[:40]); err == nil {
		t.Fatal("a cut record decodes")
	}
}

// TestCodecFormat: records are stored byte for byte as they always were,
// so that a store on disk reads the same after any change to the code.
func TestCodecFormat(t *testing.T) {
	kst := time.FixedZone("KST", 9*3600)
	at := time.Date(2026, 3, 1, 9, 0, 0, 123456789, time.UTC)
	t1, t2 := at.Add(time.Minute), at.Add(2*time.Minute).In(kst)
	r := &Ride{ID: "ride", Rider: "r", Driver: "d", Status: StatusCancelled, Pickup: gangnam, Dropoff: Point{Lat: -33.5, Lng: 151.25},
		DistanceMeters: 6600, EstimatedFare: 9000, HoldAmount: 11700, Fare: 8000, CancelFee: 3000, Currency: Currency, HomeDC: "dc1",
		Dispatcher: "dc2", Offer: &Offer{Driver: "d2", OfferedAt: at, ExpiresAt: at.Add(15 * time.Second).In(kst), PickupMeters: 300},
		Attempts: 3, Tried: []string{"d3", "d4"}, RiderHold: ledger.IDFrom("p"), DriverHold: ledger.IDFrom("d"), RequestedAt: at,
		AcceptedAt: &t1, ArrivedAt: &t2, CancelledBy: ByRider, CancelReason: "changed my mind", IdleSince: t2}
	for _, c := range []struct{ what, got, want string }{
		{"ride", hex.EncodeToString(encodeRide(r, true, t2)), "010472696465017201640963616e63656c6c6564d656ec2fbbbf4240a857ca32c4c15f400000000000c040c00000000000e862409067a846b45bc03eb817034b52570364633103646332010102643201a080a09a0d959aef3a0001be80a09a0d959aef3aa0fa03d8040602026433026434148de9c5a7a44d19e56cd9ae1a554bf618ac3e7343f016890c510e93f935261101a080a09a0d959aef3a0001019881a09a0d959aef3a0001019082a09a0d959aef3aa0fa0300000572696465720f6368616e676564206d79206d696e64019082a09a0d959aef3aa0fa03019082a09a0d959aef3aa0fa03"},
		{"bare ride", hex.EncodeToString(encodeRide(&Ride{ID: "x"}, false, time.Time{})), "010178000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"},
		{"driver", hex.EncodeToString(encodeDriver(&driverState{Online: true, Since: t2})), "0101019082a09a0d959aef3aa0fa03"},
		{"time", hex.EncodeToString(encodeTime(at)), "0101a080a09a0d959aef3a00"},
		{"zero time", hex.EncodeToString(encodeTime(time.Time{})), "0100"},
	} {
		if c.got != c.want {
			t.Errorf("%s stored as\n%s\nwant\n%s", c.what, c.got, c.want)
		}
	}
}
