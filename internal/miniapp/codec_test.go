package miniapp

import (
	"encoding/hex"
	"encoding/json"
	"testing"
	"time"
)

// TestCodec: what is stored reads back as it was written, every field,
// times with their zone.
func TestCodec(t *testing.T) {
	same := func(what string, got, want any) {
		t.Helper()
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		if string(g) != string(w) {
			t.Fatalf("%s:\n%s\n%s", what, g, w)
		}
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 5, time.UTC)
	t1 := t0.Add(time.Minute).In(time.FixedZone("KST", 9*3600))
	full := &reqRec{PayRequest: PayRequest{ID: "pr", ClientKey: "k", ClientID: "app", UserID: "u", Amount: 100, Currency: "KRW",
		Description: "coffee ☕", Capture: CaptureHold, Status: StatusCaptured, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour), DecidedAt: &t1,
		PaymentID: "p", HoldID: "h", Captured: 60}, Cursor: 1 << 40}
	for _, r := range []*reqRec{full, {}} {
		got, err := decodeRequest(encodeRequest(r))
		if err != nil {
			t.Fatal(err)
		}
		same("request", got, r)
		if got.Cursor != r.Cursor {
			t.Fatalf("cursor %d, want %d", got.Cursor, r.Cursor)
		}
	}
	d := &Delivery{ID: "dlv", ClientID: "app", Event: EventPayApproved, Data: json.RawMessage(`{"a":1}`), CreatedAt: t0, Status: DeliveryPending,
		Attempts: []Attempt{{At: t0, DC: "dc1", StatusCode: 500, Error: "boom", DurationMS: 12}, {At: t1, DC: "dc2"}}, NextAttemptAt: &t1,
		LeasedBy: "dc2", LeaseUntil: &t0, leaseOwner: "dc2/abc"}
	for _, x := range []*Delivery{d, {ID: "bare", Data: json.RawMessage(`{}`), Attempts: []Attempt{}}} {
		got, err := decodeDelivery(encodeDelivery(x))
		if err != nil {
			t.Fatal(err)
		}
		same("delivery", got, x)
		if got.leaseOwner != x.leaseOwner {
			t.Fatalf("lease owner %q, want %q", got.leaseOwner, x.leaseOwner)
		}
	}
	if _, err := decodeDelivery(encodeDelivery(d)[:20]); err == nil {
		t.Fatal("a cut record decodes")
	}
}

// TestCodecFormat: records are stored byte for byte as they always were,
// so that a store on disk reads the same after any change to the code.
func TestCodecFormat(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 5, time.UTC)
	t1 := t0.Add(time.Minute).In(time.FixedZone("KST", 9*3600))
	r := &reqRec{PayRequest: PayRequest{ID: "pr", ClientKey: "k", ClientID: "app", UserID: "u", Amount: 100, Currency: "KRW",
		Description: "coffee ☕", Capture: CaptureHold, Status: StatusCaptured, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour), DecidedAt: &t1,
		PaymentID: "p", HoldID: "h", Captured: 60}, Cursor: 1 << 40}
	d := &Delivery{ID: "dlv", ClientID: "app", Event: EventPayApproved, Data: json.RawMessage(`{"a":1}`), CreatedAt: t0, Status: DeliveryPending,
		Attempts: []Attempt{{At: t0, DC: "dc1", StatusCode: 500, Error: "boom", DurationMS: 12}}, NextAttemptAt: &t1,
		LeasedBy: "dc2", LeaseUntil: &t0, leaseOwner: "dc2/abc"}
	for _, c := range []struct{ what, got, want string }{
		{"request", hex.EncodeToString(encodeRequest(r)), "01027072016b03617070017564034b52570a636f6666656520e2989504686f6c640863617074757265640180e4ad950d050001a09cae950d05000101f8e4ad950d05a0fa03017001683c808080808020"},
		{"bare request", hex.EncodeToString(encodeRequest(&reqRec{})), "0100000000000000000000000000000000"},
		{"delivery", hex.EncodeToString(encodeDelivery(d)), "0103646c7603617070147061795f726571756573742e617070726f766564077b2261223a317d0180e4ad950d05000770656e64696e67010180e4ad950d050003646331e80704626f6f6d180101f8e4ad950d05a0fa0303646332010180e4ad950d0500076463322f616263"},
		{"bare delivery", hex.EncodeToString(encodeDelivery(&Delivery{ID: "bare"})), "01046261726500000000000000000000"},
	} {
		if c.got != c.want {
			t.Errorf("%s stored as\n%s\nwant\n%s", c.what, c.got, c.want)
		}
	}
}
