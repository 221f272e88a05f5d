package miniapp

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"testing"
	"time"

	"superapp/internal/apperr"
	"superapp/internal/cmdlog"
	"superapp/internal/store/storetest"
)

// applyCmd applies one command at at, as an entry of its own the way a
// machine does, and returns its outcome.
func applyCmd(t *testing.T, s *State, seq uint64, at time.Time, kind, actor string, cmd any) (any, *apperr.Error) {
	t.Helper()
	raw, _ := json.Marshal(cmd)
	tx := s.space.Begin()
	defer func() {
		tx.Commit()
		tx.RunAfterCommit()
	}()
	return s.Apply(seq, &cmdlog.Envelope{ID: cmdlog.NewID(), Kind: kind, Actor: actor, At: at, Data: raw, Cursor: cmdlog.CursorOf(seq, 0)})
}

func TestPayRequestDecisions(t *testing.T) {
	s := NewState(storetest.Space(t, Stream))
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := PayRequest{ID: RequestID("app", "k1"), ClientID: "app", UserID: "alice", Amount: 100, Currency: "KRW", Capture: CaptureHold, ExpiresAt: t0.Add(time.Hour)}
	if _, err := applyCmd(t, s, 1, t0, kindCreate, "app", createCmd{Request: r}); err != nil {
		t.Fatal(err)
	}
	// Another user may not decide it; the mini-app may not capture a
	// pending one.
	if _, err := applyCmd(t, s, 2, t0, kindApprove, "bob", decideCmd{ID: r.ID}); err == nil || err.Code != apperr.NotFound {
		t.Fatalf("bob approves: %v", err)
	}
	if _, err := applyCmd(t, s, 3, t0, kindResolve, "app", decideCmd{ID: r.ID, Status: StatusCaptured}); err == nil || err.Code != apperr.Conflict {
		t.Fatalf("capture pending: %v", err)
	}
	if _, err := applyCmd(t, s, 4, t0, kindApprove, "alice", decideCmd{ID: r.ID, HoldID: "h1", Webhook: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := applyCmd(t, s, 5, t0, kindDecline, "alice", decideCmd{ID: r.ID}); err == nil || err.Code != apperr.Conflict {
		t.Fatalf("decline after approve: %v", err)
	}
	if _, err := applyCmd(t, s, 6, t0, kindResolve, "other-app", decideCmd{ID: r.ID, Status: StatusCaptured}); err == nil || err.Code != apperr.NotFound {
		t.Fatalf("another app captures: %v", err)
	}
	if _, err := applyCmd(t, s, 7, t0, kindResolve, "app", decideCmd{ID: r.ID, Status: StatusCaptured, Captured: 60, Webhook: true}); err != nil {
		t.Fatal(err)
	}
	got, _ := s.PayRequest(r.ID)
	if got.Status != StatusCaptured || got.Captured != 60 || len(s.Deliveries("app", 10)) != 2 {
		t.Fatalf("request %+v, deliveries %d", got, len(s.Deliveries("app", 10)))
	}
}

func TestDeliveryLease(t *testing.T) {
	s := NewState(storetest.Space(t, Stream))
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := applyCmd(t, s, 1, t0, kindRevoked, "", revokedCmd{GrantID: "g1", ClientID: "app", UserID: "alice"}); err != nil {
		t.Fatal(err)
	}
	// Announced twice (two nodes): one delivery.
	_, _ = applyCmd(t, s, 2, t0, kindRevoked, "", revokedCmd{GrantID: "g1", ClientID: "app", UserID: "alice"})
	ds := s.due(t0, 10)
	if len(ds) != 1 {
		t.Fatalf("due: %d", len(ds))
	}
	id := ds[0].ID
	if _, err := applyCmd(t, s, 3, t0, kindLease, "", leaseCmd{DeliveryID: id, Owner: "n1", DC: "dc1", Until: t0.Add(30 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	// While n1's lease lives, nobody else attempts it.
	if _, err := applyCmd(t, s, 4, t0.Add(10*time.Second), kindLease, "", leaseCmd{DeliveryID: id, Owner: "n2", DC: "dc2", Until: t0.Add(40 * time.Second)}); err == nil {
		t.Fatal("second lease granted while the first lives")
	}
	if len(s.due(t0.Add(10*time.Second), 10)) != 0 {
		t.Fatal("a leased delivery is due")
	}
	// n1 died: after its lease, n2 takes over and delivers.
	if _, err := applyCmd(t, s, 5, t0.Add(31*time.Second), kindLease, "", leaseCmd{DeliveryID: id, Owner: "n2", DC: "dc2", Until: t0.Add(61 * time.Second)}); err != nil {
		t.Fatalf("takeover: %v", err)
	}
	if _, err := applyCmd(t, s, 6, t0.Add(32*time.Second), kindAttempt, "", attemptCmd{DeliveryID: id, Owner: "n2", Attempt: Attempt{DC: "dc2", StatusCode: 200}, Delivered: true}); err != nil {
		t.Fatal(err)
	}
	// n1's late outcome (it was not dead after all) keeps the delivery delivered.
	next := t0.Add(time.Minute)
	_, _ = applyCmd(t, s, 7, t0.Add(33*time.Second), kindAttempt, "", attemptCmd{DeliveryID: id, Owner: "n1", Attempt: Attempt{DC: "dc1", Error: "timeout"}, NextAt: &next})
	d, _ := s.Delivery(id)
	if d.Status != DeliveryDelivered || len(d.Attempts) != 2 || len(s.due(t0.Add(time.Hour), 10)) != 0 {
		t.Fatalf("delivery %+v", d)
	}
}

func TestBackoff(t *testing.T) {
	r := Retry{Base: time.Second, Max: time.Minute}.WithDefaults()
	for n, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 4: 8 * time.Second, 10: time.Minute} {
		for range 20 {
			got := r.Backoff(n)
			if got < want*8/10 || got > want*12/10 {
				t.Fatalf("backoff(%d) = %v, want %v ±20%%", n, got, want)
			}
		}
	}
	total := time.Duration(0)
	for n := 1; n < DefaultRetry.Attempts; n++ {
		total += DefaultRetry.Backoff(n)
	}
	if total < 40*time.Minute || total > 90*time.Minute {
		t.Fatalf("default schedule retries for %v, want about an hour", total)
	}
}

func TestSign(t *testing.T) {
	// The receiver's check: HMAC-SHA256 over "timestamp.body".
	m := hmac.New(sha256.New, []byte("s"))
	m.Write([]byte("1.{}"))
	if got, want := Sign("s", "1", []byte("{}")), "v1="+hex.EncodeToString(m.Sum(nil)); got != want {
		t.Fatalf("signature %q, want %q", got, want)
	}
	if Sign("s", "1", []byte("{}")) == Sign("s", "2", []byte("{}")) {
		t.Fatal("the timestamp is not signed")
	}
}

// TestRevocationsChecked: the log keeps how far the revocations were
// checked, and never moves it back (nodes may report out of order).
func TestRevocationsChecked(t *testing.T) {
	s := NewState(storetest.Space(t, Stream))
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if n := s.revocationsChecked(s.space); n != 0 {
		t.Fatalf("fresh state checked %d", n)
	}
	for i, upTo := range []int{5, 3, 7} {
		if _, err := applyCmd(t, s, uint64(i+1), t0, kindChecked, "", checkedCmd{UpTo: upTo}); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.revocationsChecked(s.space); n != 7 {
		t.Fatalf("checked %d, want 7", n)
	}
	if _, err := applyCmd(t, s, 4, t0, kindChecked, "", checkedCmd{UpTo: -1}); err == nil {
		t.Fatal("a negative count was accepted")
	}
}
