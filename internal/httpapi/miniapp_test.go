package httpapi_test

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	ma "superapp/internal/miniapp"
	"superapp/internal/node"
	"superapp/internal/node/nodetest"
)

// newMiniAppEnv is a node whose webhook retries wait milliseconds, not
// seconds (the test clock still decides when a retry is due).
func newMiniAppEnv(t *testing.T) *env {
	t.Helper()
	clock := nodetest.NewClock()
	n := nodetest.StartConfig(t, node.Config{Now: clock.Now,
		Webhooks:        ma.Retry{Base: 10 * time.Millisecond, Max: 50 * time.Millisecond, Tick: 10 * time.Millisecond, Timeout: 2 * time.Second, Lease: 10 * time.Second},
		WebhookLoopback: true})
	return &env{t: t, url: nodetest.URL(n), clock: clock}
}

// hook is a mini-app's backend receiving webhooks: it checks each
// signature with the secret it was shown, and answers fail statuses first.
type hook struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	secret string
	fail   []int
	got    []hookCall
}

type hookCall struct {
	id, event string
	sigOK     bool
	body      map[string]any
}

func newHook(t *testing.T) *hook {
	h := &hook{t: t}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		defer h.mu.Unlock()
		c := hookCall{id: r.Header.Get(ma.HeaderDeliveryID), event: r.Header.Get(ma.HeaderEvent)}
		c.sigOK = h.secret != "" && ma.Sign(h.secret, r.Header.Get(ma.HeaderTimestamp), body) == r.Header.Get(ma.HeaderSignature)
		_ = json.Unmarshal(body, &c.body)
		h.got = append(h.got, c)
		if len(h.fail) > 0 {
			code := h.fail[0]
			h.fail = h.fail[1:]
			w.WriteHeader(code)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hook) calls() []hookCall {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]hookCall(nil), h.got...)
}

// registerHookedApp registers a mini-app with a webhook URL.
func (e *env) registerHookedApp(token, name, webhook string, scopes ...string) (string, string) {
	e.t.Helper()
	body, _ := json.Marshal(map[string]any{"name": name, "redirect_uris": []string{redirectURI}, "scopes": scopes, "webhook_url": webhook})
	r := e.do("POST", "/v1/oauth/clients", token, string(body))
	if r.status != http.StatusCreated {
		e.t.Fatalf("register app: %d %s", r.status, r.raw)
	}
	return r.body["client_id"].(string), r.body["client_secret"].(string)
}

func basic(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+secret))
}

func TestMiniAppPayRequestEndToEnd(t *testing.T) {
	e := newMiniAppEnv(t)
	hk := newHook(t)
	dev, _ := e.user("Dev")
	alice, _ := e.user("Alice")
	clientID, secret := e.registerHookedApp(dev.AccessToken(), "Taxi Plus", hk.srv.URL+"/hooks", "profile", "pay", "chat-notify")
	r := e.do("GET", "/v1/apps/"+clientID+"/webhook-secret", dev.AccessToken(), "")
	if r.status != 200 || !strings.HasPrefix(r.body["webhook_secret"].(string), "whsec_") {
		t.Fatalf("webhook secret: %d %s", r.status, r.raw)
	}
	hk.mu.Lock()
	hk.secret = r.body["webhook_secret"].(string)
	hk.mu.Unlock()

	// Alice logs in to the mini-app (PKCE) and grants it pay.
	app := e.miniapp(clientID, secret, oidc.ScopeOpenID, "profile", "pay")
	tok := app.login(alice.AccessToken())
	if r := e.do("POST", "/v1/wallet/topups", alice.AccessToken(), `{"id":"top-1","amount":50000,"currency":"KRW"}`); r.status != 200 && r.status != 201 {
		t.Fatalf("top up: %d %s", r.status, r.raw)
	}

	// The mini-app asks for 12,000; the same id again is the same request.
	req := `{"id":"order-77","amount":12000,"currency":"KRW","description":"Ride to Pangyo"}`
	r = e.do("POST", "/v1/miniapp/pay-requests", tok.AccessToken, req)
	if r.status != 201 || r.body["status"] != "pending" {
		t.Fatalf("create pay request: %d %s", r.status, r.raw)
	}
	prID := r.body["pay_request_id"].(string)
	if r2 := e.do("POST", "/v1/miniapp/pay-requests", tok.AccessToken, req); r2.status != 201 || r2.body["pay_request_id"] != prID {
		t.Fatalf("create again: %d %s", r2.status, r2.raw)
	}
	if r2 := e.do("POST", "/v1/miniapp/pay-requests", tok.AccessToken, strings.Replace(req, "12000", "13000", 1)); r2.errCode() != "idempotency_key_reused" {
		t.Fatalf("same id, other amount: %d %s", r2.status, r2.raw)
	}

	// Alice sees it pending in superapp and approves it.
	r = e.do("GET", "/v1/pay-requests", alice.AccessToken(), "")
	list, _ := r.body["pay_requests"].([]any)
	if r.status != 200 || len(list) != 1 || list[0].(map[string]any)["pay_request_id"] != prID ||
		list[0].(map[string]any)["client"].(map[string]any)["name"] != "Taxi Plus" {
		t.Fatalf("pending list: %d %s", r.status, r.raw)
	}
	r = e.do("POST", "/v1/pay-requests/"+prID+"/approve", alice.AccessToken(), "")
	if r.status != 200 || r.body["status"] != "approved" || r.body["payment_id"] == "" {
		t.Fatalf("approve: %d %s", r.status, r.raw)
	}
	// Approving again (a retry after a lost answer) pays once.
	if r2 := e.do("POST", "/v1/pay-requests/"+prID+"/approve", alice.AccessToken(), ""); r2.status != 200 || r2.body["payment_id"] != r.body["payment_id"] {
		t.Fatalf("approve again: %d %s", r2.status, r2.raw)
	}
	if got := balance(t, alice, "KRW"); got != 38000 {
		t.Fatalf("alice after paying: %d", got)
	}
	r = e.do("GET", "/v1/merchants/statement", dev.AccessToken(), "")
	if r.status != 200 || !strings.Contains(r.raw, `"amount":12000`) {
		t.Fatalf("developer's merchant statement: %d %s", r.status, r.raw)
	}
	if r := e.do("GET", "/v1/pay-requests", alice.AccessToken(), ""); len(r.body["pay_requests"].([]any)) != 0 {
		t.Fatalf("still pending: %s", r.raw)
	}
	if r := e.do("GET", "/v1/miniapp/pay-requests/"+prID, tok.AccessToken, ""); r.status != 200 || r.body["status"] != "approved" {
		t.Fatalf("app reads its request: %d %s", r.status, r.raw)
	}

	// The mini-app's backend hears of it, signed.
	waitFor(t, func() bool { return len(hk.calls()) >= 1 })
	c := hk.calls()[0]
	if c.event != ma.EventPayApproved || !c.sigOK || c.body["id"] != c.id || !strings.HasPrefix(c.id, "dlv_") {
		t.Fatalf("webhook: %+v", c)
	}
	data, _ := c.body["data"].(map[string]any)
	if pr, _ := data["pay_request"].(map[string]any); pr["pay_request_id"] != prID || pr["status"] != "approved" {
		t.Fatalf("webhook data: %v", c.body)
	}
	waitFor(t, func() bool {
		r := e.do("GET", "/v1/apps/"+clientID+"/deliveries", dev.AccessToken(), "")
		ds, _ := r.body["deliveries"].([]any)
		return len(ds) == 1 && ds[0].(map[string]any)["status"] == "delivered"
	})

	// A hold, captured later by the mini-app with client credentials.
	r = e.do("POST", "/v1/miniapp/pay-requests", "", `{"id":"order-78","user_id":"`+alice.UserID()+`","amount":5000,"description":"Deposit","capture":"hold"}`,
		"Authorization", basic(clientID, secret))
	if r.status != 201 {
		t.Fatalf("create hold request with client credentials: %d %s", r.status, r.raw)
	}
	holdReq := r.body["pay_request_id"].(string)
	if r := e.do("POST", "/v1/pay-requests/"+holdReq+"/approve", alice.AccessToken(), ""); r.status != 200 || r.body["hold_id"] == "" {
		t.Fatalf("approve hold: %d %s", r.status, r.raw)
	}
	if got := balance(t, alice, "KRW"); got != 33000 {
		t.Fatalf("alice after the hold: %d", got)
	}
	r = e.do("POST", "/v1/miniapp/pay-requests/"+holdReq+"/capture", tok.AccessToken, `{"amount":3000}`)
	if r.status != 200 || r.body["status"] != "captured" || r.body["captured"] != float64(3000) {
		t.Fatalf("capture: %d %s", r.status, r.raw)
	}
	if got := balance(t, alice, "KRW"); got != 35000 {
		t.Fatalf("alice after a partial capture: %d", got)
	}
	waitFor(t, func() bool {
		for _, c := range hk.calls() {
			if c.event == ma.EventPayCaptured && c.sigOK {
				return true
			}
		}
		return false
	})

	// Alice revokes her grant: the mini-app's backend hears of it.
	r = e.do("GET", "/v1/oauth/grants", alice.AccessToken(), "")
	for _, g := range r.body["grants"].([]any) {
		if r := e.do("DELETE", "/v1/oauth/grants/"+g.(map[string]any)["grant_id"].(string), alice.AccessToken(), ""); r.status != 200 {
			t.Fatalf("revoke: %d %s", r.status, r.raw)
		}
	}
	waitFor(t, func() bool {
		for _, c := range hk.calls() {
			if c.event == ma.EventGrantRevoked && c.sigOK {
				data, _ := c.body["data"].(map[string]any)
				return data["user_id"] == alice.UserID()
			}
		}
		return false
	})
}

func TestMiniAppForbidden(t *testing.T) {
	e := newMiniAppEnv(t)
	dev, _ := e.user("Dev")
	alice, _ := e.user("Alice")
	bob, _ := e.user("Bob")
	payID, paySecret := e.registerHookedApp(dev.AccessToken(), "Pay App", "https://pay.example.com/hooks", "profile", "pay", "chat-notify")
	otherID, otherSecret := e.registerHookedApp(dev.AccessToken(), "Other App", "https://other.example.com/hooks", "profile", "pay")

	// A token without pay or chat-notify: 403 insufficient_scope.
	profileOnly := e.miniapp(payID, paySecret, oidc.ScopeOpenID, "profile").login(alice.AccessToken())
	if r := e.do("POST", "/v1/miniapp/pay-requests", profileOnly.AccessToken, `{"id":"x1","amount":100,"description":"d"}`); r.status != 403 || r.errCode() != "insufficient_scope" {
		t.Fatalf("pay without the scope: %d %s", r.status, r.raw)
	}
	if r := e.do("POST", "/v1/miniapp/notifications", profileOnly.AccessToken, `{"id":"n1","text":"hi"}`); r.status != 403 || r.errCode() != "insufficient_scope" {
		t.Fatalf("notify without the scope: %d %s", r.status, r.raw)
	}
	// Client credentials for a user who granted only profile: 403 too.
	if r := e.do("POST", "/v1/miniapp/notifications", "", `{"id":"n1","text":"hi","user_id":"`+alice.UserID()+`"}`, "Authorization", basic(payID, paySecret)); r.status != 403 {
		t.Fatalf("notify by client credentials without the scope: %d %s", r.status, r.raw)
	}
	// And for a user who granted nothing: 401.
	if r := e.do("POST", "/v1/miniapp/pay-requests", "", `{"id":"x2","amount":100,"description":"d","user_id":"`+bob.UserID()+`"}`, "Authorization", basic(payID, paySecret)); r.status != 401 {
		t.Fatalf("pay request for a user without a grant: %d %s", r.status, r.raw)
	}
	if r := e.do("POST", "/v1/miniapp/pay-requests", "", `{"id":"x2","amount":100,"description":"d","user_id":"`+bob.UserID()+`"}`, "Authorization", basic(payID, "sas1_wrong")); r.status != 401 {
		t.Fatalf("wrong client secret: %d %s", r.status, r.raw)
	}

	// With chat-notify, the message lands in Alice's official-account
	// conversation with the mini-app, which she reads like any other.
	full := e.miniapp(payID, paySecret, oidc.ScopeOpenID, "pay", "chat-notify").login(alice.AccessToken())
	r := e.do("POST", "/v1/miniapp/notifications", full.AccessToken, `{"id":"n1","text":"Your taxi is here"}`)
	if r.status != 201 {
		t.Fatalf("notify: %d %s", r.status, r.raw)
	}
	conv := r.body["conversation_id"].(string)
	if r2 := e.do("POST", "/v1/miniapp/notifications", full.AccessToken, `{"id":"n1","text":"Your taxi is here"}`); r2.body["conversation_id"] != conv {
		t.Fatalf("notify again: %s", r2.raw)
	}
	r = e.do("GET", "/v1/conversations/"+conv+"/messages?after=0&limit=50", alice.AccessToken(), "")
	msgs, _ := r.body["messages"].([]any)
	if r.status != 200 || len(msgs) != 1 || msgs[0].(map[string]any)["sender"] != "app:"+payID || msgs[0].(map[string]any)["text"] != "Your taxi is here" {
		t.Fatalf("alice reads the notification: %d %s", r.status, r.raw)
	}
	if r := e.do("GET", "/v1/conversations/"+conv+"/messages?after=0&limit=50", bob.AccessToken(), ""); r.status < 400 {
		t.Fatalf("bob reads alice's notifications: %d %s", r.status, r.raw)
	}

	// Another app cannot read or capture this app's requests; another
	// user cannot approve Alice's.
	r = e.do("POST", "/v1/miniapp/pay-requests", full.AccessToken, `{"id":"o1","amount":100,"description":"Tip","capture":"hold"}`)
	if r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.raw)
	}
	prID := r.body["pay_request_id"].(string)
	otherTok := e.miniapp(otherID, otherSecret, oidc.ScopeOpenID, "pay").login(alice.AccessToken())
	if r := e.do("GET", "/v1/miniapp/pay-requests/"+prID, otherTok.AccessToken, ""); r.status != 404 {
		t.Fatalf("other app reads the request: %d %s", r.status, r.raw)
	}
	if r := e.do("POST", "/v1/miniapp/pay-requests/"+prID+"/release", "", "", "Authorization", basic(otherID, otherSecret)); r.status != 404 {
		t.Fatalf("other app releases the request: %d %s", r.status, r.raw)
	}
	if r := e.do("POST", "/v1/pay-requests/"+prID+"/approve", bob.AccessToken(), ""); r.status != 404 {
		t.Fatalf("bob approves alice's request: %d %s", r.status, r.raw)
	}
	if r := e.do("POST", "/v1/pay-requests/"+prID+"/decline", bob.AccessToken(), ""); r.status != 404 {
		t.Fatalf("bob declines alice's request: %d %s", r.status, r.raw)
	}
	// Not enough money: refused with the ledger's code, still pending.
	if r := e.do("POST", "/v1/pay-requests/"+prID+"/approve", alice.AccessToken(), ""); r.status != 422 {
		t.Fatalf("approve without money: %d %s", r.status, r.raw)
	}
	if r := e.do("POST", "/v1/pay-requests/"+prID+"/decline", alice.AccessToken(), ""); r.status != 200 || r.body["status"] != "declined" {
		t.Fatalf("decline: %d %s", r.status, r.raw)
	}
	if r := e.do("POST", "/v1/pay-requests/"+prID+"/approve", alice.AccessToken(), ""); r.status != 409 {
		t.Fatalf("approve after decline: %d %s", r.status, r.raw)
	}
	// The delivery log is the owner's only.
	if r := e.do("GET", "/v1/apps/"+payID+"/deliveries", alice.AccessToken(), ""); r.status != 403 {
		t.Fatalf("a stranger reads the delivery log: %d %s", r.status, r.raw)
	}

	// After Alice revokes the grant, the token and the client credentials
	// both stop working for her: 401.
	r = e.do("GET", "/v1/oauth/grants", alice.AccessToken(), "")
	for _, g := range r.body["grants"].([]any) {
		gm := g.(map[string]any)
		if gm["client"].(map[string]any)["client_id"] == payID {
			if r := e.do("DELETE", "/v1/oauth/grants/"+gm["grant_id"].(string), alice.AccessToken(), ""); r.status != 200 {
				t.Fatalf("revoke: %d %s", r.status, r.raw)
			}
		}
	}
	if r := e.do("POST", "/v1/miniapp/notifications", full.AccessToken, `{"id":"n2","text":"hi"}`); r.status != 401 {
		t.Fatalf("notify after revocation: %d %s", r.status, r.raw)
	}
	if r := e.do("POST", "/v1/miniapp/pay-requests", full.AccessToken, `{"id":"o2","amount":100,"description":"d"}`); r.status != 401 {
		t.Fatalf("pay request after revocation: %d %s", r.status, r.raw)
	}
	if r := e.do("POST", "/v1/miniapp/notifications", "", `{"id":"n3","text":"hi","user_id":"`+alice.UserID()+`"}`, "Authorization", basic(payID, paySecret)); r.status != 401 {
		t.Fatalf("notify by client credentials after revocation: %d %s", r.status, r.raw)
	}
}

func TestWebhookRetry(t *testing.T) {
	e := newMiniAppEnv(t)
	hk := newHook(t)
	hk.fail = []int{500, 503}
	dev, _ := e.user("Dev")
	alice, _ := e.user("Alice")
	clientID, secret := e.registerHookedApp(dev.AccessToken(), "Flaky", hk.srv.URL+"/hooks", "pay")
	sec := e.do("GET", "/v1/apps/"+clientID+"/webhook-secret", dev.AccessToken(), "")
	// The developer rotates the secret: deliveries are signed with the new one.
	rot := e.do("POST", "/v1/apps/"+clientID+"/webhook-secret", dev.AccessToken(), "")
	if rot.status != 200 || rot.body["webhook_secret"] == sec.body["webhook_secret"] || rot.body["version"] != float64(2) {
		t.Fatalf("rotate: %d %s", rot.status, rot.raw)
	}
	hk.mu.Lock()
	hk.secret = rot.body["webhook_secret"].(string)
	hk.mu.Unlock()

	tok := e.miniapp(clientID, secret, oidc.ScopeOpenID, "pay").login(alice.AccessToken())
	r := e.do("POST", "/v1/miniapp/pay-requests", tok.AccessToken, `{"id":"r1","amount":100,"description":"Coffee"}`)
	if r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.raw)
	}
	if r := e.do("POST", "/v1/pay-requests/"+r.body["pay_request_id"].(string)+"/decline", alice.AccessToken(), ""); r.status != 200 {
		t.Fatalf("decline: %d %s", r.status, r.raw)
	}
	// Each failure schedules a retry; the test clock says when it is due.
	for want := 1; want <= 3; want++ {
		waitFor(t, func() bool { return len(hk.calls()) >= want })
		if want < 3 {
			waitFor(t, func() bool {
				r := e.do("GET", "/v1/apps/"+clientID+"/deliveries", dev.AccessToken(), "")
				ds, _ := r.body["deliveries"].([]any)
				if len(ds) != 1 {
					return false
				}
				d := ds[0].(map[string]any)
				at, _ := d["attempts"].([]any)
				return len(at) == want && d["next_attempt_at"] != nil
			})
			e.clock.Advance(time.Second)
		}
	}
	calls := hk.calls()
	if len(calls) != 3 {
		t.Fatalf("%d calls, want 3", len(calls))
	}
	for _, c := range calls {
		if c.id != calls[0].id || !c.sigOK || c.event != ma.EventPayDeclined {
			t.Fatalf("calls: %+v", calls)
		}
	}
	var d map[string]any
	waitFor(t, func() bool {
		r := e.do("GET", "/v1/apps/"+clientID+"/deliveries", dev.AccessToken(), "")
		ds, _ := r.body["deliveries"].([]any)
		d, _ = ds[0].(map[string]any)
		return d["status"] == "delivered"
	})
	at := d["attempts"].([]any)
	codes := []float64{}
	for _, a := range at {
		codes = append(codes, a.(map[string]any)["status_code"].(float64))
	}
	if d["delivery_id"] != calls[0].id || len(codes) != 3 || codes[0] != 500 || codes[1] != 503 || codes[2] != 204 || d["next_attempt_at"] != nil {
		t.Fatalf("delivery log: %v", d)
	}
}

// TestPayRequestDeclineGivesMoneyBack: an approval that moved the money but
// could not record itself (its DC died) loses to a later decline; the
// decline gives the money back, once.
func TestPayRequestDeclineGivesMoneyBack(t *testing.T) {
	e := newMiniAppEnv(t)
	hk := newHook(t)
	dev, _ := e.user("Dev")
	alice, _ := e.user("Alice")
	clientID, secret := e.registerHookedApp(dev.AccessToken(), "Cafe", hk.srv.URL+"/hooks", "profile", "pay")
	app := e.miniapp(clientID, secret, oidc.ScopeOpenID, "profile", "pay")
	tok := app.login(alice.AccessToken())
	if r := e.do("POST", "/v1/wallet/topups", alice.AccessToken(), `{"id":"top-1","amount":50000,"currency":"KRW"}`); r.status != 201 {
		t.Fatalf("top up: %d %s", r.status, r.raw)
	}
	r := e.do("POST", "/v1/miniapp/pay-requests", tok.AccessToken, `{"id":"latte","amount":5000,"currency":"KRW","description":"Latte"}`)
	if r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.raw)
	}
	prID := r.body["pay_request_id"].(string)
	// The approval's money move, as it happens before the approval is
	// recorded: a payment to the developer's shop under the derived id.
	if r := e.do("POST", "/v1/merchants", dev.AccessToken(), `{"name":"Cafe"}`); r.status != 201 && r.status != 200 {
		t.Fatalf("merchant: %d %s", r.status, r.raw)
	}
	qr := e.do("GET", "/v1/merchants/me/qr", dev.AccessToken(), "").body["qr"].(string)
	move := "mapr." + strings.TrimPrefix(prID, "pr_")
	if r := e.do("POST", "/v1/pay/qr", alice.AccessToken(), `{"id":"`+move+`","qr":"`+qr+`","amount":5000}`); r.status != 201 {
		t.Fatalf("the approval's payment: %d %s", r.status, r.raw)
	}
	if got := balance(t, alice, "KRW"); got != 45000 {
		t.Fatalf("after the move: %d", got)
	}
	// The decline wins: the money comes back; an approval now is refused.
	if r := e.do("POST", "/v1/pay-requests/"+prID+"/decline", alice.AccessToken(), ""); r.status != 200 || r.body["status"] != "declined" {
		t.Fatalf("decline: %d %s", r.status, r.raw)
	}
	if got := balance(t, alice, "KRW"); got != 50000 {
		t.Fatalf("after the decline: %d, want the 5,000 back", got)
	}
	if r := e.do("POST", "/v1/pay-requests/"+prID+"/approve", alice.AccessToken(), ""); r.status != 409 {
		t.Fatalf("approve after decline: %d %s", r.status, r.raw)
	}
	if r := e.do("POST", "/v1/pay-requests/"+prID+"/decline", alice.AccessToken(), ""); r.status != 200 {
		t.Fatalf("decline again: %d %s", r.status, r.raw)
	}
	if got := balance(t, alice, "KRW"); got != 50000 {
		t.Fatalf("after declining twice: %d", got)
	}
}
