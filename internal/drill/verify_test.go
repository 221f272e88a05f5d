package drill

import (
	"context"
	"net/http"
	"testing"

	"superapp/internal/node/nodetest"
)

// The checks must be able to fail: an acknowledgement the platform does
// not hold is reported lost.
func TestVerifyFindsLostWrites(t *testing.T) {
	n := nodetest.Start(t, nil)
	rec := newRecorder()
	hc := &http.Client{Transport: &transport{rec: rec, next: http.DefaultTransport}}
	users := []*user{newUser(0, []string{nodetest.URL(n)}, hc, t.Name()), newUser(1, []string{nodetest.URL(n)}, hc, t.Name())}
	ctx := context.Background()
	if err := setup(ctx, users); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 6; i++ {
		users[0].do(ctx, rec, users[0].next(users))
	}
	for _, check := range []func(context.Context, []*user) (verdict, error){verifyChat, verifyPay, verifyIdentity} {
		if v, err := check(ctx, users); err != nil || v.Lost != 0 || v.Duplicated != 0 || len(v.Problems) != 0 {
			t.Fatalf("clean run: %+v %v", v, err)
		}
	}
	users[1].chatAck = append(users[1].chatAck, "u1-never-sent")
	users[1].payAck["u1-never-paid"] = payRec{To: 0, Amount: 5}
	users[1].sessions = append(users[1].sessions, "no-such-session")
	for name, check := range map[string]func(context.Context, []*user) (verdict, error){"chat": verifyChat, "pay": verifyPay, "identity": verifyIdentity} {
		if v, err := check(ctx, users); err != nil || v.Lost != 1 {
			t.Fatalf("%s: a made-up acknowledgement is not reported lost: %+v %v", name, v, err)
		}
	}
	if rec.feats["chat"].requests == 0 {
		t.Fatal("attempts not recorded")
	}
}
