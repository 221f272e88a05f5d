package client

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

// The S256 challenge is RFC 7636's: its Appendix B example.
func TestChallenge(t *testing.T) {
	if got := Challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"); got != "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM" {
		t.Fatalf("challenge %s", got)
	}
	if a, b := NewVerifier(), NewVerifier(); a == b || len(a) < 43 || len(a) > 128 {
		t.Fatalf("verifiers %q %q", a, b)
	}
}

// Authorize takes the redirect as its answer instead of following it: the
// consent request's id; an error sent back to the mini-app is an *Error,
// temporarily_unavailable a retryable one.
func TestAuthorize(t *testing.T) {
	var followed bool
	mux := http.NewServeMux()
	mux.HandleFunc("/oidc/authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		switch {
		case q.Get("code_challenge") != Challenge("v3rifier") || q.Get("code_challenge_method") != "S256":
			http.Redirect(w, r, "https://app.example.com/cb?error=invalid_request&state="+q.Get("state"), http.StatusFound)
		case q.Get("client_id") == "busy":
			http.Redirect(w, r, "https://app.example.com/cb?error=temporarily_unavailable", http.StatusFound)
		default:
			http.Redirect(w, r, "/oauth/consent?request=req.42", http.StatusFound)
		}
	})
	mux.HandleFunc("/oauth/consent", func(w http.ResponseWriter, r *http.Request) { followed = true })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	c := New([]string{srv.URL})
	ctx := context.Background()
	in := AuthorizeInput{ClientID: "app", RedirectURI: "https://app.example.com/cb", Scopes: []string{"openid"}, State: "s", Verifier: "v3rifier"}
	if id, err := c.Authorize(ctx, in); err != nil || id != "req.42" || followed {
		t.Fatalf("authorize: %q %v (followed %v)", id, err, followed)
	}
	in.ClientID = "busy"
	if _, err := c.Authorize(ctx, in); Code(err) != "temporarily_unavailable" || err.(*Error).Status != http.StatusServiceUnavailable {
		t.Fatalf("busy: %v", err)
	}
	in.ClientID, in.Verifier = "app", "other"
	if _, err := c.Authorize(ctx, in); Code(err) != "invalid_request" || err.(*Error).Status != http.StatusBadRequest {
		t.Fatalf("bad PKCE: %v", err)
	}
}
