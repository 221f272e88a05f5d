package httpapi_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"superapp/internal/node"
	"superapp/internal/node/nodetest"
	"superapp/internal/pay"
)

// lossyBank moves the money, then loses the answer once per reference
// marked: the platform cannot tell whether the bank acted.
type lossyBank struct {
	*pay.SimulatedBank
	mu    sync.Mutex
	lose  map[string]bool // "collect" / "payout": lose the next answer
	calls map[string]int
}

func (b *lossyBank) lost(kind, ref string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls[kind+"/"+ref]++
	if b.lose[kind] {
		b.lose[kind] = false
		return true
	}
	return false
}

func (b *lossyBank) Collect(ctx context.Context, user string, amount uint64, currency, ref string) error {
	err := b.SimulatedBank.Collect(ctx, user, amount, currency, ref)
	if err == nil && b.lost("collect", ref) {
		return errors.New("connection reset")
	}
	return err
}

func (b *lossyBank) Payout(ctx context.Context, user string, amount uint64, currency, ref string) error {
	err := b.SimulatedBank.Payout(ctx, user, amount, currency, ref)
	if err == nil && b.lost("payout", ref) {
		return errors.New("connection reset")
	}
	return err
}

// TestBankReconcile: the bank acts but its answer is lost, and the client
// never comes back. The reconciler finishes the job: the top-up is
// credited once, the withdrawal posted once, the bank moved money once.
func TestBankReconcile(t *testing.T) {
	clock := nodetest.NewClock()
	bank := &lossyBank{SimulatedBank: pay.NewSimulatedBank(1_000_000), lose: map[string]bool{}, calls: map[string]int{}}
	n := nodetest.StartConfig(t, node.Config{Now: clock.Now, BankRail: bank})
	e := &env{t: t, url: nodetest.URL(n), clock: clock}
	u, _ := e.user("Unlucky")
	raw := func(path, body string) (int, string) {
		req, _ := http.NewRequest("POST", e.url+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+u.AccessToken())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	waitBalance := func(want uint64) {
		t.Helper()
		for deadline := time.Now().Add(15 * time.Second); ; {
			if got := balance(t, u, "KRW"); got == want {
				return
			} else if time.Now().After(deadline) {
				t.Fatalf("balance %d, want %d", got, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	bank.lose["collect"] = true
	if status, body := raw("/v1/wallet/topups", `{"id":"t1","amount":50000,"currency":"KRW"}`); status != 502 || !strings.Contains(body, "bank_unavailable") {
		t.Fatalf("top-up with a lost bank answer: %d %s", status, body)
	}
	if got := bank.Balance(u.UserID()); got != 950_000 {
		t.Fatalf("the bank collected %d", 1_000_000-got)
	}
	if got := balance(t, u, "KRW"); got != 0 {
		t.Fatalf("credited before anyone knew: %d", got)
	}
	// Not yet: the request's own retry has its chance first.
	time.Sleep(1500 * time.Millisecond)
	if got := balance(t, u, "KRW"); got != 0 {
		t.Fatalf("reconciled too early: %d", got)
	}
	clock.Advance(31 * time.Second)
	waitBalance(50_000)
	if got := bank.Balance(u.UserID()); got != 950_000 {
		t.Fatalf("the bank collected twice: balance %d", got)
	}
	// The client's late retry gets the same outcome; nothing moves again.
	if p, err := u.TopUp(context.Background(), "t1", 50_000, "KRW"); err != nil || p.Status != "ok" {
		t.Fatalf("late retry: %+v %v", p, err)
	}
	waitBalance(50_000)

	bank.lose["payout"] = true
	if status, body := raw("/v1/wallet/withdrawals", `{"id":"w1","amount":20000,"currency":"KRW"}`); status != 502 || !strings.Contains(body, "bank_unavailable") {
		t.Fatalf("withdrawal with a lost bank answer: %d %s", status, body)
	}
	if got := bank.Balance(u.UserID()); got != 970_000 {
		t.Fatalf("the bank paid out %d", int64(got)-950_000)
	}
	waitBalance(30_000) // reserved, pending
	clock.Advance(31 * time.Second)
	for deadline := time.Now().Add(15 * time.Second); ; {
		bs, err := u.Wallet(context.Background())
		if err == nil && len(bs) == 1 && bs[0].Available == 30_000 && bs[0].Pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("withdrawal not settled: %+v %v", bs, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := bank.Balance(u.UserID()); got != 970_000 {
		t.Fatalf("the bank paid out twice: balance %d", got)
	}
	if ops := n.Pay().State().OpenBankOps(); len(ops) != 0 {
		t.Fatalf("open bank operations left: %+v", ops)
	}
}
