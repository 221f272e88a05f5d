package httpapi_test

import (
	"net/http"
	"strings"
	"testing"
)

// refreshCookie returns the superapp_refresh cookie a response sets.
func refreshCookie(t *testing.T, r resp) *http.Cookie {
	t.Helper()
	for _, line := range r.header.Values("Set-Cookie") {
		c, err := http.ParseSetCookie(line)
		if err == nil && c.Name == "superapp_refresh" {
			return c
		}
	}
	return nil
}

func TestWebSession(t *testing.T) {
	e := newEnv(t)
	_, login := e.user("Web")
	body := `{"login":"` + login + `","password":"` + goodPassword + `"}`

	// Only a script of the cluster's own origins may use web sessions.
	if r := e.do("POST", "/v1/web/sessions", "", body); r.status != 403 || r.errCode() != "forbidden" {
		t.Fatalf("no CSRF header: %d %s", r.status, r.raw)
	}
	if r := e.do("POST", "/v1/web/sessions", "", body, "X-Superapp-CSRF", "1", "Origin", "https://evil.example"); r.status != 403 {
		t.Fatalf("foreign origin: %d %s", r.status, r.raw)
	}
	r := e.do("POST", "/v1/web/sessions", "", body, "X-Superapp-CSRF", "1", "Origin", e.url)
	if r.status != 201 || r.body["access_token"] == nil {
		t.Fatalf("web login: %d %s", r.status, r.raw)
	}
	if _, ok := r.body["refresh_token"]; ok || strings.Contains(r.raw, "rt1.") {
		t.Fatalf("the refresh token reached a body a script reads: %s", r.raw)
	}
	ck := refreshCookie(t, r)
	if ck == nil || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/v1/web" || ck.Value == "" {
		t.Fatalf("refresh cookie: %+v", ck)
	}
	access := r.body["access_token"].(string)
	if r := e.do("GET", "/v1/me", access, ""); r.status != 200 {
		t.Fatalf("me: %d", r.status)
	}

	// Refresh: the cookie, the CSRF header, nothing else.
	if r := e.do("POST", "/v1/web/refresh", "", "", "X-Superapp-CSRF", "1"); r.status != 401 {
		t.Fatalf("refresh without a cookie: %d %s", r.status, r.raw)
	}
	if r := e.do("POST", "/v1/web/refresh", "", "", "Cookie", "superapp_refresh="+ck.Value); r.status != 403 {
		t.Fatalf("refresh without CSRF header: %d %s", r.status, r.raw)
	}
	r1 := e.do("POST", "/v1/web/refresh", "", "", "X-Superapp-CSRF", "1", "Cookie", "superapp_refresh="+ck.Value, "Idempotency-Key", "web-r1")
	ck1 := refreshCookie(t, r1)
	if r1.status != 200 || ck1 == nil || ck1.Value == ck.Value || r1.body["access_token"] == nil {
		t.Fatalf("refresh: %d %s", r1.status, r1.raw)
	}
	// Retried with its key (on any DC), it answers the same tokens.
	r2 := e.do("POST", "/v1/web/refresh", "", "", "X-Superapp-CSRF", "1", "Cookie", "superapp_refresh="+ck.Value, "Idempotency-Key", "web-r1")
	if r2.status != 200 || r2.body["access_token"] != r1.body["access_token"] || refreshCookie(t, r2).Value != ck1.Value {
		t.Fatalf("replayed refresh: %d %s", r2.status, r2.raw)
	}
	// Someone else's cookie under the same key gets none of this session.
	_, other := e.user("Other")
	ro := e.do("POST", "/v1/web/sessions", "", `{"login":"`+other+`","password":"`+goodPassword+`"}`, "X-Superapp-CSRF", "1")
	r3 := e.do("POST", "/v1/web/refresh", "", "", "X-Superapp-CSRF", "1", "Cookie", "superapp_refresh="+refreshCookie(t, ro).Value, "Idempotency-Key", "web-r1")
	if r3.status != 422 || r3.body["access_token"] != nil {
		t.Fatalf("a reused key with another cookie: %d %s", r3.status, r3.raw)
	}

	// Logout revokes the session and clears the cookie.
	access = r1.body["access_token"].(string)
	if r := e.do("POST", "/v1/web/logout", "", "", "X-Superapp-CSRF", "1"); r.status != 401 {
		t.Fatalf("logout without a token: %d", r.status)
	}
	if r := e.do("POST", "/v1/web/logout", access, ""); r.status != 403 {
		t.Fatalf("logout without CSRF header: %d", r.status)
	}
	r = e.do("POST", "/v1/web/logout", access, "", "X-Superapp-CSRF", "1")
	if c := refreshCookie(t, r); r.status != 200 || c == nil || c.MaxAge >= 0 || c.Value != "" {
		t.Fatalf("logout: %d %s %+v", r.status, r.raw, c)
	}
	if r := e.do("POST", "/v1/web/refresh", "", "", "X-Superapp-CSRF", "1", "Cookie", "superapp_refresh="+ck1.Value); r.status != 401 || refreshCookie(t, r) == nil {
		t.Fatalf("refresh after logout: %d %s (the dead cookie must be cleared)", r.status, r.raw)
	}
	if r := e.do("GET", "/v1/me", access, ""); r.status != 401 {
		t.Fatalf("access token after logout: %d", r.status)
	}
}

func TestCORSOnlyForTheClustersOrigins(t *testing.T) {
	e := newEnv(t)
	pre := func(origin string) resp {
		return e.do("OPTIONS", "/v1/web/refresh", "", "", "Origin", origin, "Access-Control-Request-Method", "POST",
			"Access-Control-Request-Headers", "x-superapp-csrf, idempotency-key")
	}
	r := pre(e.url)
	if r.status != 204 || r.header.Get("Access-Control-Allow-Origin") != e.url || r.header.Get("Access-Control-Allow-Credentials") != "true" ||
		!strings.Contains(r.header.Get("Access-Control-Allow-Headers"), "X-Superapp-CSRF") {
		t.Fatalf("preflight from a DC's origin: %d %v", r.status, r.header)
	}
	r = pre("http://evil.example")
	if r.header.Get("Access-Control-Allow-Origin") != "" || r.status == 204 {
		t.Fatalf("preflight from a foreign origin: %d %v", r.status, r.header)
	}
	r = e.do("GET", "/v1/endpoints", "", "", "Origin", "http://evil.example")
	if r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("a foreign origin may read answers: %v", r.header)
	}
	r = e.do("GET", "/v1/endpoints", "", "", "Origin", e.url)
	if r.header.Get("Access-Control-Allow-Origin") != e.url || !strings.Contains(r.header.Get("Access-Control-Expose-Headers"), "X-Superapp-Position") {
		t.Fatalf("a DC's origin may not read answers: %v", r.header)
	}
}

func TestAppServedBesideTheAPI(t *testing.T) {
	e := newEnv(t)
	for _, path := range []string{"/", "/login", "/chats/abc", "/oauth/consent?request=x"} {
		r := e.do("GET", path, "", "")
		if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") || !strings.Contains(r.raw, `<div id="app">`) {
			t.Fatalf("%s: %d %s", path, r.status, r.header.Get("Content-Type"))
		}
		csp := r.header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self';") || strings.Contains(csp, "unsafe") || !strings.Contains(csp, "connect-src 'self' "+e.url) {
			t.Fatalf("%s: CSP %q", path, csp)
		}
		if r.header.Get("X-Frame-Options") != "DENY" || r.header.Get("Cache-Control") != "no-cache" {
			t.Fatalf("%s: headers %v", path, r.header)
		}
	}
	// API paths stay the API's, answered in JSON.
	for _, path := range []string{"/v1/nope", "/oidc/nope", "/ops/nope"} {
		if r := e.do("GET", path, "", ""); r.status != 404 || r.errCode() != "route_not_found" {
			t.Fatalf("%s: %d %s", path, r.status, r.raw)
		}
	}
	if r := e.do("GET", "/assets/missing.js", "", ""); r.status != 404 {
		t.Fatalf("a missing asset: %d", r.status)
	}
	if r := e.do("POST", "/chats", "", "{}"); r.status != 405 {
		t.Fatalf("POST to a page: %d", r.status)
	}
}
