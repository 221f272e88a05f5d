package miniapp

import (
	"strconv"
	"testing"
	"time"

	"superapp/internal/store/storetest"
	"superapp/internal/store/storetest/streamtest"
)

// BenchmarkApplyPayRequest measures what every node does for one pay
// request approved with a webhook: four stream entries (create, approve,
// the delivery's lease and its attempt), each applied through a Machine
// on a real store.
func BenchmarkApplyPayRequest(b *testing.B) {
	sp := storetest.OpenDefault(b).Space(Stream)
	st := NewState(sp)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f := &streamtest.Feeder{Script: streamtest.Script{At: t0}, M: streamtest.Machine(Stream, sp, st.Apply)}
	apply := f.Apply
	i := 0
	for b.Loop() {
		user, client := "u"+strconv.Itoa(i%1000), "app"+strconv.Itoa(i%10)
		r := PayRequest{ID: RequestID(client, strconv.Itoa(i)), ClientKey: strconv.Itoa(i), ClientID: client, UserID: user, Amount: 100,
			Currency: "KRW", Description: "coffee", Capture: CaptureImmediate, ExpiresAt: t0.Add(time.Hour)}
		i++
		apply(kindCreate, client, createCmd{Request: r})
		apply(kindApprove, user, decideCmd{ID: r.ID, PaymentID: "p" + r.ID, Webhook: true})
		d := DeliveryID(r.ID + "/" + EventPayApproved)
		apply(kindLease, "", leaseCmd{DeliveryID: d, Owner: "n1", DC: "dc1", Until: t0.Add(time.Minute)})
		apply(kindAttempt, "", attemptCmd{DeliveryID: d, Owner: "n1", Attempt: Attempt{At: t0, DC: "dc1", StatusCode: 200}, Delivered: true})
	}
	if d, ok := st.Delivery(DeliveryID(RequestID("app0", "0") + "/" + EventPayApproved)); !ok || d.Status != DeliveryDelivered {
		b.Fatalf("delivery: %+v", d)
	}
}
