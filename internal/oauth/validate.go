package oauth

import (
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"superapp/internal/apperr"
)

const (
	maxRedirectURIs = 10
	maxURLLen       = 512
	maxParamLen     = 512 // state, nonce
	maxScopes       = 10
)

func validClient(in ClientInput) (registerClient, *apperr.Error) {
	name := strings.TrimSpace(in.Name)
	switch n := utf8.RuneCountInString(name); {
	case !utf8.ValidString(name):
		return registerClient{}, apperr.Field("name", "name must be valid UTF-8")
	case n == 0:
		return registerClient{}, apperr.Field("name", "name is required")
	case n > 64:
		return registerClient{}, apperr.Field("name", "name must be at most 64 characters")
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return registerClient{}, apperr.Field("name", "name must not contain control characters")
		}
	}
	if len(in.RedirectURIs) == 0 || len(in.RedirectURIs) > maxRedirectURIs {
		return registerClient{}, apperr.Field("redirect_uris", "give 1 to %d redirect URIs", maxRedirectURIs)
	}
	var uris []string
	for _, u := range in.RedirectURIs {
		if msg := checkURL(u); msg != "" {
			return registerClient{}, apperr.Field("redirect_uris", "redirect URI %q %s", clip(u), msg)
		}
		if !slices.Contains(uris, u) {
			uris = append(uris, u)
		}
	}
	if in.WebhookURL != "" {
		if msg := checkURL(in.WebhookURL); msg != "" {
			return registerClient{}, apperr.Field("webhook_url", "webhook_url %s", msg)
		}
	}
	scopes := []string{}
	for _, sc := range in.Scopes {
		if !slices.Contains(AppScopes, sc) {
			return registerClient{}, apperr.Field("scopes", "unknown scope %q: a mini-app may ask for %s", clip(sc), strings.Join(AppScopes, ", "))
		}
		if !slices.Contains(scopes, sc) {
			scopes = append(scopes, sc)
		}
	}
	return registerClient{Name: name, RedirectURIs: uris, WebhookURL: in.WebhookURL, Scopes: scopes}, nil
}

// checkURL accepts an absolute https URL, or http on the loopback for
// development (RFC 8252 §7.3); it returns what is wrong, or "".
func checkURL(raw string) string {
	if len(raw) > maxURLLen {
		return "is too long"
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "":
		return "must be an absolute URL"
	case u.User != nil:
		return "must not carry a user name or password"
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return "must not have a fragment"
	case u.Scheme == "https":
		return ""
	case u.Scheme == "http" && loopback(u.Hostname()):
		return ""
	}
	return "must use https (http only on localhost, 127.0.0.1 or [::1])"
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// An S256 challenge is the unpadded base64url of a SHA-256 sum.
var challengeRE = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)

func validRequest(in NewRequest) (createRequest, *apperr.Error) {
	if !slices.Contains(in.Scopes, ScopeOpenID) {
		return createRequest{}, apperr.Field("scope", "scope must include openid")
	}
	if len(in.Scopes) > maxScopes {
		return createRequest{}, apperr.Field("scope", "too many scopes")
	}
	var scopes []string
	for _, sc := range in.Scopes {
		if !slices.Contains(scopes, sc) {
			scopes = append(scopes, sc)
		}
	}
	switch {
	case in.CodeChallenge == "":
		return createRequest{}, apperr.Field("code_challenge", "PKCE is required: send code_challenge with code_challenge_method=S256")
	case in.CodeChallengeMethod != "S256":
		return createRequest{}, apperr.Field("code_challenge_method", "code_challenge_method must be S256")
	case !challengeRE.MatchString(in.CodeChallenge):
		return createRequest{}, apperr.Field("code_challenge", "code_challenge must be the base64url SHA-256 of the verifier (43 characters)")
	case in.ResponseMode != "" && in.ResponseMode != "query":
		return createRequest{}, apperr.Field("response_mode", "response_mode must be query")
	case len(in.State) > maxParamLen:
		return createRequest{}, apperr.Field("state", "state must be at most %d bytes", maxParamLen)
	case len(in.Nonce) > maxParamLen:
		return createRequest{}, apperr.Field("nonce", "nonce must be at most %d bytes", maxParamLen)
	case len(in.RedirectURI) > maxURLLen:
		return createRequest{}, apperr.Field("redirect_uri", "redirect_uri is too long")
	}
	return createRequest{
		ClientID: in.ClientID, RedirectURI: in.RedirectURI, Scopes: scopes, State: in.State,
		OIDCNonce: in.Nonce, CodeChallenge: in.CodeChallenge, ResponseMode: in.ResponseMode,
	}, nil
}
