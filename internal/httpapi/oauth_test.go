package httpapi_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

const redirectURI = "http://127.0.0.1:5555/cb"

// The OIDC library logs every refused request through slog's default
// logger; the tests refuse many on purpose.
func init() { slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil))) }

// registerApp registers a mini-app as the developer with token and returns
// its client id and secret.
func (e *env) registerApp(token, name string, scopes ...string) (string, string) {
	e.t.Helper()
	body, _ := json.Marshal(map[string]any{"name": name, "redirect_uris": []string{redirectURI}, "scopes": scopes,
		"webhook_url": "https://miniapp.example.com/hooks/superapp"})
	r := e.do("POST", "/v1/oauth/clients", token, string(body))
	if r.status != http.StatusCreated {
		e.t.Fatalf("register app: %d %s", r.status, r.raw)
	}
	id, _ := r.body["client_id"].(string)
	secret, _ := r.body["client_secret"].(string)
	if id == "" || !strings.HasPrefix(secret, "sas1_") || !strings.HasPrefix(r.header.Get("X-Superapp-Position"), "OAUTH:") {
		e.t.Fatalf("register app: %s %v", r.raw, r.header)
	}
	return id, secret
}

// miniapp is a mini-app's backend: a standard OAuth 2.0 / OIDC client
// (golang.org/x/oauth2 and go-oidc) against the node's issuer.
type miniapp struct {
	t        *testing.T
	e        *env
	hc       *http.Client
	ctx      context.Context
	provider *oidc.Provider
	conf     oauth2.Config
}

func (e *env) miniapp(clientID, secret string, scopes ...string) *miniapp {
	e.t.Helper()
	// Redirects are the browser's business: the test reads Location.
	hc := &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	ctx := oidc.ClientContext(context.Background(), hc)
	provider, err := oidc.NewProvider(ctx, e.url+"/oidc")
	if err != nil {
		e.t.Fatalf("discovery: %v", err)
	}
	conf := oauth2.Config{ClientID: clientID, ClientSecret: secret, Endpoint: provider.Endpoint(), RedirectURL: redirectURI, Scopes: scopes}
	conf.Endpoint.AuthStyle = oauth2.AuthStyleInHeader
	return &miniapp{t: e.t, e: e, hc: hc, ctx: ctx, provider: provider, conf: conf}
}

// get fetches a URL without following redirects.
func (m *miniapp) get(u string) *http.Response {
	m.t.Helper()
	resp, err := m.hc.Get(u)
	if err != nil {
		m.t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// authorize starts a login as the browser would and returns the request id
// the consent page is given.
func (m *miniapp) authorize(state, nonce, verifier string) string {
	m.t.Helper()
	resp := m.get(m.conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce)))
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, m.e.url+"/oauth/consent?request=") {
		m.t.Fatalf("authorize: %d Location %q", resp.StatusCode, loc)
	}
	u, _ := url.Parse(loc)
	return u.Query().Get("request")
}

// authorizeError starts a login with raw query parameters and returns the
// error the mini-app's redirect URI receives.
func (m *miniapp) authorizeError(q url.Values) (code, state string) {
	m.t.Helper()
	resp := m.get(m.conf.Endpoint.AuthURL + "?" + q.Encode())
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || loc == nil || !strings.HasPrefix(loc.String(), redirectURI) {
		m.t.Fatalf("authorize %v: %d Location %q, want a redirect to the mini-app", q, resp.StatusCode, resp.Header.Get("Location"))
	}
	return loc.Query().Get("error"), loc.Query().Get("state")
}

func (m *miniapp) exchange(code, verifier string) (*oauth2.Token, error) {
	return m.conf.Exchange(m.ctx, code, oauth2.VerifierOption(verifier))
}

// approve approves a request as the user with token and returns the code.
func (e *env) approve(token, requestID, wantState string) string {
	e.t.Helper()
	r := e.do("POST", "/v1/oauth/requests/"+requestID+"/approve", token, "")
	if r.status != http.StatusOK {
		e.t.Fatalf("approve: %d %s", r.status, r.raw)
	}
	to, _ := r.body["redirect_to"].(string)
	u, err := url.Parse(to)
	if err != nil || !strings.HasPrefix(to, redirectURI+"?") || u.Query().Get("state") != wantState || u.Query().Get("code") == "" {
		e.t.Fatalf("approve: redirect_to %q", to)
	}
	return u.Query().Get("code")
}

// login runs the whole flow for the user with token and returns the tokens.
func (m *miniapp) login(token string) *oauth2.Token {
	m.t.Helper()
	verifier := oauth2.GenerateVerifier()
	id := m.authorize("st-"+verifier[:6], "n-"+verifier[:6], verifier)
	code := m.e.approve(token, id, "st-"+verifier[:6])
	tok, err := m.exchange(code, verifier)
	if err != nil {
		m.t.Fatalf("exchange: %v", err)
	}
	return tok
}

// postForm posts a form to a provider endpoint as a mini-app (HTTP Basic).
func (e *env) postForm(path string, form url.Values, clientID, secret string) (int, map[string]any) {
	e.t.Helper()
	req, _ := http.NewRequest("POST", e.url+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(clientID, secret)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(res.Body).Decode(&body)
	return res.StatusCode, body
}

func oauthCode(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return re.ErrorCode
	}
	return ""
}

// miniappGet calls a resource with a mini-app's access token.
func (e *env) miniappGet(path, accessToken string) resp {
	e.t.Helper()
	return e.do("GET", path, accessToken, "")
}

func TestLoginWithSuperapp(t *testing.T) {
	e := newEnv(t)
	dev, _ := e.user("Dev")
	alice, _ := e.user("Alice")
	me, err := alice.Me(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	clientID, secret := e.registerApp(dev.AccessToken(), "Taxi Plus", "profile", "friends")
	app := e.miniapp(clientID, secret, oidc.ScopeOpenID, "profile", oidc.ScopeOfflineAccess)

	// Discovery: our issuer, EdDSA ID tokens, PKCE S256 only.
	var disc struct {
		Issuer string   `json:"issuer"`
		Algs   []string `json:"id_token_signing_alg_values_supported"`
		PKCE   []string `json:"code_challenge_methods_supported"`
	}
	if err := app.provider.Claims(&disc); err != nil {
		t.Fatal(err)
	}
	if disc.Issuer != e.url+"/oidc" || !slices.Equal(disc.Algs, []string{"EdDSA"}) || !slices.Equal(disc.PKCE, []string{"S256"}) {
		t.Fatalf("discovery: %+v", disc)
	}

	verifier := oauth2.GenerateVerifier()
	reqID := app.authorize("st4te", "n0nce", verifier)
	// The consent page shows who asks for what, and where the answer goes.
	r := e.do("GET", "/v1/oauth/requests/"+reqID, alice.AccessToken(), "")
	if r.status != 200 || r.body["status"] != "pending" || r.body["redirect_host"] != "127.0.0.1:5555" ||
		r.body["client"].(map[string]any)["name"] != "Taxi Plus" || !strings.Contains(r.raw, `"scopes":["openid","profile","offline_access"]`) {
		t.Fatalf("consent view: %d %s", r.status, r.raw)
	}
	code := e.approve(alice.AccessToken(), reqID, "st4te")
	tok, err := app.exchange(code, verifier)
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}

	// The ID token: EdDSA, verified with the published key, for Alice.
	raw, _ := tok.Extra("id_token").(string)
	hdr, _ := base64.RawURLEncoding.DecodeString(strings.Split(raw, ".")[0])
	if !strings.Contains(string(hdr), `"alg":"EdDSA"`) {
		t.Fatalf("id token header %s", hdr)
	}
	idt, err := app.provider.Verifier(&oidc.Config{ClientID: clientID}).Verify(app.ctx, raw)
	if err != nil {
		t.Fatalf("verify id token: %v", err)
	}
	if idt.Subject != me.UserID || idt.Nonce != "n0nce" {
		t.Fatalf("id token sub %q nonce %q, want %q n0nce", idt.Subject, idt.Nonce, me.UserID)
	}
	if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
		t.Fatalf("at_hash: %v", err)
	}

	// Userinfo and the mini-app resources, gated by scope.
	ui, err := app.provider.UserInfo(app.ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Name string `json:"name"`
	}
	if err := ui.Claims(&claims); err != nil || ui.Subject != me.UserID || claims.Name != "Alice" {
		t.Fatalf("userinfo: %v %q %+v", err, ui.Subject, claims)
	}
	if r := e.miniappGet("/v1/miniapp/me", tok.AccessToken); r.status != 200 || r.body["name"] != "Alice" || r.body["user_id"] != me.UserID {
		t.Fatalf("miniapp me: %d %s", r.status, r.raw)
	}
	// Registered for friends, but this login did not ask for it.
	if r := e.miniappGet("/v1/miniapp/friends", tok.AccessToken); r.status != 403 || r.errCode() != "insufficient_scope" {
		t.Fatalf("miniapp friends without the scope: %d %s", r.status, r.raw)
	}
	// Introspection answers the token's own mini-app only.
	if st, body := e.postForm("/oidc/oauth/introspect", url.Values{"token": {tok.AccessToken}}, clientID, secret); st != 200 ||
		body["active"] != true || body["sub"] != me.UserID || body["client_id"] != clientID || body["scope"] != "openid profile offline_access" {
		t.Fatalf("introspect: %d %v", st, body)
	}
	otherID, otherSecret := e.registerApp(dev.AccessToken(), "Other App")
	if st, body := e.postForm("/oidc/oauth/introspect", url.Values{"token": {tok.AccessToken}}, otherID, otherSecret); st != 200 || body["active"] != false {
		t.Fatalf("introspect by another app: %d %v", st, body)
	}
	// A superapp session token is not a mini-app token, and vice versa.
	if r := e.miniappGet("/v1/miniapp/me", alice.AccessToken()); r.status != 401 {
		t.Fatalf("miniapp me with a session token: %d %s", r.status, r.raw)
	}
	if r := e.do("GET", "/v1/me", tok.AccessToken, ""); r.status != 401 {
		t.Fatalf("/v1/me with a mini-app token: %d %s", r.status, r.raw)
	}

	// Refresh rotates the refresh token; the new access token works.
	old := *tok
	tok.Expiry = time.Now().Add(-time.Minute)
	nt, err := app.conf.TokenSource(app.ctx, tok).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if nt.RefreshToken == "" || nt.RefreshToken == old.RefreshToken || nt.AccessToken == old.AccessToken {
		t.Fatalf("refresh did not rotate: %+v", nt)
	}
	if r := e.miniappGet("/v1/miniapp/me", nt.AccessToken); r.status != 200 {
		t.Fatalf("miniapp me after refresh: %d %s", r.status, r.raw)
	}

	// Alice sees the grant; the consent view shows the request redeemed.
	r = e.do("GET", "/v1/oauth/grants", alice.AccessToken(), "")
	grants, _ := r.body["grants"].([]any)
	if r.status != 200 || len(grants) != 1 || !strings.Contains(r.raw, `"name":"Taxi Plus"`) {
		t.Fatalf("grants: %d %s", r.status, r.raw)
	}
	if r := e.do("GET", "/v1/oauth/requests/"+reqID, alice.AccessToken(), ""); r.body["status"] != "redeemed" {
		t.Fatalf("request after redemption: %s", r.raw)
	}

	// The library's unauthenticated callback would mint codes: not served.
	if r := e.do("GET", "/oidc/authorize/callback?id="+url.QueryEscape(reqID), "", ""); r.status != 404 || r.errCode() != "route_not_found" {
		t.Fatalf("authorize callback: %d %s", r.status, r.raw)
	}

	// Another mini-app cannot revoke it; its own mini-app revokes its
	// refresh token, and the grant ends.
	if st, _ := e.postForm("/oidc/revoke", url.Values{"token": {nt.RefreshToken}}, otherID, otherSecret); st != 200 {
		t.Fatalf("revoke by another app: %d", st)
	}
	if r := e.miniappGet("/v1/miniapp/me", nt.AccessToken); r.status != 200 {
		t.Fatalf("after another app's revocation: %d %s", r.status, r.raw)
	}
	if st, _ := e.postForm("/oidc/revoke", url.Values{"token": {nt.RefreshToken}}, clientID, "sas1_wrong"); st != 401 {
		t.Fatalf("revoke with a wrong secret: %d", st)
	}
	if st, _ := e.postForm("/oidc/revoke", url.Values{"token": {nt.RefreshToken}}, clientID, secret); st != 200 {
		t.Fatalf("revoke: %d", st)
	}
	if r := e.miniappGet("/v1/miniapp/me", nt.AccessToken); r.status != 401 || r.errCode() != "session_revoked" {
		t.Fatalf("miniapp me after the app revoked: %d %s", r.status, r.raw)
	}
}

func TestMiniAppRegistration(t *testing.T) {
	e := newEnv(t)
	dev, _ := e.user("Dev")
	other, _ := e.user("Other")
	for _, tc := range []struct{ name, body, field string }{
		{"no name", `{"name":" ","redirect_uris":["https://a.example/cb"]}`, "name"},
		{"no redirect", `{"name":"A","redirect_uris":[]}`, "redirect_uris"},
		{"http redirect", `{"name":"A","redirect_uris":["http://a.example/cb"]}`, "redirect_uris"},
		{"relative redirect", `{"name":"A","redirect_uris":["/cb"]}`, "redirect_uris"},
		{"fragment", `{"name":"A","redirect_uris":["https://a.example/cb#x"]}`, "redirect_uris"},
		{"custom scheme", `{"name":"A","redirect_uris":["myapp://cb"]}`, "redirect_uris"},
		{"webhook http", `{"name":"A","redirect_uris":["https://a.example/cb"],"webhook_url":"http://a.example/h"}`, "webhook_url"},
		{"unknown scope", `{"name":"A","redirect_uris":["https://a.example/cb"],"scopes":["admin"]}`, "scopes"},
		{"wrong type", `{"name":"A","redirect_uris":"https://a.example/cb"}`, "redirect_uris"},
	} {
		if r := e.do("POST", "/v1/oauth/clients", dev.AccessToken(), tc.body); r.status != 400 || r.errField() != tc.field {
			t.Errorf("%s: %d %s, want 400 on %s", tc.name, r.status, r.raw, tc.field)
		}
	}
	if r := e.do("POST", "/v1/oauth/clients", "", `{"name":"A","redirect_uris":["https://a.example/cb"]}`); r.status != 401 {
		t.Fatalf("anonymous registration: %d", r.status)
	}

	// An Idempotency-Key retry returns the same app and the same secret.
	body := `{"name":"Food Now","redirect_uris":["https://food.example/cb","http://localhost:3000/cb"],"scopes":["profile","pay","pay"]}`
	r1 := e.do("POST", "/v1/oauth/clients", dev.AccessToken(), body, "Idempotency-Key", "app-1")
	r2 := e.do("POST", "/v1/oauth/clients", dev.AccessToken(), body, "Idempotency-Key", "app-1")
	if r1.status != 201 || r2.status != 201 || r1.body["client_secret"] != r2.body["client_secret"] ||
		r1.body["client_id"] != r2.body["client_id"] || r2.header.Get("Idempotent-Replayed") != "true" ||
		!strings.Contains(r1.raw, `"scopes":["profile","pay"]`) {
		t.Fatalf("idempotent registration:\n%s\n%s", r1.raw, r2.raw)
	}
	id := r1.body["client_id"].(string)

	// Reading: the owner yes, anyone else is forbidden.
	if r := e.do("GET", "/v1/oauth/clients/"+id, dev.AccessToken(), ""); r.status != 200 || r.body["name"] != "Food Now" || r.body["client_secret"] != nil {
		t.Fatalf("own app: %d %s", r.status, r.raw)
	}
	if r := e.do("GET", "/v1/oauth/clients/"+id, other.AccessToken(), ""); r.status != 403 || r.errCode() != "forbidden" {
		t.Fatalf("another's app: %d %s", r.status, r.raw)
	}
	if r := e.do("POST", "/v1/oauth/clients/"+id+"/secret", other.AccessToken(), ""); r.status != 403 || r.errCode() != "forbidden" {
		t.Fatalf("rotate another's app: %d %s", r.status, r.raw)
	}
	if r := e.do("GET", "/v1/oauth/clients/nope.1", dev.AccessToken(), ""); r.status != 404 {
		t.Fatalf("unknown app: %d %s", r.status, r.raw)
	}
	if r := e.do("GET", "/v1/oauth/clients", other.AccessToken(), ""); r.status != 200 || strings.Contains(r.raw, id) {
		t.Fatalf("another's list: %d %s", r.status, r.raw)
	}
	if r := e.do("GET", "/v1/oauth/clients", dev.AccessToken(), ""); r.status != 200 || !strings.Contains(r.raw, id) {
		t.Fatalf("own list: %d %s", r.status, r.raw)
	}

	// Rotation: the old secret stops working at the token endpoint.
	r := e.do("POST", "/v1/oauth/clients/"+id+"/secret", dev.AccessToken(), "")
	newSecret, _ := r.body["client_secret"].(string)
	if r.status != 200 || newSecret == "" || newSecret == r1.body["client_secret"] || r.body["secret_version"] != float64(2) {
		t.Fatalf("rotate: %d %s", r.status, r.raw)
	}
	alice, _ := e.user("Alice")
	oldApp := e.miniapp(id, r1.body["client_secret"].(string), oidc.ScopeOpenID)
	oldApp.conf.RedirectURL = "https://food.example/cb"
	verifier := oauth2.GenerateVerifier()
	reqID := oldApp.authorize("s", "n", verifier)
	rr := e.do("POST", "/v1/oauth/requests/"+reqID+"/approve", alice.AccessToken(), "")
	u, _ := url.Parse(rr.body["redirect_to"].(string))
	code := u.Query().Get("code")
	if _, err := oldApp.exchange(code, verifier); oauthCode(err) != "invalid_client" {
		t.Fatalf("old secret: %v, want invalid_client", err)
	}
	newApp := e.miniapp(id, newSecret, oidc.ScopeOpenID)
	newApp.conf.RedirectURL = "https://food.example/cb"
	if _, err := newApp.exchange(code, verifier); err != nil {
		t.Fatalf("new secret: %v", err)
	}
}

func TestLoginWithSuperappRefused(t *testing.T) {
	e := newEnv(t)
	dev, _ := e.user("Dev")
	alice, _ := e.user("Alice")
	bob, _ := e.user("Bob")
	clientID, secret := e.registerApp(dev.AccessToken(), "Chat Bot", "friends")
	app := e.miniapp(clientID, secret, oidc.ScopeOpenID, "friends", oidc.ScopeOfflineAccess)
	verifier := oauth2.GenerateVerifier()
	challenge := oauth2.S256ChallengeFromVerifier(verifier)
	base := func() url.Values {
		return url.Values{"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {redirectURI},
			"scope": {"openid friends"}, "state": {"xyz"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}
	}

	t.Run("authorize", func(t *testing.T) {
		q := base()
		q.Del("code_challenge")
		q.Del("code_challenge_method")
		if code, state := app.authorizeError(q); code != "invalid_request" || state != "xyz" {
			t.Errorf("no PKCE: error=%q state=%q", code, state)
		}
		q = base()
		q.Set("code_challenge", verifier)
		q.Set("code_challenge_method", "plain")
		if code, _ := app.authorizeError(q); code != "invalid_request" {
			t.Errorf("plain PKCE: error=%q", code)
		}
		q = base()
		q.Set("scope", "openid friends pay")
		if code, _ := app.authorizeError(q); code != "invalid_scope" {
			t.Errorf("unregistered scope: error=%q", code)
		}
		q = base()
		q.Set("scope", "friends")
		if code, _ := app.authorizeError(q); code != "invalid_scope" {
			t.Errorf("no openid: error=%q", code)
		}
		q = base()
		q.Set("prompt", "none")
		if code, _ := app.authorizeError(q); code != "login_required" {
			t.Errorf("prompt=none: error=%q", code)
		}
		// A redirect URI that is not registered gets no redirect at all.
		q = base()
		q.Set("redirect_uri", "http://127.0.0.1:5555/evil")
		if resp := app.get(app.conf.Endpoint.AuthURL + "?" + q.Encode()); resp.StatusCode != 400 || resp.Header.Get("Location") != "" {
			t.Errorf("unregistered redirect_uri: %d %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		q = base()
		q.Set("client_id", "nope.1")
		if resp := app.get(app.conf.Endpoint.AuthURL + "?" + q.Encode()); resp.StatusCode != 400 {
			t.Errorf("unknown client: %d", resp.StatusCode)
		}
	})

	t.Run("consent", func(t *testing.T) {
		v := oauth2.GenerateVerifier()
		id := app.authorize("s1", "n1", v)
		r := e.do("POST", "/v1/oauth/requests/"+id+"/deny", alice.AccessToken(), "")
		to, _ := r.body["redirect_to"].(string)
		if r.status != 200 || !strings.Contains(to, "error=access_denied") || !strings.Contains(to, "state=s1") {
			t.Fatalf("deny: %d %s", r.status, r.raw)
		}
		if r := e.do("POST", "/v1/oauth/requests/"+id+"/approve", alice.AccessToken(), ""); r.status != 409 || r.errCode() != "conflict" {
			t.Fatalf("approve after deny: %d %s", r.status, r.raw)
		}
		if r := e.do("GET", "/v1/oauth/requests/nope.1", alice.AccessToken(), ""); r.status != 404 {
			t.Fatalf("unknown request: %d %s", r.status, r.raw)
		}
		if r := e.do("POST", "/v1/oauth/requests/"+id+"/approve", "", ""); r.status != 401 {
			t.Fatalf("anonymous approve: %d %s", r.status, r.raw)
		}
		// Approved by Alice, it cannot be approved again by Bob.
		id = app.authorize("s2", "n2", v)
		e.approve(alice.AccessToken(), id, "s2")
		if r := e.do("POST", "/v1/oauth/requests/"+id+"/approve", bob.AccessToken(), ""); r.status != 409 {
			t.Fatalf("second approval: %d %s", r.status, r.raw)
		}
		// A request not decided within 10 minutes expires.
		id = app.authorize("s3", "n3", v)
		e.clock.Advance(11 * time.Minute)
		if r := e.do("POST", "/v1/oauth/requests/"+id+"/approve", alice.AccessToken(), ""); r.status != 410 || r.errCode() != "request_expired" {
			t.Fatalf("late approval: %d %s", r.status, r.raw)
		}
	})

	// Fresh sessions: the consent subtest moved the clock.
	alice, _ = e.user("Alice")
	bob, _ = e.user("Bob")

	t.Run("token", func(t *testing.T) {
		v := oauth2.GenerateVerifier()
		code := e.approve(alice.AccessToken(), app.authorize("s", "n", v), "s")
		wrong := *app
		wrong.conf.ClientSecret = "sas1_wrong"
		if _, err := wrong.exchange(code, v); oauthCode(err) != "invalid_client" {
			t.Fatalf("wrong secret: %v", err)
		}
		if _, err := app.exchange(code, oauth2.GenerateVerifier()); oauthCode(err) != "invalid_grant" {
			t.Fatalf("wrong verifier: %v", err)
		}
		if _, err := app.conf.Exchange(app.ctx, code); oauthCode(err) != "invalid_request" {
			t.Fatalf("no verifier: %v", err)
		}
		other := *app
		other.conf.RedirectURL = "http://127.0.0.1:5555/other"
		if _, err := other.exchange(code, v); oauthCode(err) != "invalid_grant" {
			t.Fatalf("other redirect_uri: %v", err)
		}
		// None of those used the code up.
		tok, err := app.exchange(code, v)
		if err != nil {
			t.Fatal(err)
		}
		// The same code again at once is a retry: the same grant.
		again, err := app.exchange(code, v)
		if err != nil {
			t.Fatalf("retry within a minute: %v", err)
		}
		if again.RefreshToken != tok.RefreshToken {
			t.Fatal("a retried exchange made another grant")
		}
		// Later it is a reuse: refused, and the grant it made is revoked.
		e.clock.Advance(2 * time.Minute)
		if _, err := app.exchange(code, v); oauthCode(err) != "invalid_grant" {
			t.Fatalf("reused code: %v", err)
		}
		if r := e.miniappGet("/v1/miniapp/friends", tok.AccessToken); r.status != 401 || r.errCode() != "session_revoked" {
			t.Fatalf("token of a reused code: %d %s", r.status, r.raw)
		}
	})

	t.Run("refresh reuse", func(t *testing.T) {
		tok := app.login(alice.AccessToken())
		old := *tok
		tok.Expiry = time.Now().Add(-time.Minute)
		nt, err := app.conf.TokenSource(app.ctx, tok).Token()
		if err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(2 * time.Minute)
		old.Expiry = time.Now().Add(-time.Minute)
		if _, err := app.conf.TokenSource(app.ctx, &old).Token(); oauthCode(err) != "invalid_grant" {
			t.Fatalf("reused refresh token: %v", err)
		}
		if r := e.miniappGet("/v1/miniapp/friends", nt.AccessToken); r.status != 401 {
			t.Fatalf("after refresh reuse: %d %s", r.status, r.raw)
		}
		nt.Expiry = time.Now().Add(-time.Minute)
		if _, err := app.conf.TokenSource(app.ctx, nt).Token(); oauthCode(err) != "invalid_grant" {
			t.Fatalf("refresh after the grant was revoked: %v", err)
		}
	})

	t.Run("scopes", func(t *testing.T) {
		alice, _ := e.user("Alice")
		tok := app.login(alice.AccessToken())
		if r := e.miniappGet("/v1/miniapp/friends", tok.AccessToken); r.status != 200 {
			t.Fatalf("friends: %d %s", r.status, r.raw)
		}
		if r := e.miniappGet("/v1/miniapp/me", tok.AccessToken); r.status != 403 || r.errCode() != "insufficient_scope" ||
			!strings.Contains(r.header.Get("WWW-Authenticate"), `insufficient_scope`) {
			t.Fatalf("me without profile: %d %s", r.status, r.raw)
		}
		ui, err := app.provider.UserInfo(app.ctx, oauth2.StaticTokenSource(tok))
		var claims map[string]any
		if err != nil || ui.Claims(&claims) != nil || claims["name"] != nil || ui.Subject == "" {
			t.Fatalf("userinfo without profile: %v %v", err, claims)
		}
		if r := e.miniappGet("/v1/miniapp/me", "garbage"); r.status != 401 || r.errCode() != "unauthenticated" {
			t.Fatalf("garbage token: %d %s", r.status, r.raw)
		}
		if r := e.miniappGet("/v1/miniapp/me", ""); r.status != 401 {
			t.Fatalf("no token: %d %s", r.status, r.raw)
		}
	})

	t.Run("revoke", func(t *testing.T) {
		alice, _ := e.user("Alice")
		tok := app.login(alice.AccessToken())
		r := e.do("GET", "/v1/oauth/grants", alice.AccessToken(), "")
		grants, _ := r.body["grants"].([]any)
		if len(grants) != 1 {
			t.Fatalf("grants: %s", r.raw)
		}
		gid := grants[0].(map[string]any)["grant_id"].(string)
		if r := e.do("DELETE", "/v1/oauth/grants/"+gid, bob.AccessToken(), ""); r.status != 404 {
			t.Fatalf("bob revokes alice's grant: %d %s", r.status, r.raw)
		}
		if r := e.miniappGet("/v1/miniapp/friends", tok.AccessToken); r.status != 200 {
			t.Fatalf("after bob's attempt: %d %s", r.status, r.raw)
		}
		r = e.do("DELETE", "/v1/oauth/grants/"+gid, alice.AccessToken(), "")
		if r.status != 200 || r.body["revoked_at"] == nil {
			t.Fatalf("revoke: %d %s", r.status, r.raw)
		}
		if r := e.miniappGet("/v1/miniapp/friends", tok.AccessToken); r.status != 401 || r.errCode() != "session_revoked" {
			t.Fatalf("after revocation: %d %s", r.status, r.raw)
		}
		if _, err := app.provider.UserInfo(app.ctx, oauth2.StaticTokenSource(tok)); err == nil {
			t.Fatal("userinfo after revocation")
		}
		tok.Expiry = time.Now().Add(-time.Minute)
		if _, err := app.conf.TokenSource(app.ctx, tok).Token(); oauthCode(err) != "invalid_grant" {
			t.Fatalf("refresh after revocation: %v", err)
		}
		if r := e.do("GET", "/v1/oauth/grants", alice.AccessToken(), ""); strings.Contains(r.raw, gid) {
			t.Fatalf("revoked grant still listed: %s", r.raw)
		}
	})

	t.Run("expiry", func(t *testing.T) {
		alice, _ := e.user("Alice")
		tok := app.login(alice.AccessToken())
		e.clock.Advance(16 * time.Minute)
		if r := e.miniappGet("/v1/miniapp/friends", tok.AccessToken); r.status != 401 || r.errCode() != "token_expired" {
			t.Fatalf("expired token: %d %s", r.status, r.raw)
		}
		tok.Expiry = time.Now().Add(-time.Minute)
		nt, err := app.conf.TokenSource(app.ctx, tok).Token()
		if err != nil {
			t.Fatalf("refresh after expiry: %v", err)
		}
		if r := e.miniappGet("/v1/miniapp/friends", nt.AccessToken); r.status != 200 {
			t.Fatalf("refreshed token: %d %s", r.status, r.raw)
		}
	})
}

// TestMadeUpPositionNotWaited: an id carrying a position far beyond the
// stream is made up: 404 at once, not a wait and a 503 telling the caller
// to retry.
func TestMadeUpPositionNotWaited(t *testing.T) {
	e := newEnv(t)
	u, _ := e.user("Curious")
	r := e.do("GET", "/v1/oauth/requests/abcdefabcdefabcdefabcdef.999999999", u.AccessToken(), "")
	if r.status != 404 {
		t.Fatalf("made-up position: %d %s", r.status, r.raw)
	}
}
