package drill

import (
	"context"
	"net/http"
	"testing"
	"time"

	"superapp/client"
	"superapp/internal/node"
	"superapp/internal/node/nodetest"
)

// The checks must be able to fail: an acknowledgement the platform does
// not hold is reported lost, for every feature; a webhook the mini-app's
// backend never received is lost, one received under two ids duplicated.
func TestVerifyFindsLostWrites(t *testing.T) {
	n := nodetest.StartConfig(t, node.Config{WebhookLoopback: true})
	rec := newRecorder()
	hc := &http.Client{Transport: &transport{rec: rec, next: http.DefaultTransport}}
	hk, err := newHooks()
	if err != nil {
		t.Fatal(err)
	}
	defer hk.close()
	w := newWorld(2, []string{nodetest.URL(n)}, hc, "verify", hk)
	w.patience = 5 * time.Second
	ctx := context.Background()
	if err := setup(ctx, w); err != nil {
		t.Fatal(err)
	}
	u := w.users[0]
	for i := 0; i < 6; i++ {
		u.do(ctx, rec, u.next())
	}
	// One of each: a ride driven to its end, an order delivered, a login
	// with superapp, a mini-app paid; the workers serve them.
	serve := func(what string, done func() bool) {
		t.Helper()
		for deadline := time.Now().Add(time.Minute); !done(); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not done after a minute", what)
			}
			for _, wk := range w.workers() {
				wk.do(ctx, rec, wk.next())
			}
		}
	}
	u.do(ctx, rec, u.rideOp())
	serve("ride", func() bool {
		u.do(ctx, rec, u.settleOp())
		return len(u.rides.ack) == 1 && u.rides.active == ""
	})
	u.do(ctx, rec, u.foodOp())
	serve("order", func() bool {
		u.do(ctx, rec, u.settleOp())
		return len(u.food.ack) == 1 && u.food.active == ""
	})
	for id := range u.rides.ack {
		if r, err := u.c.Ride(ctx, id); err != nil || r.Status != "completed" {
			t.Fatalf("ride %s: %+v %v", id, r, err)
		}
	}
	for id := range u.food.ack {
		if o, err := u.c.Order(ctx, id); err != nil || o.Status != "delivered" {
			t.Fatalf("order %s: %+v %v", id, o, err)
		}
	}
	u.do(ctx, rec, u.loginOp())
	u.do(ctx, rec, u.miniappOp()) // the mini-app asks
	u.do(ctx, rec, u.next())      // the person approves
	if len(u.oidc.ack) != 1 || len(u.mini.ack) != 1 || u.retry != nil {
		t.Fatalf("login %v, pay requests %v, unacknowledged %v", u.oidc.ack, u.mini.ack, u.retry != nil)
	}
	for _, f := range Features {
		if v, err := checks[f](ctx, w); err != nil || v.Lost != 0 || v.Duplicated != 0 || len(v.Problems) != 0 {
			t.Fatalf("%s, clean run: %+v %v", f, v, err)
		}
	}

	var prid string
	for id := range u.mini.ack {
		prid = id
	}
	delivered := hk.received(prid, "pay_request.approved")
	if len(delivered) != 1 {
		t.Fatalf("webhook of %s received as %v", prid, delivered)
	}
	// The same event under a second delivery id is a duplicate.
	hk.mu.Lock()
	hk.byEvent[prid+"/pay_request.approved"]["dlv_second"] = true
	hk.mu.Unlock()
	if v, err := verifyMiniapp(ctx, w); err != nil || v.Duplicated != 1 || v.Lost != 0 {
		t.Fatalf("a webhook received under two ids is not reported duplicated: %+v %v", v, err)
	}

	other := w.users[1]
	other.chatAck = append(other.chatAck, "u1-never-sent")
	other.payAck["u1-never-paid"] = payRec{To: 0, Amount: 5}
	other.sessions = append(other.sessions, "no-such-session")
	other.rides.ack["no-such-ride"] = "u1-ride-never"
	other.food.ack["no-such-order"] = "u1-order-never"
	other.oidc.apps = append(other.oidc.apps, &app{creds: client.App{ClientID: "no-such-app"}, grants: 1, token: "no-such-token"})
	// A webhook the backend never received.
	hk.mu.Lock()
	delete(hk.byEvent, prid+"/pay_request.approved")
	hk.mu.Unlock()
	for _, f := range Features {
		if v, err := checks[f](ctx, w); err != nil || v.Lost != 1 {
			t.Fatalf("%s: a made-up acknowledgement is not reported lost: %+v %v", f, v, err)
		}
	}
	if rec.feats["chat"].requests == 0 || rec.feats["rides"].requests == 0 || rec.feats["miniapp"].acked == 0 {
		t.Fatal("attempts not recorded")
	}
}
