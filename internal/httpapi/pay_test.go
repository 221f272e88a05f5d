package httpapi_test

import (
	"context"
	"testing"

	"superapp/client"
)

func balance(t *testing.T, c *client.Client, currency string) uint64 {
	t.Helper()
	bs, err := c.Wallet(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bs {
		if b.Currency == currency {
			return b.Available
		}
	}
	return 0
}

func TestWallet(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	a, _ := e.user("Payer")
	b, _ := e.user("Payee")
	// Contract: POST /v1/wallet/topups {"id","amount","currency"}.
	r := e.do("POST", "/v1/wallet/topups", a.AccessToken(), `{"id":"top-1","amount":50000,"currency":"KRW"}`)
	if r.status != 201 || r.body["status"] != "ok" {
		t.Fatalf("top-up: %d %s", r.status, r.raw)
	}
	// The same id again: the original, applied once.
	r = e.do("POST", "/v1/wallet/topups", a.AccessToken(), `{"id":"top-1","amount":50000,"currency":"KRW"}`)
	if r.status != 200 || r.body["status"] != "ok" {
		t.Fatalf("top-up again: %d %s", r.status, r.raw)
	}
	if got := balance(t, a, "KRW"); got != 50000 {
		t.Fatalf("balance after a repeated top-up: %d", got)
	}
	// Contract: POST /v1/wallet/transfers → {"status":"ok"|<code>}.
	r = e.do("POST", "/v1/wallet/transfers", a.AccessToken(), `{"id":"pay-1","to_user":"`+b.UserID()+`","amount":20000,"currency":"KRW"}`)
	if r.status != 201 || r.body["status"] != "ok" {
		t.Fatalf("transfer: %d %s", r.status, r.raw)
	}
	r = e.do("POST", "/v1/wallet/transfers", a.AccessToken(), `{"id":"pay-2","to_user":"`+b.UserID()+`","amount":40000,"currency":"KRW"}`)
	if r.status != 422 || r.body["status"] != "exceeds_credits" || r.errCode() != "exceeds_credits" {
		t.Fatalf("overdraft: %d %s", r.status, r.raw)
	}
	// Contract: GET /v1/wallet → {"balances":[{"currency","available","pending"}]}.
	r = e.do("GET", "/v1/wallet", b.AccessToken(), "")
	bs, _ := r.body["balances"].([]any)
	if r.status != 200 || len(bs) != 1 || bs[0].(map[string]any)["available"] != float64(20000) || bs[0].(map[string]any)["pending"] != float64(0) {
		t.Fatalf("payee wallet: %d %s", r.status, r.raw)
	}
	if got := balance(t, a, "KRW"); got != 30000 {
		t.Fatalf("payer after paying: %d", got)
	}
	// The refused id is not used up: with money in the wallet, it goes.
	if _, err := a.TopUp(ctx, "top-2", 20000, "KRW"); err != nil {
		t.Fatal(err)
	}
	if p, err := a.Pay(ctx, "pay-2", b.UserID(), 40000, "KRW"); err != nil || p.Status != "ok" {
		t.Fatalf("retried payment: %v %+v", err, p)
	}
	if got := balance(t, b, "KRW"); got != 60000 {
		t.Fatalf("payee: %d", got)
	}
	// Forbidden and bad input.
	_, err := a.Pay(ctx, "self", a.UserID(), 1, "KRW")
	wantCode(t, err, "invalid_field")
	_, err = a.Pay(ctx, "ghost", "nobody", 1, "KRW")
	wantCode(t, err, "user_not_found")
	for body, field := range map[string]string{
		`{"id":"x","amount":0,"currency":"KRW"}`:     "amount",
		`{"id":"x","amount":-5,"currency":"KRW"}`:    "amount",
		`{"id":"x","amount":1.5,"currency":"KRW"}`:   "amount",
		`{"id":"x","amount":10,"currency":"won"}`:    "currency",
		`{"id":"","amount":10,"currency":"KRW"}`:     "id",
		`{"id":"x","amount":10,"to_user":"someone"}`: "to_user",
		`{"id":"x","amount":"10","currency":"KRW"}`:  "amount",
	} {
		r := e.do("POST", "/v1/wallet/topups", a.AccessToken(), body)
		if r.status != 400 || r.errField() != field {
			t.Errorf("top-up %s: %d %s, want 400 on %s", body, r.status, r.raw, field)
		}
	}
	if r := e.do("GET", "/v1/wallet", "", ""); r.status != 401 {
		t.Fatalf("wallet without a token: %d", r.status)
	}
	// Nobody sees another's money: a wallet is always the caller's own.
	c, _ := e.user("Stranger")
	if got := balance(t, c, "KRW"); got != 0 {
		t.Fatalf("stranger sees %d", got)
	}
	// A block stops payments both ways.
	if _, err := b.Block(ctx, a.UserID()); err != nil {
		t.Fatal(err)
	}
	_, err = a.Pay(ctx, "to-blocker", b.UserID(), 1, "KRW")
	wantCode(t, err, "blocked")
}
