package miniapp

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"superapp/internal/cmdlog"
	"superapp/internal/store"
	"superapp/internal/store/storetest"
	"superapp/internal/store/storetest/streamtest"
)

// replica is one node's mini-app read model on its own store.
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

var restartT0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// request is a pay request; with no ttl, the default expiry applies.
func request(client, key, user string, amount uint64, capture string, ttl time.Duration) PayRequest {
	r := PayRequest{ID: RequestID(client, key), ClientKey: key, ClientID: client, UserID: user, Amount: amount, Currency: "KRW",
		Description: "order " + key, Capture: capture}
	if ttl > 0 {
		r.ExpiresAt = restartT0.Add(ttl)
	}
	return r
}

// answers is every query of the read model at now.
func (r replica) answers(t *testing.T, now time.Time) string {
	t.Helper()
	out := map[string]any{}
	for _, u := range []string{"alice", "bob", "carol"} {
		out["pending/"+u] = r.st.PendingOf(u, now)
	}
	for _, c := range []string{"app", "shop", "game"} {
		out["deliveries/"+c] = r.st.Deliveries(c, 100)
		out["deliveries1/"+c] = r.st.Deliveries(c, 1)
		out["secret/"+c] = r.st.SecretVersion(c)
		for _, d := range r.st.Deliveries(c, 100) {
			got, ok := r.st.Delivery(d.ID)
			out["delivery/"+d.ID] = []any{got, ok, got.leaseOwner}
		}
	}
	for _, k := range []string{"k1", "k2", "k3", "k4", "k5"} {
		for _, c := range []string{"app", "shop"} {
			p, ok := r.st.PayRequest(RequestID(c, k))
			out["request/"+c+"/"+k] = []any{p, ok}
		}
	}
	out["due"] = r.st.due(now, 100)
	for _, g := range []string{"g1", "g2"} {
		out["revoked/"+g] = r.st.revokeAnnounced(g)
	}
	r.st.mu.RLock()
	var pending []string
	for id, d := range r.st.pending {
		pending = append(pending, id+"/"+d.leaseOwner)
	}
	r.st.mu.RUnlock()
	slices.Sort(pending)
	out["pending-in-memory"] = pending
	b, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestRestart: a node restarted on its own store resumes at the next
// entry with the pending deliveries back in memory, answers every query
// as a node that applied the whole stream, and goes on in step with it.
func TestRestart(t *testing.T) {
	sc := &streamtest.Script{At: restartT0}
	r1 := request("app", "k1", "alice", 100, CaptureHold, time.Hour)
	r2 := request("app", "k2", "alice", 200, CaptureImmediate, time.Hour)
	r3 := request("shop", "k3", "bob", 300, CaptureImmediate, time.Minute)
	r4 := request("shop", "k4", "alice", 400, CaptureImmediate, 0) // the default expiry
	r5 := request("app", "k5", "carol", 500, CaptureHold, time.Hour)
	for _, r := range []PayRequest{r1, r2, r3, r4, r5} {
		sc.Add(kindCreate, r.ClientID, createCmd{Request: r})
	}
	sc.Add(kindCreate, "app", createCmd{Request: r1}) // again: the first stands
	sc.At = sc.At.Add(time.Second)
	sc.Add(kindApprove, "alice", decideCmd{ID: r1.ID, HoldID: "h1", Webhook: true})
	sc.Add(kindDecline, "alice", decideCmd{ID: r2.ID, Webhook: true})
	sc.Add(kindApprove, "bob", decideCmd{ID: r4.ID}) // not bob's
	sc.Add(kindResolve, "app", decideCmd{ID: r1.ID, Status: StatusCaptured, Captured: 60, Webhook: true})
	sc.Add(kindApprove, "carol", decideCmd{ID: r5.ID, HoldID: "h5", Webhook: false})
	sc.Add(kindRevoked, "", revokedCmd{GrantID: "g1", ClientID: "shop", UserID: "bob", Reason: "user"})
	sc.Add(kindRevoked, "", revokedCmd{GrantID: "g1", ClientID: "shop", UserID: "bob", Reason: "user"})
	sc.Add(kindRotate, "app", rotateCmd{ClientID: "app", Version: 2})
	sc.Add(kindRotate, "app", rotateCmd{ClientID: "app", Version: 2}) // stale: refused
	// The approval's delivery is attempted: n1 leases it and fails, n2
	// delivers it after; the decline's is leased by n1, which dies.
	approved, declined := DeliveryID(r1.ID+"/"+EventPayApproved), DeliveryID(r2.ID+"/"+EventPayDeclined)
	sc.Add(kindLease, "", leaseCmd{DeliveryID: approved, Owner: "n1", DC: "dc1", Until: sc.At.Add(20 * time.Second)})
	next := sc.At.Add(5 * time.Second)
	sc.Add(kindAttempt, "", attemptCmd{DeliveryID: approved, Owner: "n1", Attempt: Attempt{At: sc.At, DC: "dc1", StatusCode: 500, DurationMS: 12}, NextAt: &next})
	sc.Add(kindLease, "", leaseCmd{DeliveryID: declined, Owner: "n1", DC: "dc1", Until: sc.At.Add(20 * time.Second)})
	sc.At = sc.At.Add(10 * time.Second)
	sc.Add(kindLease, "", leaseCmd{DeliveryID: approved, Owner: "n2", DC: "dc2", Until: sc.At.Add(20 * time.Second)})
	sc.Add(kindAttempt, "", attemptCmd{DeliveryID: approved, Owner: "n2", Attempt: Attempt{At: sc.At, DC: "dc2", StatusCode: 200}, Delivered: true})
	sc.Add(kindLease, "", leaseCmd{DeliveryID: declined, Owner: "n2", DC: "dc2", Until: sc.At.Add(20 * time.Second)}) // n1's lease lives
	first := sc.Entries

	probes := []time.Time{restartT0.Add(30 * time.Second), restartT0.Add(2 * time.Hour)}
	db := storetest.Open(t)
	node := newReplica(db)
	streamtest.Restore(t, node.m, 0)
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
	restarted := newReplica(db)
	streamtest.Restore(t, restarted.m, uint64(len(first)))
	for _, at := range probes {
		if got, want := restarted.answers(t, at), whole.answers(t, at); got != want {
			t.Fatalf("restarted:\n%s\nreplayed everything:\n%s", got, want)
		}
	}
	streamtest.SameDigest(t, restarted.m, whole.m)
	if n := len(restarted.st.pending); n != 3 { // declined, captured, revoked
		t.Fatalf("pending deliveries in memory: %d", n)
	}
	if ps := restarted.st.PendingOf("alice", probes[0]); len(ps) != 1 || ps[0].ID != r4.ID {
		t.Fatalf("alice's pending requests: %+v", ps)
	}

	// Both go on: the restarted node decides as the other one does.
	sc.Entries = nil
	sc.At = sc.At.Add(30 * time.Second)
	sc.Add(kindLease, "", leaseCmd{DeliveryID: declined, Owner: "n2", DC: "dc2", Until: sc.At.Add(20 * time.Second)}) // n1's expired
	sc.Add(kindAttempt, "", attemptCmd{DeliveryID: declined, Owner: "n2", Attempt: Attempt{At: sc.At, DC: "dc2", Error: "timeout"}})
	sc.Add(kindAttempt, "", attemptCmd{DeliveryID: approved, Owner: "n1", Attempt: Attempt{At: sc.At, DC: "dc1", Error: "late"}, NextAt: &next})
	sc.Add(kindDecline, "alice", decideCmd{ID: r4.ID, Webhook: true})
	sc.Add(kindRevoked, "", revokedCmd{GrantID: "g2", ClientID: "game", UserID: "carol"})
	sc.Add(kindRotate, "app", rotateCmd{ClientID: "app", Version: 3})
	sc.Add(kindResolve, "app", decideCmd{ID: r5.ID, Status: StatusReleased, Webhook: true})
	more := sc.Entries
	streamtest.Apply(restarted.m, uint64(len(first)+1), more)
	streamtest.Apply(whole.m, uint64(len(first)+1), more)
	streamtest.SameDigest(t, restarted.m, whole.m)
	for _, at := range append(probes, sc.At) {
		if got, want := restarted.answers(t, at), whole.answers(t, at); got != want {
			t.Fatalf("restarted:\n%s\nreplayed everything:\n%s", got, want)
		}
	}
	if d, _ := restarted.st.Delivery(declined); d.Status != DeliveryFailed || len(d.Attempts) != 1 {
		t.Fatalf("declined's delivery: %+v", d)
	}
	if v := restarted.st.SecretVersion("app"); v != 3 {
		t.Fatalf("secret version %d", v)
	}
}

// TestOneEntry: the commands of one entry see what the earlier ones wrote.
func TestOneEntry(t *testing.T) {
	env := (&streamtest.Script{At: restartT0}).Command
	r1 := request("app", "k1", "alice", 100, CaptureHold, time.Hour)
	dlv := DeliveryID(r1.ID + "/" + EventPayCaptured)
	entry, _ := json.Marshal([]cmdlog.Envelope{
		env(kindCreate, "app", createCmd{Request: r1}),
		env(kindApprove, "alice", decideCmd{ID: r1.ID, HoldID: "h"}),
		env(kindDecline, "alice", decideCmd{ID: r1.ID}), // approved: refused
		env(kindResolve, "app", decideCmd{ID: r1.ID, Status: StatusCaptured, Captured: 100, Webhook: true}),
		env(kindLease, "", leaseCmd{DeliveryID: dlv, Owner: "n1", DC: "dc1", Until: restartT0.Add(time.Minute)}),
		env(kindAttempt, "", attemptCmd{DeliveryID: dlv, Owner: "n1", Attempt: Attempt{DC: "dc1", StatusCode: 200}, Delivered: true}),
		env(kindLease, "", leaseCmd{DeliveryID: dlv, Owner: "n2", DC: "dc2", Until: restartT0.Add(time.Minute)}), // delivered: refused
		env(kindRevoked, "", revokedCmd{GrantID: "g", ClientID: "app"}),
		env(kindRevoked, "", revokedCmd{GrantID: "g", ClientID: "app"}),
		env(kindRotate, "app", rotateCmd{ClientID: "app", Version: 2}),
		env(kindRotate, "app", rotateCmd{ClientID: "app", Version: 3}),
		env(kindRotate, "app", rotateCmd{ClientID: "app", Version: 3}), // stale: refused
	})
	r := newReplica(storetest.Open(t))
	r.m.Apply(1, entry, 0)
	want := map[string]string{"e2": "", "e3": "conflict", "e4": "", "e6": "", "e7": "conflict", "e11": "", "e12": "conflict"}
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
	if ds := r.st.Deliveries("app", 10); len(ds) != 2 || ds[1].Status != DeliveryDelivered {
		t.Fatalf("deliveries: %+v", ds)
	}
	if p, _ := r.st.PayRequest(r1.ID); p.Status != StatusCaptured {
		t.Fatalf("request: %+v", p)
	}
}
