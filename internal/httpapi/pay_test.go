package httpapi_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"superapp/client"
	"superapp/internal/ledger"
	"superapp/internal/node"
	"superapp/internal/node/nodetest"
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

func TestHoldsStatementLimits(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	rider, _ := e.user("Rider")
	driver, _ := e.user("Driver")
	other, _ := e.user("Other")
	if _, err := rider.TopUp(ctx, "t1", 4_000_000, "KRW"); err != nil {
		t.Fatal(err)
	}
	h, err := rider.PlaceHold(ctx, "ride-1", driver.UserID(), 30_000, "KRW", 0)
	if err != nil || h.Status != "pending" {
		t.Fatalf("hold: %v %+v", err, h)
	}
	bs, _ := rider.Wallet(ctx)
	if bs[0].Available != 3_970_000 || bs[0].Pending != 30_000 {
		t.Fatalf("rider during the hold: %+v", bs)
	}
	// Only the payee resolves a hold; strangers do not even see it.
	_, err = rider.Capture(ctx, h.HoldID, 0)
	wantCode(t, err, "not_found")
	_, err = other.Release(ctx, h.HoldID)
	wantCode(t, err, "not_found")
	if r := e.do("GET", "/v1/wallet/holds/"+h.HoldID, other.AccessToken(), ""); r.status != 404 {
		t.Fatalf("stranger reads a hold: %d %s", r.status, r.raw)
	}
	// Capture part: the rest goes back.
	got, err := driver.Capture(ctx, h.HoldID, 25_000)
	if err != nil || got.Status != "captured" || got.Captured != 25_000 {
		t.Fatalf("capture: %v %+v", err, got)
	}
	if _, err := driver.Capture(ctx, h.HoldID, 0); err != nil {
		t.Fatalf("capture retried: %v", err) // the same capture, answered again
	}
	_, err = driver.Release(ctx, h.HoldID)
	wantCode(t, err, "pending_transfer_already_posted")
	if b := balance(t, rider, "KRW"); b != 3_975_000 {
		t.Fatalf("rider after capture: %d", b)
	}
	if b := balance(t, driver, "KRW"); b != 25_000 {
		t.Fatalf("driver after capture: %d", b)
	}
	// Release.
	h2, _ := rider.PlaceHold(ctx, "ride-2", driver.UserID(), 10_000, "KRW", 60)
	if r, err := driver.Release(ctx, h2.HoldID); err != nil || r.Status != "released" {
		t.Fatalf("release: %v %+v", err, r)
	}
	if b := balance(t, rider, "KRW"); b != 3_975_000 {
		t.Fatalf("rider after release: %d", b)
	}
	// Expiry: the money comes back by itself once the hold's time is up.
	h3, _ := rider.PlaceHold(ctx, "ride-3", driver.UserID(), 5_000, "KRW", 2)
	e.clock.Advance(3 * time.Second)
	if _, err := rider.TopUp(ctx, "tick", 1, "KRW"); err != nil { // any ledger entry moves its time on
		t.Fatal(err)
	}
	_, err = driver.Capture(ctx, h3.HoldID, 0)
	wantCode(t, err, "pending_transfer_expired")
	if b := balance(t, rider, "KRW"); b != 3_975_001 {
		t.Fatalf("rider after expiry: %d", b)
	}
	// Limits: per payment and per day.
	_, err = rider.Pay(ctx, "big", driver.UserID(), 2_000_001, "KRW")
	wantCode(t, err, "limit_exceeded")
	for i, amt := range []uint64{2_000_000, 1_900_000} {
		if _, err := rider.Pay(ctx, fmt.Sprintf("day-%d", i), other.UserID(), amt, "KRW"); err != nil {
			t.Fatalf("payment %d: %v", i, err)
		}
	}
	// 30,000 + 10,000 + 5,000 held and 3,900,000 paid today: 1,100,000 more is over.
	_, err = rider.Pay(ctx, "day-3", other.UserID(), 1_100_000, "KRW")
	wantCode(t, err, "limit_exceeded")
	// Statement, newest first, paged.
	page, next, err := rider.Statement(ctx, 0, 3)
	if err != nil || len(page) != 3 || page[0].Kind != "sent" || page[0].ID != "day-1" || next == 0 {
		t.Fatalf("statement: %v %+v %d", err, page, next)
	}
	rest, _, _ := rider.Statement(ctx, next, 50)
	kinds := []string{}
	for _, en := range append(page, rest...) {
		kinds = append(kinds, en.Kind)
	}
	if strings.Join(kinds, ",") != "sent,sent,topup,hold,released,hold,captured,hold,topup" {
		t.Fatalf("statement kinds: %v", kinds)
	}
	if ds, _, _ := driver.Statement(ctx, 0, 10); len(ds) != 1 || ds[0].Kind != "received" || ds[0].Amount != 25_000 {
		t.Fatalf("driver statement: %+v", ds)
	}
}

func TestLedgerBatchAPI(t *testing.T) {
	e := newEnv(t)
	u, _ := e.user("NotOps")
	body := `{"accounts":[{"id":"a1","currency":"KRW"},{"id":"a2","currency":"KRW","flags":2}],` +
		`"transfers":[{"id":"b1","debit_account_id":"a1","credit_account_id":"a2","amount":10,"currency":"KRW"},` +
		`{"id":"b2","debit_account_id":"a2","credit_account_id":"a1","amount":11,"currency":"KRW"}]}`
	for _, tok := range []string{"", u.AccessToken()} {
		if r := e.do("POST", "/v1/ledger/batches", tok, body); r.status != 403 {
			t.Fatalf("batch API without the ops token: %d %s", r.status, r.raw)
		}
	}
	n := nodetest.StartConfig(t, node.Config{OpsToken: "ops"})
	ops := &env{t: t, url: nodetest.URL(n)}
	r := ops.do("POST", "/v1/ledger/batches", "ops", body)
	if r.status != 200 || fmt.Sprint(r.body["accounts"]) != "[ok ok]" || fmt.Sprint(r.body["transfers"]) != "[ok exceeds_credits]" {
		t.Fatalf("batch: %d %s", r.status, r.raw)
	}
	r = ops.do("POST", "/v1/ledger/batches", "ops", body)
	if fmt.Sprint(r.body["transfers"]) != "[exists exceeds_credits]" {
		t.Fatalf("batch again: %d %s", r.status, r.raw)
	}
	big := `{"transfers":[` + strings.Repeat(`{"id":"1","debit_account_id":"a1","credit_account_id":"a2","amount":1,"currency":"KRW"},`, 8190) +
		`{"id":"1","debit_account_id":"a1","credit_account_id":"a2","amount":1,"currency":"KRW"}]}`
	if r := ops.do("POST", "/v1/ledger/batches", "ops", big); r.status != 400 || r.errField() != "transfers" {
		t.Fatalf("8,191 transfers: %d %.200s", r.status, r.raw)
	}
}

func TestMoneyInChat(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	a, _ := e.user("Giver")
	b, _ := e.user("Taker")
	x, _ := e.user("Outsider")
	if _, err := a.TopUp(ctx, "t", 100_000, "KRW"); err != nil {
		t.Fatal(err)
	}
	conv, err := a.CreateConversation(ctx, []string{b.UserID()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	path := "/v1/conversations/" + conv.ConversationID + "/payments"
	r := e.do("POST", path, a.AccessToken(), `{"id":"dinner","amount":12000,"currency":"KRW","text":"for dinner"}`)
	if r.status != 201 || r.body["status"] != "ok" {
		t.Fatalf("pay in chat: %d %s", r.status, r.raw)
	}
	msg, _ := r.body["message"].(map[string]any)
	card, _ := msg["payment"].(map[string]any)
	if msg["kind"] != "payment" || card["amount"] != float64(12000) || card["to_user"] != b.UserID() {
		t.Fatalf("card: %s", r.raw)
	}
	// Again with the same id: one payment, one card.
	r = e.do("POST", path, a.AccessToken(), `{"id":"dinner","amount":12000,"currency":"KRW","text":"for dinner"}`)
	if r.status != 200 || r.body["status"] != "ok" {
		t.Fatalf("again: %d %s", r.status, r.raw)
	}
	ms, _, _ := b.Messages(ctx, conv.ConversationID, 0, 0, 10)
	if len(ms) != 1 || ms[0].Kind != "payment" {
		t.Fatalf("payee sees: %+v", ms)
	}
	if got := balance(t, b, "KRW"); got != 12000 {
		t.Fatalf("payee balance: %d", got)
	}
	if c, _ := b.Conversation(ctx, conv.ConversationID); c.Unread != 1 {
		t.Fatalf("a payment card is unread news: %+v", c)
	}
	// Nobody forges a card: clients cannot send the payment field.
	r = e.do("POST", "/v1/conversations/"+conv.ConversationID+"/messages", a.AccessToken(), `{"id":"fake","text":"x","payment":{"amount":1}}`)
	if r.status != 400 || r.errField() != "payment" {
		t.Fatalf("forged card: %d %s", r.status, r.raw)
	}
	// Outsiders cannot pay into the conversation; too much is refused.
	if r := e.do("POST", path, x.AccessToken(), `{"id":"x","amount":1}`); r.status != 403 || r.errCode() != "not_member" {
		t.Fatalf("outsider: %d %s", r.status, r.raw)
	}
	if r := e.do("POST", path, a.AccessToken(), `{"id":"big","amount":99000}`); r.status != 422 || r.body["status"] != "exceeds_credits" {
		t.Fatalf("overdraft in chat: %d %s", r.status, r.raw)
	}
	if ms, _, _ := b.Messages(ctx, conv.ConversationID, 0, 0, 10); len(ms) != 1 {
		t.Fatalf("a refused payment left a card: %+v", ms)
	}
}

func TestRedEnvelope(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	host, _ := e.user("Host")
	var guests []*client.Client
	var ids []string
	for i := 0; i < 4; i++ {
		g, _ := e.user(fmt.Sprintf("Guest%d", i))
		guests = append(guests, g)
		ids = append(ids, g.UserID())
	}
	outsider, _ := e.user("Outsider")
	if _, err := host.TopUp(ctx, "t", 100_000, "KRW"); err != nil {
		t.Fatal(err)
	}
	conv, err := host.CreateConversation(ctx, ids, ptr("New year"))
	if err != nil {
		t.Fatal(err)
	}
	for _, split := range []string{"equal", "random"} {
		env, err := host.SendEnvelope(ctx, conv.ConversationID, "env-"+split, 10_000, 3, split)
		if err != nil || env.Status != "open" {
			t.Fatalf("%s envelope: %v %+v", split, err, env)
		}
		var total uint64
		for i, g := range guests[:3] {
			got, err := g.Claim(ctx, env.EnvelopeID)
			if err != nil {
				t.Fatalf("%s claim %d: %v", split, i, err)
			}
			share := got.Claims[g.UserID()]
			if share == 0 || (split == "equal" && share != map[int]uint64{0: 3333, 1: 3333, 2: 3334}[i]) {
				t.Fatalf("%s claim %d: share %d", split, i, share)
			}
			total += share
		}
		if total != 10_000 {
			t.Fatalf("%s shares add to %d", split, total)
		}
		// Each claims once: claiming again answers the same share, paid once.
		b0 := balance(t, guests[0], "KRW")
		again, err := guests[0].Claim(ctx, env.EnvelopeID)
		if err != nil || again.Claims[guests[0].UserID()] == 0 || balance(t, guests[0], "KRW") != b0 {
			t.Fatalf("%s second claim: %v %+v", split, err, again)
		}
		// The fourth finds it empty; outsiders find nothing.
		_, err = guests[3].Claim(ctx, env.EnvelopeID)
		wantCode(t, err, "envelope_empty")
		_, err = outsider.Claim(ctx, env.EnvelopeID)
		wantCode(t, err, "not_found")
		_, err = host.Claim(ctx, env.EnvelopeID)
		wantCode(t, err, "not_found")
	}
	// What nobody claims within a day goes back.
	env, err := host.SendEnvelope(ctx, conv.ConversationID, "env-late", 9_000, 3, "equal")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := guests[0].Claim(ctx, env.EnvelopeID); err != nil {
		t.Fatal(err)
	}
	before := balance(t, host, "KRW")
	e.clock.Advance(25 * time.Hour)
	for _, c := range []*client.Client{host, guests[0], guests[1], outsider} {
		if _, err := c.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
	}
	_, err = guests[1].Claim(ctx, env.EnvelopeID)
	wantCode(t, err, "envelope_expired")
	if after := balance(t, host, "KRW"); after != before+6_000 {
		t.Fatalf("host got back %d, want 6000", after-before)
	}
	// The cards are in the conversation.
	ms, _, _ := guests[0].Messages(ctx, conv.ConversationID, 0, 0, 50)
	cards := 0
	for _, m := range ms {
		if m.Kind == "payment" {
			cards++
		}
	}
	if cards != 3 {
		t.Fatalf("%d envelope cards, want 3", cards)
	}
	if r := e.do("POST", "/v1/conversations/"+conv.ConversationID+"/envelopes", host.AccessToken(), `{"id":"x","amount":2,"shares":3}`); r.status != 400 || r.errField() != "amount" {
		t.Fatalf("shares above the amount: %d %s", r.status, r.raw)
	}
	if r := e.do("POST", "/v1/conversations/"+conv.ConversationID+"/envelopes", outsider.AccessToken(), `{"id":"x","amount":20,"shares":2}`); r.status != 403 {
		t.Fatalf("outsider's envelope: %d %s", r.status, r.raw)
	}
}

func TestMerchants(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	shop, _ := e.user("Shop")
	cust, custLogin := e.user("Customer")
	other, _ := e.user("Other")
	if _, err := cust.TopUp(ctx, "t", 1_000_000, "KRW"); err != nil {
		t.Fatal(err)
	}
	_, err := shop.MerchantQR(ctx, 0)
	wantCode(t, err, "not_merchant")
	if err := shop.RegisterMerchant(ctx, "Corner Store"); err != nil {
		t.Fatal(err)
	}
	// Static QR: the customer types the amount.
	qr, err := shop.MerchantQR(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	sale, err := cust.PayQR(ctx, "snack", qr, 2_500)
	if err != nil || sale.Amount != 2_500 || sale.Merchant != shop.UserID() {
		t.Fatalf("static QR: %v %+v", err, sale)
	}
	// Dynamic QR: the amount is in it, and it pays once.
	dqr, err := shop.MerchantQR(ctx, 7_000)
	if err != nil {
		t.Fatal(err)
	}
	if s, err := cust.PayQR(ctx, "lunch", dqr, 0); err != nil || s.Amount != 7_000 {
		t.Fatalf("dynamic QR: %v %+v", err, s)
	}
	_, err = other.PayQR(ctx, "lunch-again", dqr, 0)
	wantCode(t, err, "qr_invalid")
	_, err = cust.PayQR(ctx, "junk", "https://evil.example/pay", 100)
	wantCode(t, err, "qr_invalid")
	// Payment code: the shop scans it once, within a minute, up to a limit.
	code, err := cust.PaymentCode(ctx)
	if err != nil || len(code) != 18 {
		t.Fatalf("code: %v %q", err, code)
	}
	_, err = shop.Charge(ctx, "pos-0", code, 600_000)
	wantCode(t, err, "limit_exceeded")
	s3, err := shop.Charge(ctx, "pos-1", code, 4_000)
	if err != nil || s3.Customer != cust.UserID() || s3.Amount != 4_000 {
		t.Fatalf("charge: %v %+v", err, s3)
	}
	_, err = shop.Charge(ctx, "pos-2", code, 4_000)
	wantCode(t, err, "payment_code_invalid")
	code2, _ := cust.PaymentCode(ctx)
	e.clock.Advance(61 * time.Second)
	_, err = shop.Charge(ctx, "pos-3", code2, 1_000)
	wantCode(t, err, "payment_code_invalid")
	// A code from a session that was logged out is worthless.
	phone := client.New([]string{e.url})
	if _, err := phone.Login(ctx, custLogin, goodPassword, "lost phone"); err != nil {
		t.Fatal(err)
	}
	code3, _ := phone.PaymentCode(ctx)
	if err := phone.Logout(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = shop.Charge(ctx, "pos-4", code3, 1_000)
	wantCode(t, err, "payment_code_invalid")
	// Only a merchant charges; only the sale's merchant refunds.
	code4, _ := cust.PaymentCode(ctx)
	_, err = other.Charge(ctx, "steal", code4, 1_000)
	wantCode(t, err, "not_merchant")
	_, err = other.Refund(ctx, "r", sale.PaymentID, 0)
	wantCode(t, err, "not_found")
	// Refunds, in part then the rest, never more.
	if r, err := shop.Refund(ctx, "r1", sale.PaymentID, 1_000); err != nil || r.Refunded != 1_000 {
		t.Fatalf("partial refund: %v %+v", err, r)
	}
	_, err = shop.Refund(ctx, "r2", sale.PaymentID, 2_000)
	wantCode(t, err, "refund_exceeds_payment")
	if r, err := shop.Refund(ctx, "r3", sale.PaymentID, 0); err != nil || r.Refunded != 2_500 {
		t.Fatalf("full refund: %v %+v", err, r)
	}
	if got := balance(t, cust, "KRW"); got != 1_000_000-7_000-4_000 {
		t.Fatalf("customer: %d", got)
	}
	r := e.do("GET", "/v1/merchants/statement", shop.AccessToken(), "")
	entries, _ := r.body["entries"].([]any)
	if r.status != 200 || len(entries) != 5 {
		t.Fatalf("merchant statement: %d %s", r.status, r.raw)
	}
	if r := e.do("GET", "/v1/merchants/statement", other.AccessToken(), ""); r.status != 403 {
		t.Fatalf("non-merchant statement: %d", r.status)
	}
}

func TestWithdrawal(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	u, _ := e.user("Saver")
	if _, err := u.TopUp(ctx, "in", 50_000, "KRW"); err != nil {
		t.Fatal(err)
	}
	r := e.do("POST", "/v1/wallet/withdrawals", u.AccessToken(), `{"id":"out-1","amount":20000,"currency":"KRW"}`)
	if r.status != 201 || r.body["status"] != "ok" {
		t.Fatalf("withdrawal: %d %s", r.status, r.raw)
	}
	r = e.do("POST", "/v1/wallet/withdrawals", u.AccessToken(), `{"id":"out-1","amount":20000,"currency":"KRW"}`)
	if r.status != 200 || r.body["status"] != "ok" {
		t.Fatalf("withdrawal again: %d %s", r.status, r.raw)
	}
	if got := balance(t, u, "KRW"); got != 30_000 {
		t.Fatalf("after withdrawing: %d", got)
	}
	r = e.do("POST", "/v1/wallet/withdrawals", u.AccessToken(), `{"id":"out-2","amount":40000,"currency":"KRW"}`)
	if r.status != 422 || r.body["status"] != "exceeds_credits" {
		t.Fatalf("overdrawn withdrawal: %d %s", r.status, r.raw)
	}
	// The (simulated) bank declines what the linked account does not hold.
	if r := e.do("POST", "/v1/wallet/topups", u.AccessToken(), `{"id":"huge","amount":200000000,"currency":"KRW"}`); r.status != 422 || r.errCode() != "bank_declined" {
		t.Fatalf("top-up beyond the bank account: %d %s", r.status, r.raw)
	}
	if got := balance(t, u, "KRW"); got != 30_000 {
		t.Fatalf("after a declined top-up: %d", got)
	}
	if r := e.do("POST", "/v1/wallet/withdrawals", "", `{"id":"x","amount":1}`); r.status != 401 {
		t.Fatalf("no token: %d", r.status)
	}
}

// TestPaymentIDsCannotBeReused: one client id, another request: refused,
// never answered with the first request's outcome (or a card for it).
func TestPaymentIDsCannotBeReused(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	a, _ := e.user("Reuser")
	b, _ := e.user("Friend")
	if _, err := a.TopUp(ctx, "gift", 1_000_000, "KRW"); err != nil {
		t.Fatal(err)
	}
	conv, _ := a.CreateConversation(ctx, []string{b.UserID()}, nil)
	r := e.do("POST", "/v1/conversations/"+conv.ConversationID+"/payments", a.AccessToken(), `{"id":"gift","amount":1000}`)
	if r.status != 201 || balance(t, b, "KRW") != 1000 {
		t.Fatalf("a payment whose id was a top-up's: %d %s", r.status, r.raw)
	}
	r = e.do("POST", "/v1/conversations/"+conv.ConversationID+"/payments", a.AccessToken(), `{"id":"gift","amount":999999}`)
	if r.status != 422 || r.errCode() != "idempotency_key_reused" {
		t.Fatalf("same id, other amount: %d %s", r.status, r.raw)
	}
	if ms, _, _ := b.Messages(ctx, conv.ConversationID, 0, 0, 10); len(ms) != 1 || ms[0].Payment.Amount != 1000 {
		t.Fatalf("cards: %+v", ms)
	}
	if _, err := a.Pay(ctx, "w", b.UserID(), 10, "KRW"); err != nil {
		t.Fatal(err)
	}
	r = e.do("POST", "/v1/wallet/withdrawals", a.AccessToken(), `{"id":"out","amount":100}`)
	if r.status != 201 {
		t.Fatalf("withdrawal: %d %s", r.status, r.raw)
	}
	r = e.do("POST", "/v1/wallet/withdrawals", a.AccessToken(), `{"id":"out","amount":500000}`)
	if r.status != 422 || r.errCode() != "idempotency_key_reused" {
		t.Fatalf("withdrawal id reused for more: %d %s", r.status, r.raw)
	}
	if got := balance(t, a, "KRW"); got != 1_000_000-1000-10-100 {
		t.Fatalf("balance: %d", got)
	}
}

// TestLedgerBatchBinaryAPI drives the batch API with ledger's binary form
// (application/octet-stream): the same answers as JSON, and bad bodies
// refused with the field at fault.
func TestLedgerBatchBinaryAPI(t *testing.T) {
	id := func(s string) ledger.ID { return ledger.IDFrom("binary-test/" + s) }
	accounts := []ledger.Account{{ID: id("a1"), Currency: "KRW"}, {ID: id("a2"), Currency: "KRW", Flags: ledger.DebitsMustNotExceedCredits}}
	transfers := []ledger.Transfer{
		{ID: id("t1"), DebitAccountID: id("a1"), CreditAccountID: id("a2"), Amount: 10, Currency: "KRW"},
		{ID: id("t2"), DebitAccountID: id("a2"), CreditAccountID: id("a1"), Amount: 11, Currency: "KRW"},
		// A linked chain whose second transfer fails: neither applies.
		{ID: id("t3"), DebitAccountID: id("a2"), CreditAccountID: id("a1"), Amount: 4, Currency: "KRW", Flags: ledger.Linked},
		{ID: id("t4"), DebitAccountID: id("a2"), CreditAccountID: id("a1"), Amount: 7, Currency: "KRW"},
		// A hold, captured in part.
		{ID: id("t5"), DebitAccountID: id("a2"), CreditAccountID: id("a1"), Amount: 6, Currency: "KRW", Flags: ledger.Pending, Timeout: 60, UserData: "ride 42"},
		{ID: id("t6"), PendingID: id("t5"), Amount: 5, Flags: ledger.PostPending},
	}
	body, err := ledger.EncodeBatch(accounts, transfers)
	if err != nil {
		t.Fatal(err)
	}
	const octets = "application/octet-stream"
	e := newEnv(t)
	u, _ := e.user("NotOps")
	for _, tok := range []string{"", u.AccessToken()} {
		if r := e.do("POST", "/v1/ledger/batches", tok, string(body), "Content-Type", octets); r.status != 403 || r.errCode() != "forbidden" {
			t.Fatalf("binary batch without the ops token: %d %s", r.status, r.raw)
		}
	}
	n := nodetest.StartConfig(t, node.Config{OpsToken: "ops"})
	ops := &env{t: t, url: nodetest.URL(n)}
	r := ops.do("POST", "/v1/ledger/batches", "ops", string(body), "Content-Type", octets)
	if r.status != 200 || fmt.Sprint(r.body["accounts"]) != "[ok ok]" ||
		fmt.Sprint(r.body["transfers"]) != "[ok exceeds_credits linked_event_failed exceeds_credits ok ok]" {
		t.Fatalf("binary batch: %d %s", r.status, r.raw)
	}
	// Retried as is: every id answers exists (or is refused again, as a
	// refusal does not use up its id).
	r = ops.do("POST", "/v1/ledger/batches", "ops", string(body), "Content-Type", octets+"; charset=binary")
	if r.status != 200 || fmt.Sprint(r.body["accounts"]) != "[exists exists]" ||
		fmt.Sprint(r.body["transfers"]) != "[exists exceeds_credits linked_event_failed exceeds_credits exists exists]" {
		t.Fatalf("binary batch again: %d %s", r.status, r.raw)
	}
	// The same transfer id sent as JSON is the same transfer.
	js := `{"transfers":[{"id":"` + id("t1").String() + `","debit_account_id":"` + id("a1").String() + `","credit_account_id":"` + id("a2").String() + `","amount":10,"currency":"KRW"}]}`
	if r := ops.do("POST", "/v1/ledger/batches", "ops", js); fmt.Sprint(r.body["transfers"]) != "[exists]" {
		t.Fatalf("JSON retry of a binary transfer: %d %s", r.status, r.raw)
	}
	// JSON the binary form cannot hold still gets the ledger's own answers.
	odd := `{"accounts":[{"id":"b1","currency":"krw"},{"id":"b2","currency":"KRW","user_data":"` + strings.Repeat("x", 40) + `"}]}`
	if r := ops.do("POST", "/v1/ledger/batches", "ops", odd); r.status != 200 || fmt.Sprint(r.body["accounts"]) != "[currency_invalid ok]" {
		t.Fatalf("JSON beyond the binary form: %d %s", r.status, r.raw)
	}
	for _, rm := range n.ReadModels() {
		if rm.Stream == "LEDGER" && rm.Invariants != "ok" {
			t.Fatalf("ledger invariants: %s", rm.Invariants)
		}
	}

	set := func(off int, v ...byte) string {
		b := append([]byte(nil), body...)
		copy(b[off:], v)
		return string(b)
	}
	t1 := ledger.BatchHeaderSize + 2*ledger.RecordSize // the first transfer record
	big, _ := ledger.EncodeBatch(nil, make([]ledger.Transfer, ledger.MaxBatch+1))
	for _, c := range []struct {
		name, body, field, says string
	}{
		{"no body", "", "header", "8-byte header"},
		{"a short header", "\x01\x00\x00", "header", "8-byte header"},
		{"counts that do not match the length", set(4, 7), "header", "must be"},
		{"a record cut short", string(body[:len(body)-1]), "header", "must be"},
		{"a lower-case currency", set(t1+112, 'k', 'r', 'w'), "transfers[0].currency", "ISO 4217"},
		{"an amount past 2^64", set(t1+56, 1), "transfers[0].amount", "below 2^64"},
		{"user data that is not UTF-8", set(t1+80, 0xff), "transfers[0].user_data", "UTF-8"},
		{"reserved account bytes", set(ledger.BatchHeaderSize+108, 1), "accounts[0].reserved", "reserved"},
		{"an empty batch", "\x00\x00\x00\x00\x00\x00\x00\x00", "transfers", "empty"},
		{"8,191 transfers", string(big), "transfers", "at most"},
	} {
		r := ops.do("POST", "/v1/ledger/batches", "ops", c.body, "Content-Type", octets)
		msg, _ := r.body["error"].(map[string]any)["message"].(string)
		if r.status != 400 || r.errCode() != "invalid_field" || r.errField() != c.field || !strings.Contains(msg, c.says) {
			t.Errorf("%s: %d %.300s", c.name, r.status, r.raw)
		}
	}
	// Nothing half-written: the refused bodies changed no balance.
	r = ops.do("POST", "/v1/ledger/batches", "ops", string(body), "Content-Type", octets)
	if fmt.Sprint(r.body["transfers"]) != "[exists exceeds_credits linked_event_failed exceeds_credits exists exists]" {
		t.Fatalf("after refusals: %s", r.raw)
	}
}
