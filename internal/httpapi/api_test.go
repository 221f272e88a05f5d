package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"superapp/client"
	"superapp/internal/node"
	"superapp/internal/node/nodetest"
)

const goodPassword = "violet-harbor-tangent-91"

var seq atomic.Int64

type env struct {
	t     *testing.T
	url   string
	clock *nodetest.Clock
}

func newEnv(t *testing.T) *env {
	t.Helper()
	clock := nodetest.NewClock()
	n := nodetest.Start(t, clock.Now)
	return &env{t: t, url: nodetest.URL(n), clock: clock}
}

type resp struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (r resp) errCode() string {
	e, _ := r.body["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

func (r resp) errField() string {
	e, _ := r.body["error"].(map[string]any)
	s, _ := e["field"].(string)
	return s
}

func (e *env) do(method, path, token, body string, hdr ...string) resp {
	e.t.Helper()
	req, err := http.NewRequest(method, e.url+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	r := resp{status: res.StatusCode, header: res.Header, raw: string(raw)}
	_ = json.Unmarshal(raw, &r.body)
	if res.Header.Get("X-Request-Id") == "" {
		e.t.Fatalf("%s %s: no request id", method, path)
	}
	if r.status >= 500 && r.status != 503 {
		e.t.Fatalf("%s %s: %d %s", method, path, r.status, raw)
	}
	return r
}

// user signs up and logs in a fresh user, returning a logged-in client.
func (e *env) user(name string) (*client.Client, string) {
	e.t.Helper()
	login := fmt.Sprintf("%s%d@example.com", strings.ToLower(name), seq.Add(1))
	c := client.New([]string{e.url})
	ctx := context.Background()
	if _, err := c.SignUp(ctx, login, goodPassword, name); err != nil {
		e.t.Fatalf("sign up %s: %v", name, err)
	}
	if _, err := c.Login(ctx, login, goodPassword, "test"); err != nil {
		e.t.Fatalf("login %s: %v", name, err)
	}
	return c, login
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := client.Code(err); got != code {
		t.Fatalf("error %v: code %q, want %q", err, got, code)
	}
}

func TestSignUpAndLogin(t *testing.T) {
	e := newEnv(t)
	r := e.do("POST", "/v1/accounts", "", `{"phone":"+82 10-1234-5678","password":"`+goodPassword+`","name":"Jiwoo"}`)
	if r.status != 201 || r.body["user_id"] == "" || r.body["phone"] != "+821012345678" {
		t.Fatalf("sign up: %d %s", r.status, r.raw)
	}
	if !strings.HasPrefix(r.header.Get("X-Superapp-Position"), "IDENTITY:") {
		t.Fatalf("no position token: %v", r.header)
	}
	// Same phone again: login_taken on the phone field.
	r = e.do("POST", "/v1/accounts", "", `{"phone":"+821012345678","password":"`+goodPassword+`","name":"Other"}`)
	if r.status != 409 || r.errCode() != "login_taken" || r.errField() != "phone" {
		t.Fatalf("duplicate: %d %s", r.status, r.raw)
	}
	r = e.do("POST", "/v1/sessions", "", `{"login":"+82 10 1234 5678","password":"`+goodPassword+`"}`)
	if r.status != 201 || r.body["access_token"] == nil || r.body["refresh_token"] == nil {
		t.Fatalf("login: %d %s", r.status, r.raw)
	}
	tok := r.body["access_token"].(string)
	r = e.do("GET", "/v1/me", tok, "")
	if r.status != 200 || r.body["name"] != "Jiwoo" {
		t.Fatalf("me: %d %s", r.status, r.raw)
	}
	r = e.do("POST", "/v1/sessions", "", `{"login":"+821012345678","password":"wrong-password-here"}`)
	if r.status != 401 || r.errCode() != "invalid_credentials" {
		t.Fatalf("wrong password: %d %s", r.status, r.raw)
	}
	r = e.do("POST", "/v1/sessions", "", `{"login":"nobody@example.com","password":"wrong-password-here"}`)
	if r.status != 401 || r.errCode() != "invalid_credentials" {
		t.Fatalf("unknown login: %d %s", r.status, r.raw)
	}
}

func TestBadInput(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		name, body string
		status     int
		code       string
		field      string
	}{
		{"empty", ``, 400, "malformed_json", ""},
		{"not json", `hello`, 400, "malformed_json", ""},
		{"array", `[1,2]`, 400, "malformed_json", ""},
		{"truncated", `{"email":"a@b.co"`, 400, "malformed_json", ""},
		{"trailing", `{"email":"a@b.co","password":"x","name":"n"} {}`, 400, "malformed_json", ""},
		{"unknown field", `{"email":"a@b.co","password":"` + goodPassword + `","name":"n","admin":true}`, 400, "unknown_field", "admin"},
		{"wrong type", `{"email":42,"password":"` + goodPassword + `","name":"n"}`, 400, "invalid_field", "email"},
		{"no login", `{"password":"` + goodPassword + `","name":"n"}`, 400, "invalid_field", "phone"},
		{"both logins", `{"phone":"+821099998888","email":"a@b.co","password":"` + goodPassword + `","name":"n"}`, 400, "invalid_field", "email"},
		{"bad phone", `{"phone":"010-1234","password":"` + goodPassword + `","name":"n"}`, 400, "invalid_field", "phone"},
		{"bad email", `{"email":"not-an-email@","password":"` + goodPassword + `","name":"n"}`, 400, "invalid_field", "email"},
		{"display-name email", `{"email":"Kim <kim@example.com>","password":"` + goodPassword + `","name":"n"}`, 400, "invalid_field", "email"},
		{"no name", `{"email":"a@b.co","password":"` + goodPassword + `","name":"  "}`, 400, "invalid_field", "name"},
		{"long name", `{"email":"a@b.co","password":"` + goodPassword + `","name":"` + strings.Repeat("x", 65) + `"}`, 400, "invalid_field", "name"},
		{"short password", `{"email":"a@b.co","password":"Ab1!","name":"n"}`, 422, "weak_password", "password"},
		{"common password", `{"email":"a@b.co","password":"password123","name":"n"}`, 422, "weak_password", "password"},
		{"keyboard pattern", `{"email":"a@b.co","password":"qwertyuiop1","name":"n"}`, 422, "weak_password", "password"},
		{"own name", `{"email":"chulsoo@b.co","password":"chulsoo2024!","name":"Chulsoo"}`, 422, "weak_password", "password"},
		{"oversized", `{"email":"a@b.co","password":"` + strings.Repeat("x", 20<<10) + `","name":"n"}`, 413, "body_too_large", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do("POST", "/v1/accounts", "", tc.body)
			if r.status != tc.status || r.errCode() != tc.code || r.errField() != tc.field {
				t.Fatalf("%d %s, want %d %s field %q", r.status, r.raw, tc.status, tc.code, tc.field)
			}
			e, _ := r.body["error"].(map[string]any)
			if msg, _ := e["message"].(string); msg == "" {
				t.Fatalf("no message: %s", r.raw)
			}
		})
	}
	// Nothing was half-written: none of those logins exists.
	c, _ := e.user("Checker")
	for _, login := range []string{"a@b.co", "chulsoo@b.co"} {
		if _, err := c.Lookup(context.Background(), login); client.Code(err) != "user_not_found" {
			t.Fatalf("%s exists after refused sign-ups: %v", login, err)
		}
	}
	// Routes and methods that do not exist.
	if r := e.do("GET", "/v1/nope", "", ""); r.status != 404 || r.errCode() != "route_not_found" {
		t.Fatalf("unknown route: %d %s", r.status, r.raw)
	}
	if r := e.do("PUT", "/v1/accounts", "", "{}"); r.status != 405 || r.errCode() != "method_not_allowed" {
		t.Fatalf("wrong method: %d %s", r.status, r.raw)
	}
	if r := e.do("GET", "/v1/me", c.AccessToken(), "", "X-Superapp-Position", "garbage"); r.status != 400 || r.errField() != "X-Superapp-Position" {
		t.Fatalf("bad position: %d %s", r.status, r.raw)
	}
}

func TestAuthRequired(t *testing.T) {
	e := newEnv(t)
	for _, rt := range []string{"GET /v1/me", "PATCH /v1/me", "GET /v1/sessions", "DELETE /v1/sessions/current",
		"GET /v1/users/lookup", "GET /v1/friends", "POST /v1/friends/requests", "GET /v1/blocks", "POST /v1/blocks"} {
		method, path, _ := strings.Cut(rt, " ")
		for _, tok := range []string{"", "garbage", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."} {
			r := e.do(method, path, tok, "{}")
			if r.status != 401 || r.errCode() != "unauthenticated" {
				t.Fatalf("%s with token %q: %d %s", rt, tok, r.status, r.raw)
			}
			if r.header.Get("WWW-Authenticate") == "" {
				t.Fatalf("%s: no WWW-Authenticate", rt)
			}
		}
	}
}

func TestTokenExpiryRefreshAndRevoke(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c, login := e.user("Minji")
	first := c.AccessToken()

	// Access tokens expire; the refresh token gets a new pair.
	e.clock.Advance(16 * time.Minute)
	_, err := c.Me(ctx)
	wantCode(t, err, "token_expired")
	oldRefresh := refreshOf(t, c)
	body := `{"refresh_token":"` + oldRefresh + `"}`
	r := e.do("POST", "/v1/sessions/refresh", "", body, "Idempotency-Key", "rot-1")
	if r.status != 200 || r.body["refresh_token"] == oldRefresh || r.body["access_token"] == first {
		t.Fatalf("refresh: %d %s", r.status, r.raw)
	}
	newRefresh := r.body["refresh_token"].(string)
	c.UseTokens(client.Tokens{AccessToken: r.body["access_token"].(string), RefreshToken: newRefresh, UserID: c.UserID()})
	if _, err := c.Me(ctx); err != nil {
		t.Fatalf("me after refresh: %v", err)
	}
	// A client that lost the answer retries with its key: the same answer...
	r = e.do("POST", "/v1/sessions/refresh", "", body, "Idempotency-Key", "rot-1")
	if r.status != 200 || r.body["refresh_token"] != newRefresh || r.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("retried rotation: %d %s", r.status, r.raw)
	}
	// ...but the old refresh token presented otherwise is a copy: the
	// session dies, for the thief and the owner alike.
	r = e.do("POST", "/v1/sessions/refresh", "", body)
	if r.status != 401 || r.errCode() != "session_revoked" {
		t.Fatalf("reused refresh token: %d %s", r.status, r.raw)
	}
	_, err = c.Me(ctx)
	wantCode(t, err, "session_revoked")
	r = e.do("POST", "/v1/sessions/refresh", "", `{"refresh_token":"rt1.x.0.forged"}`)
	if r.status != 401 || r.errCode() != "unauthenticated" {
		t.Fatalf("forged refresh token: %d %s", r.status, r.raw)
	}

	// Two devices: list sessions, revoke the other one, log out.
	phone, tablet := client.New([]string{e.url}), client.New([]string{e.url})
	if _, err := phone.Login(ctx, login, goodPassword, "phone"); err != nil {
		t.Fatal(err)
	}
	tt, err := tablet.Login(ctx, login, goodPassword, "tablet")
	if err != nil {
		t.Fatal(err)
	}
	ss, err := phone.Sessions(ctx)
	if err != nil || len(ss) != 2 {
		t.Fatalf("sessions: %v %+v", err, ss)
	}
	if err := phone.RevokeSession(ctx, tt.SessionID); err != nil {
		t.Fatalf("revoke tablet: %v", err)
	}
	_, err = tablet.Me(ctx)
	wantCode(t, err, "session_revoked")
	// Someone else's session cannot be revoked (nor seen to exist).
	other, _ := e.user("Other")
	ps, _ := phone.Sessions(ctx)
	err = other.RevokeSession(ctx, ps[0].SessionID)
	wantCode(t, err, "not_found")
	if _, err := phone.Me(ctx); err != nil {
		t.Fatalf("phone revoked by a stranger: %v", err)
	}
	if err := phone.Logout(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = phone.Me(ctx)
	wantCode(t, err, "session_revoked")
}

func refreshOf(t *testing.T, c *client.Client) string {
	t.Helper()
	v := c.RefreshToken()
	if v == "" {
		t.Fatal("no refresh token")
	}
	return v
}

func TestProfileAndLookup(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	a, _ := e.user("Seoyeon")
	b, bLogin := e.user("Hyun")
	name, status := "Seoyeon K", "at the beach"
	me, err := a.UpdateProfile(ctx, &name, &status)
	if err != nil || me.Name != name || me.Status != status {
		t.Fatalf("update: %v %+v", err, me)
	}
	empty := ""
	if _, err := a.UpdateProfile(ctx, &empty, nil); client.Code(err) != "invalid_field" {
		t.Fatalf("empty name: %v", err)
	}
	p, err := a.Lookup(ctx, strings.ToUpper(bLogin))
	if err != nil || p.UserID != b.UserID() || p.Name != "Hyun" {
		t.Fatalf("lookup: %v %+v", err, p)
	}
	// Lookup is by exact login only: no partial matches, no other fields.
	for _, q := range []string{"email=hyun", "email=" + bLogin[:5] + "%25", "name=Hyun", ""} {
		r := e.do("GET", "/v1/users/lookup?"+q, a.AccessToken(), "")
		if r.status != 400 && r.status != 404 {
			t.Fatalf("lookup %q: %d %s", q, r.status, r.raw)
		}
	}
	// Whoever blocked you cannot be found by you.
	if _, err := b.Block(ctx, a.UserID()); err != nil {
		t.Fatal(err)
	}
	_, err = a.Lookup(ctx, bLogin)
	wantCode(t, err, "user_not_found")
}

func TestFriends(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	a, _ := e.user("Ana")
	b, _ := e.user("Ben")
	c, _ := e.user("Cho")

	rel, err := a.RequestFriend(ctx, b.UserID())
	if err != nil || rel.Status != "requested" {
		t.Fatalf("request: %v %+v", err, rel)
	}
	in, _, _ := b.FriendRequests(ctx)
	if len(in) != 1 || in[0].UserID != a.UserID() || in[0].Name != "Ana" {
		t.Fatalf("incoming: %+v", in)
	}
	_, out, _ := a.FriendRequests(ctx)
	if len(out) != 1 || out[0].UserID != b.UserID() {
		t.Fatalf("outgoing: %+v", out)
	}
	// Only the addressee can accept.
	_, err = c.AcceptFriend(ctx, a.UserID())
	wantCode(t, err, "not_found")
	_, err = a.AcceptFriend(ctx, b.UserID())
	wantCode(t, err, "not_found")
	if rel, err = b.AcceptFriend(ctx, a.UserID()); err != nil || rel.Status != "friends" {
		t.Fatalf("accept: %v %+v", err, rel)
	}
	fs, _ := a.Friends(ctx)
	if len(fs) != 1 || fs[0].UserID != b.UserID() {
		t.Fatalf("friends: %+v", fs)
	}
	_, err = a.RequestFriend(ctx, b.UserID())
	wantCode(t, err, "already_friends")
	_, err = a.RequestFriend(ctx, a.UserID())
	wantCode(t, err, "invalid_field")
	_, err = a.RequestFriend(ctx, "nobody")
	wantCode(t, err, "user_not_found")

	// Mutual requests make a friendship; decline and cancel.
	if _, err := c.RequestFriend(ctx, a.UserID()); err != nil {
		t.Fatal(err)
	}
	if rel, err := a.RequestFriend(ctx, c.UserID()); err != nil || rel.Status != "friends" {
		t.Fatalf("mutual: %v %+v", err, rel)
	}
	if _, err := a.RemoveFriend(ctx, c.UserID()); err != nil {
		t.Fatal(err)
	}
	_, err = a.RemoveFriend(ctx, c.UserID())
	wantCode(t, err, "not_found")
	if _, err := c.RequestFriend(ctx, a.UserID()); err != nil {
		t.Fatal(err)
	}
	if _, err := a.DeclineFriend(ctx, c.UserID()); err != nil {
		t.Fatal(err)
	}
	_, err = a.DeclineFriend(ctx, c.UserID())
	wantCode(t, err, "not_found")
	if _, err := c.RequestFriend(ctx, b.UserID()); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CancelFriendRequest(ctx, b.UserID()); err != nil {
		t.Fatal(err)
	}
	if in, _, _ := b.FriendRequests(ctx); len(in) != 0 {
		t.Fatalf("cancelled request still there: %+v", in)
	}

	// Block: ends the friendship; the blocked user cannot ask again.
	if _, err := b.Block(ctx, a.UserID()); err != nil {
		t.Fatal(err)
	}
	if fs, _ := a.Friends(ctx); len(fs) != 0 {
		t.Fatalf("friends after block: %+v", fs)
	}
	_, err = a.RequestFriend(ctx, b.UserID())
	wantCode(t, err, "blocked")
	_, err = b.RequestFriend(ctx, a.UserID())
	wantCode(t, err, "blocked")
	bl, _ := b.Blocks(ctx)
	if len(bl) != 1 || bl[0].UserID != a.UserID() {
		t.Fatalf("blocks: %+v", bl)
	}
	// Only the blocker can lift a block.
	_, err = a.Unblock(ctx, b.UserID())
	wantCode(t, err, "not_found")
	if _, err := b.Unblock(ctx, a.UserID()); err != nil {
		t.Fatal(err)
	}
	if _, err := a.RequestFriend(ctx, b.UserID()); err != nil {
		t.Fatalf("request after unblock: %v", err)
	}
}

func TestIdempotencyKey(t *testing.T) {
	e := newEnv(t)
	body := `{"email":"idem@example.com","password":"` + goodPassword + `","name":"Idem"}`
	r1 := e.do("POST", "/v1/accounts", "", body, "Idempotency-Key", "k-1")
	r2 := e.do("POST", "/v1/accounts", "", body, "Idempotency-Key", "k-1")
	if r1.status != 201 || r2.status != 201 || r1.body["user_id"] != r2.body["user_id"] {
		t.Fatalf("replay: %d %s / %d %s", r1.status, r1.raw, r2.status, r2.raw)
	}
	if r2.header.Get("Idempotent-Replayed") != "true" || r1.header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("replay header: %v / %v", r1.header, r2.header)
	}
	// The same key for another request is refused, not answered wrongly.
	r3 := e.do("POST", "/v1/accounts", "", strings.Replace(body, "idem@", "other@", 1), "Idempotency-Key", "k-1")
	if r3.status != 422 || r3.errCode() != "idempotency_key_reused" {
		t.Fatalf("key reuse: %d %s", r3.status, r3.raw)
	}
	// Keys are scoped per user: two users may use the same key.
	a, _ := e.user("A")
	b, _ := e.user("B")
	c, _ := e.user("C")
	ra := e.do("POST", "/v1/friends/requests", a.AccessToken(), `{"user_id":"`+c.UserID()+`"}`, "Idempotency-Key", "same")
	rb := e.do("POST", "/v1/friends/requests", b.AccessToken(), `{"user_id":"`+c.UserID()+`"}`, "Idempotency-Key", "same")
	if ra.status != 201 || rb.status != 201 {
		t.Fatalf("scoped keys: %d %s / %d %s", ra.status, ra.raw, rb.status, rb.raw)
	}
	if in, _, _ := c.FriendRequests(context.Background()); len(in) != 2 {
		t.Fatalf("incoming: %+v", in)
	}
	// A replayed write after its effect was undone returns the original
	// answer and does not apply again.
	if _, err := c.DeclineFriend(context.Background(), a.UserID()); err != nil {
		t.Fatal(err)
	}
	ra2 := e.do("POST", "/v1/friends/requests", a.AccessToken(), `{"user_id":"`+c.UserID()+`"}`, "Idempotency-Key", "same")
	if ra2.status != 201 || ra2.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay after decline: %d %s", ra2.status, ra2.raw)
	}
	if in, _, _ := c.FriendRequests(context.Background()); len(in) != 1 {
		t.Fatalf("replay applied again: %+v", in)
	}
	if r := e.do("POST", "/v1/blocks", a.AccessToken(), `{"user_id":"x"}`, "Idempotency-Key", strings.Repeat("k", 300)); r.status != 400 || r.errField() != "Idempotency-Key" {
		t.Fatalf("long key: %d %s", r.status, r.raw)
	}
}

func TestLoginRateLimit(t *testing.T) {
	e := newEnv(t)
	_, login := e.user("Target")
	var last resp
	for i := 0; i < 6; i++ {
		last = e.do("POST", "/v1/sessions", "", `{"login":"`+login+`","password":"not-the-password"}`)
	}
	if last.status != 429 || last.errCode() != "rate_limited" || last.header.Get("Retry-After") == "" {
		t.Fatalf("6th failed login: %d %s %v", last.status, last.raw, last.header)
	}
	// Even the right password waits until the budget refills.
	r := e.do("POST", "/v1/sessions", "", `{"login":"`+login+`","password":"`+goodPassword+`"}`)
	if r.status != 429 {
		t.Fatalf("right password while limited: %d %s", r.status, r.raw)
	}
	e.clock.Advance(time.Minute)
	r = e.do("POST", "/v1/sessions", "", `{"login":"`+login+`","password":"`+goodPassword+`"}`)
	if r.status != 201 {
		t.Fatalf("after waiting: %d %s", r.status, r.raw)
	}
	// Concurrent wrong passwords cannot all slip past the account's budget.
	_, victim := e.user("Victim")
	var limited atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 12; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("POST", e.url+"/v1/sessions", strings.NewReader(`{"login":"`+victim+`","password":"not-the-password"}`))
			if res, err := http.DefaultClient.Do(req); err == nil {
				if res.StatusCode == 429 {
					limited.Add(1)
				}
				res.Body.Close()
			}
		}()
	}
	wg.Wait()
	if limited.Load() < 7 {
		t.Fatalf("12 concurrent wrong passwords: only %d limited, want at least 7", limited.Load())
	}
	// Per client address: many accounts from one address are limited too.
	for i := 0; i < 40; i++ {
		last = e.do("POST", "/v1/sessions", "", fmt.Sprintf(`{"login":"spray%d@example.com","password":"whatever-it-is"}`, i))
	}
	if last.status != 429 || !strings.Contains(last.raw, "address") {
		t.Fatalf("spraying from one address: %d %s", last.status, last.raw)
	}
}

func TestOps(t *testing.T) {
	e := newEnv(t)
	if r := e.do("GET", "/healthz", "", ""); r.status != 200 {
		t.Fatalf("healthz: %d", r.status)
	}
	if r := e.do("GET", "/readyz", "", ""); r.status != 200 || r.body["status"] != "ready" {
		t.Fatalf("readyz: %d %s", r.status, r.raw)
	}
	e.do("POST", "/v1/accounts", "", `{}`)
	r := e.do("GET", "/metrics", "", "")
	if r.status != 200 || !strings.Contains(r.raw, `superapp_http_requests_total{code="400",feature="identity",route="POST /v1/accounts"}`) ||
		!strings.Contains(r.raw, `superapp_stream_applied_seq{stream="IDENTITY"}`) {
		t.Fatalf("metrics: %d %s", r.status, r.raw)
	}
	// A single node lists itself, as soon as it is ready and to anyone.
	if r := e.do("GET", "/v1/endpoints", "", ""); r.status != 200 || !strings.Contains(r.raw, `{"dc":"dc1","url":"`+e.url+`"}`) {
		t.Fatalf("endpoints: %d %s (want %s)", r.status, r.raw, e.url)
	}
	if r := e.do("GET", "/v1/openapi.yaml", "", ""); r.status != 200 || !strings.HasPrefix(r.raw, "openapi: 3.1") {
		t.Fatalf("openapi: %d %.80s", r.status, r.raw)
	}
	// A position this node has not reached: wait (bounded), then 503 so
	// the client tries another DC instead of reading stale data.
	c, _ := e.user("Pos")
	r = e.do("GET", "/v1/me", c.AccessToken(), "", "X-Superapp-Position", "IDENTITY:999999")
	if r.status != 503 || r.errCode() != "position_not_reached" || r.header.Get("Retry-After") == "" {
		t.Fatalf("unreached position: %d %s", r.status, r.raw)
	}
	if r = e.do("GET", "/v1/me", c.AccessToken(), "", "X-Superapp-Position", c.Position()); r.status != 200 {
		t.Fatalf("reached position: %d %s", r.status, r.raw)
	}
	r = e.do("GET", "/healthz", "", "", "X-Request-Id", "my-trace-123")
	if r.header.Get("X-Request-Id") != "my-trace-123" {
		t.Fatalf("request id not echoed: %v", r.header)
	}
}

func TestOpsToken(t *testing.T) {
	n := nodetest.StartConfig(t, node.Config{OpsToken: "ops-secret"})
	e := &env{t: t, url: nodetest.URL(n)}
	c, _ := e.user("NotAnOperator")
	for _, tok := range []string{"", "wrong", c.AccessToken()} {
		if r := e.do("GET", "/metrics", tok, ""); r.status != 403 || r.errCode() != "forbidden" {
			t.Fatalf("metrics with token %.10q: %d %s", tok, r.status, r.raw)
		}
		if r := e.do("GET", "/readyz", tok, ""); r.status != 200 || r.body["streams"] != nil || r.body["status"] != "ready" {
			t.Fatalf("readyz without ops token: %d %s", r.status, r.raw)
		}
	}
	if r := e.do("GET", "/metrics", "ops-secret", ""); r.status != 200 || !strings.Contains(r.raw, "superapp_state_store_disk_bytes ") ||
		!strings.Contains(r.raw, "superapp_state_store_cache_bytes ") {
		t.Fatalf("metrics with ops token: %d", r.status)
	}
	if r := e.do("GET", "/readyz", "ops-secret", ""); r.status != 200 || r.body["streams"] == nil {
		t.Fatalf("readyz with ops token: %d %s", r.status, r.raw)
	}
	// Status and evacuation: operators only.
	for _, tok := range []string{"", "wrong", c.AccessToken()} {
		if r := e.do("GET", "/ops/status", tok, ""); r.status != 403 || r.errCode() != "forbidden" {
			t.Fatalf("status with token %.10q: %d %s", tok, r.status, r.raw)
		}
		if r := e.do("POST", "/ops/evacuate", tok, `{"dc":"dc1"}`); r.status != 403 || r.errCode() != "forbidden" {
			t.Fatalf("evacuate with token %.10q: %d %s", tok, r.status, r.raw)
		}
		if r := e.do("POST", "/ops/checkpoint", tok, ""); r.status != 403 || r.errCode() != "forbidden" {
			t.Fatalf("checkpoint with token %.10q: %d %s", tok, r.status, r.raw)
		}
	}
	// A checkpoint of the state store, with the position of every stream.
	if r := e.do("POST", "/ops/checkpoint", "ops-secret", ""); r.status != 200 || r.body["dc"] != "dc1" || r.body["size"].(float64) <= 0 ||
		r.body["positions"].(map[string]any)["IDENTITY"].(float64) < 1 {
		t.Fatalf("checkpoint: %d %s", r.status, r.raw)
	}
	r := e.do("GET", "/ops/status", "ops-secret", "")
	if r.status != 200 || r.body["asked_dc"] != "dc1" || !strings.Contains(r.raw, `"IDENTITY"`) || !strings.Contains(r.raw, `"healthy":true`) {
		t.Fatalf("status: %d %s", r.status, r.raw)
	}
	for body, field := range map[string]string{`{"dc":"no such/dc"}`: "dc", `{"dc":"dc9"}`: "dc", `{}`: "dc"} {
		if r := e.do("POST", "/ops/evacuate", "ops-secret", body); r.status != 400 || r.errField() != field {
			t.Fatalf("evacuate %s: %d %s", body, r.status, r.raw)
		}
	}
	// Evacuated, the node serves but reports itself not ready, so balancers
	// drain it; the mark is in the log, so it outlives a restart.
	if r := e.do("POST", "/ops/evacuate", "ops-secret", `{"dc":"dc1"}`); r.status != 200 || r.body["evacuated"] != true {
		t.Fatalf("evacuate: %d %s", r.status, r.raw)
	}
	waitFor(t, func() bool {
		r := e.do("GET", "/readyz", "ops-secret", "")
		return r.status == 503 && strings.Contains(r.raw, "evacuated")
	})
	if _, err := c.Me(context.Background()); err != nil {
		t.Fatalf("an evacuated node still serves: %v", err)
	}
	if r := e.do("POST", "/ops/evacuate", "ops-secret", `{"dc":"dc1","undo":true}`); r.status != 200 || r.body["evacuated"] != false {
		t.Fatalf("undo: %d %s", r.status, r.raw)
	}
	waitFor(t, func() bool { return e.do("GET", "/readyz", "", "").status == 200 })
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !ok(); {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
