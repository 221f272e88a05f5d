package dctest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"superapp/client"
	"superapp/internal/dctest"
)

// The issuer every DC is started with: one name in front of all three, as
// a DNS name or load balancer would be. The test's transport sends it to
// whichever DC a step is meant to run on.
const (
	issuerHost = "login.superapp.test"
	issuer     = "http://" + issuerHost + "/oidc"
)

// dcRouter sends requests for the issuer's host to one DC at a time.
type dcRouter struct{ target atomic.Value }

func (r *dcRouter) use(d *dctest.DC) { r.target.Store(d.HTTPAddr) }

func (r *dcRouter) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Host == issuerHost {
		req = req.Clone(req.Context())
		req.URL.Host = r.target.Load().(string)
	}
	return http.DefaultTransport.RoundTrip(req)
}

type apiResp struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

// call makes one API request to base, retrying while the answer is 503 (a
// stream electing a new leader after a fire) until ctx ends.
func call(ctx context.Context, t *testing.T, base, method, path, token string, hdr ...string) apiResp {
	t.Helper()
	for {
		req, _ := http.NewRequestWithContext(ctx, method, base+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		res, err := http.DefaultClient.Do(req)
		if err == nil {
			raw, _ := io.ReadAll(res.Body)
			res.Body.Close()
			r := apiResp{status: res.StatusCode, header: res.Header, raw: string(raw)}
			_ = json.Unmarshal(raw, &r.body)
			if r.status != http.StatusServiceUnavailable {
				return r
			}
			err = fmt.Errorf("%d %s", r.status, raw)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s %s%s: %v", method, base, path, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (r apiResp) code() string {
	e, _ := r.body["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

// TestLoginWithSuperappAcrossDCs runs "Login with superapp" with a standard
// client, one step per DC: authorize on the DC leading the OAUTH stream,
// SIGKILL it, consent on the second, exchange on the third; the tokens work
// on every DC, also on the killed one once it is back, and a revocation
// reaches all three.
func TestLoginWithSuperappAcrossDCs(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three processes")
	}
	t.Setenv("SUPERAPP_OIDC_ISSUER", issuer) // the DC processes inherit it
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c := dctest.Start(t)

	dev, alice := client.New(c.URLs()), client.New(c.URLs())
	for i, u := range []*client.Client{dev, alice} {
		login := fmt.Sprintf("oauth%d@example.com", i)
		if _, err := u.SignUp(ctx, login, password, []string{"Dev", "Alice"}[i]); err != nil {
			t.Fatal(err)
		}
		if _, err := u.Login(ctx, login, password, "phone"); err != nil {
			t.Fatal(err)
		}
	}
	me, err := alice.Me(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// The order of the DCs: the OAUTH leader first, it will burn.
	first := c.Leader(ctx, "OAUTH")
	var order []*dctest.DC
	order = append(order, c.DC(first))
	for _, d := range c.DCs {
		if d.Name != first {
			order = append(order, d)
		}
	}
	dc1, dc2, dc3 := order[0], order[1], order[2]
	t.Logf("OAUTH leader %s; authorize there, consent on %s, token on %s", dc1.Name, dc2.Name, dc3.Name)

	// A developer registers the mini-app on the first DC.
	body := `{"name":"Taxi Plus","redirect_uris":["https://taxi.example.com/cb"],"scopes":["profile"]}`
	req, _ := http.NewRequestWithContext(ctx, "POST", dc1.URL()+"/v1/oauth/clients", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+dev.AccessToken())
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var app struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	_ = json.NewDecoder(res.Body).Decode(&app)
	res.Body.Close()
	if res.StatusCode != http.StatusCreated || app.ClientSecret == "" {
		t.Fatalf("register: %d %+v", res.StatusCode, app)
	}

	router := &dcRouter{}
	router.use(dc1)
	hc := &http.Client{Timeout: 30 * time.Second, Transport: router, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	octx := oidc.ClientContext(ctx, hc)
	provider, err := oidc.NewProvider(octx, issuer)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	conf := oauth2.Config{ClientID: app.ClientID, ClientSecret: app.ClientSecret, Endpoint: provider.Endpoint(),
		RedirectURL: "https://taxi.example.com/cb", Scopes: []string{oidc.ScopeOpenID, "profile", oidc.ScopeOfflineAccess}}
	conf.Endpoint.AuthStyle = oauth2.AuthStyleInHeader

	// Authorize on dc1, then burn it.
	verifier := oauth2.GenerateVerifier()
	res, err = hc.Get(conf.AuthCodeURL("st4te", oauth2.S256ChallengeOption(verifier), oidc.Nonce("n0nce")))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	loc, _ := url.Parse(res.Header.Get("Location"))
	if res.StatusCode != http.StatusFound || loc == nil || loc.Host != issuerHost || loc.Path != "/oauth/consent" {
		t.Fatalf("authorize: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	reqID := loc.Query().Get("request")
	c.Kill(dc1.Name)
	fire := time.Now()

	// Consent on dc2: the request made on dc1 is there; approve it.
	r := call(ctx, t, dc2.URL(), "GET", "/v1/oauth/requests/"+reqID, alice.AccessToken())
	if r.status != 200 || r.body["status"] != "pending" {
		t.Fatalf("consent view on %s: %d %s", dc2.Name, r.status, r.raw)
	}
	r = call(ctx, t, dc2.URL(), "POST", "/v1/oauth/requests/"+reqID+"/approve", alice.AccessToken(), "Idempotency-Key", "approve-1")
	to, _ := r.body["redirect_to"].(string)
	cb, _ := url.Parse(to)
	if r.status != 200 || cb == nil || cb.Query().Get("state") != "st4te" || cb.Query().Get("code") == "" {
		t.Fatalf("approve on %s: %d %s", dc2.Name, r.status, r.raw)
	}
	t.Logf("MEASURE consent approved on %s %v after SIGKILL of %s", dc2.Name, time.Since(fire).Round(time.Millisecond), dc1.Name)

	// Exchange on dc3, retrying while it cannot answer yet: the same code
	// within a minute is a retry, not a reuse.
	router.use(dc3)
	var tok *oauth2.Token
	for {
		tok, err = conf.Exchange(octx, cb.Query().Get("code"), oauth2.VerifierOption(verifier))
		var re *oauth2.RetrieveError
		if err == nil || !errors.As(err, &re) || re.Response.StatusCode != http.StatusServiceUnavailable || ctx.Err() != nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("exchange on %s: %v", dc3.Name, err)
	}
	rawID, _ := tok.Extra("id_token").(string)
	idt, err := provider.Verifier(&oidc.Config{ClientID: app.ClientID}).Verify(octx, rawID)
	if err != nil {
		t.Fatalf("id token from %s: %v", dc3.Name, err)
	}
	if idt.Subject != me.UserID || idt.Nonce != "n0nce" || idt.Issuer != issuer {
		t.Fatalf("id token from %s: sub %q nonce %q iss %q", dc3.Name, idt.Subject, idt.Nonce, idt.Issuer)
	}

	// Userinfo on dc2, a refresh on dc2, the new token on dc3.
	router.use(dc2)
	ui, err := provider.UserInfo(octx, oauth2.StaticTokenSource(tok))
	if err != nil || ui.Subject != me.UserID {
		t.Fatalf("userinfo on %s: %v", dc2.Name, err)
	}
	tok.Expiry = time.Now().Add(-time.Minute)
	nt, err := conf.TokenSource(octx, tok).Token()
	if err != nil || nt.RefreshToken == tok.RefreshToken {
		t.Fatalf("refresh on %s: %v", dc2.Name, err)
	}
	for _, d := range []*dctest.DC{dc2, dc3} {
		if r := call(ctx, t, d.URL(), "GET", "/v1/miniapp/me", nt.AccessToken); r.status != 200 || r.body["user_id"] != me.UserID {
			t.Fatalf("miniapp me on %s: %d %s", d.Name, r.status, r.raw)
		}
	}

	// The burnt DC comes back and honours the tokens made while it was down.
	c.Restart(dc1.Name)
	c.WaitReady(dc1.Name, 3*time.Minute)
	if r := call(ctx, t, dc1.URL(), "GET", "/v1/miniapp/me", nt.AccessToken); r.status != 200 {
		t.Fatalf("miniapp me on restarted %s: %d %s", dc1.Name, r.status, r.raw)
	}
	router.use(dc1)
	if _, err := provider.UserInfo(octx, oauth2.StaticTokenSource(nt)); err != nil {
		t.Fatalf("userinfo on restarted %s: %v", dc1.Name, err)
	}

	// Alice revokes the grant on dc3: the token stops working everywhere.
	r = call(ctx, t, dc3.URL(), "GET", "/v1/oauth/grants", alice.AccessToken())
	grants, _ := r.body["grants"].([]any)
	if len(grants) != 1 {
		t.Fatalf("grants on %s: %s", dc3.Name, r.raw)
	}
	gid := grants[0].(map[string]any)["grant_id"].(string)
	revoked := time.Now()
	r = call(ctx, t, dc3.URL(), "DELETE", "/v1/oauth/grants/"+gid, alice.AccessToken())
	if r.status != 200 {
		t.Fatalf("revoke on %s: %d %s", dc3.Name, r.status, r.raw)
	}
	pos := r.header.Get("X-Superapp-Position")
	for _, d := range order {
		// Without a position: within seconds. With it: at once.
		for {
			r := call(ctx, t, d.URL(), "GET", "/v1/miniapp/me", nt.AccessToken)
			if r.code() == "session_revoked" {
				break
			}
			if time.Since(revoked) > 5*time.Second {
				t.Fatalf("revoked token still works on %s after 5s: %d %s", d.Name, r.status, r.raw)
			}
			time.Sleep(10 * time.Millisecond)
		}
		if r := call(ctx, t, d.URL(), "GET", "/v1/miniapp/me", nt.AccessToken, "X-Superapp-Position", pos); r.status != 401 || r.code() != "session_revoked" {
			t.Fatalf("revoked token on %s with the position: %d %s", d.Name, r.status, r.raw)
		}
	}
	nt.Expiry = time.Now().Add(-time.Minute)
	if _, err := conf.TokenSource(octx, nt).Token(); err == nil {
		t.Fatal("refresh of a revoked grant succeeded")
	}
	t.Logf("MEASURE revoked grant refused on all three DCs %v after revoke", time.Since(revoked).Round(time.Millisecond))
	c.WaitConverged(ctx)
}
