package miniapp

import (
	"encoding/json"
	"io"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"superapp/internal/cmdlog"
	"superapp/internal/store"
)

// BenchmarkApplyPayRequest measures what every node does for one pay
// request approved with a webhook: four stream entries (create, approve,
// the delivery's lease and its attempt), each applied through a Machine
// on a real store.
func BenchmarkApplyPayRequest(b *testing.B) {
	st := newBenchState(b)
	m := cmdlog.NewMachine(Stream, st.space, st.Apply, slog.New(slog.NewTextHandler(io.Discard, nil)))
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	seq := uint64(0)
	apply := func(kind, actor string, data any) {
		raw, _ := json.Marshal(data)
		seq++
		e, _ := json.Marshal(cmdlog.Envelope{ID: "c" + strconv.FormatUint(seq, 10), Kind: kind, Actor: actor, At: t0, Data: raw})
		m.Apply(seq, e, 0)
	}
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
