package oidcop

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"superapp/internal/identity"
	"superapp/internal/oauth"
	"superapp/internal/store/storetest"
)

// The library logs every refused request through slog's default logger.
func init() { slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil))) }

// downLog never commits: the node is cut off and applies nothing.
type downLog struct{}

func (downLog) Append(context.Context, string, string, []byte) (uint64, error) {
	return 0, errors.New("no quorum")
}

func newProvider(t *testing.T) *Provider {
	t.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc := oauth.New(oauth.Config{Log: downLog{}, Store: storetest.Open(t), Secret: []byte("s"), Logger: quiet})
	t.Cleanup(svc.Close)
	p, err := New(Config{OAuth: svc, Users: identity.NewState(storetest.Space(t, identity.Stream)), Issuer: func() string { return "https://id.example.com/oidc/" }, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func serve(p *Provider, method, target string, form url.Values) *httptest.ResponseRecorder {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	r := httptest.NewRequest(method, target, body)
	if form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	w := httptest.NewRecorder()
	p.ServeHTTP(w, r)
	return w
}

func oauthErr(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	var e struct {
		Error string `json:"error"`
		Desc  string `json:"error_description"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
		t.Fatalf("%d %s: not an OAuth error", w.Code, w.Body)
	}
	return e.Error
}

func TestDiscoveryUsesTheStaticIssuer(t *testing.T) {
	p := newProvider(t)
	w := serve(p, "GET", "/oidc/.well-known/openid-configuration", nil)
	var d struct {
		Issuer string `json:"issuer"`
		Token  string `json:"token_endpoint"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &d); err != nil || w.Code != 200 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	if d.Issuer != "https://id.example.com/oidc" || d.Token != "https://id.example.com/oidc/oauth/token" {
		t.Fatalf("discovery: %+v", d)
	}
	if got := p.consentURL("r.1"); got != "https://id.example.com/oauth/consent?request=r.1" {
		t.Fatalf("consent url %q", got)
	}
}

// A DC that has not applied what a code or client id points to answers 503
// temporarily_unavailable with Retry-After: the client retries, here or
// elsewhere, instead of giving up on a 400.
func TestNotCaughtUpIsRetryable(t *testing.T) {
	p := newProvider(t)
	code, err := p.crypto.Encrypt("0123456789abcdef0123456789abcdef.42")
	if err != nil {
		t.Fatal(err)
	}
	w := serve(p, "POST", "/oidc/oauth/token", url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {"https://a.example/cb"}, "code_verifier": {"v"}, "client_id": {"c.42"}, "client_secret": {"s"}})
	if w.Code != 503 || w.Header().Get("Retry-After") == "" || oauthErr(t, w) != "temporarily_unavailable" {
		t.Fatalf("token on a lagging DC: %d %v %s", w.Code, w.Header(), w.Body)
	}
	w = serve(p, "GET", "/oidc/authorize?"+url.Values{"client_id": {"c.42"}, "redirect_uri": {"https://a.example/cb"},
		"response_type": {"code"}, "scope": {"openid"}}.Encode(), nil)
	if w.Code != 503 || oauthErr(t, w) != "temporarily_unavailable" {
		t.Fatalf("authorize on a lagging DC: %d %s", w.Code, w.Body)
	}
}

// A failure inside the library never shows its text.
func TestInternalErrorsAreHidden(t *testing.T) {
	p := newProvider(t)
	w := serve(p, "GET", "/oidc/keys", nil) // no keys loaded
	if w.Code != 500 || oauthErr(t, w) != "server_error" || strings.Contains(w.Body.String(), "signing key") {
		t.Fatalf("keys without keys: %d %s", w.Code, w.Body)
	}
	// Garbage at the token endpoint is the client's fault.
	w = serve(p, "POST", "/oidc/oauth/token", url.Values{"grant_type": {"authorization_code"}, "code": {"garbage"}})
	if w.Code != 400 || oauthErr(t, w) != "invalid_grant" {
		t.Fatalf("garbage code: %d %s", w.Code, w.Body)
	}
	if _, err := p.Authenticate(context.Background(), "garbage"); err == nil {
		t.Fatal("garbage access token accepted")
	}
	if w := serve(p, "POST", "/oidc/oauth/token", url.Values{"grant_type": {"password"}}); w.Code != 400 {
		t.Fatalf("unsupported grant: %d %s", w.Code, w.Body)
	}
}
