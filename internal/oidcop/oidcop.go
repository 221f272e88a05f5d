// Package oidcop is superapp's OpenID Provider: "Login with superapp" for
// mini-apps. It adapts github.com/zitadel/oidc's op.Provider to the
// log-backed oauth service, so authorize, consent, token, userinfo,
// refresh and revocation each work on any data center: every id it hands
// out carries the log position it depends on, and every single-use
// decision is an OAUTH command.
//
// It must never let the library's unauthenticated callback
// (/authorize/callback) mint codes, never issue a code without PKCE S256,
// never show a client an internal error text, and never use a key or
// issuer that differs between data centers.
package oidcop

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"superapp/internal/apperr"
	"superapp/internal/cmdlog"
	"superapp/internal/identity"
	"superapp/internal/oauth"
)

// Prefix is where the gateway mounts the provider.
const Prefix = "/oidc"

// Users is the directory the provider reads profile claims from.
type Users interface {
	User(id string) (identity.User, bool)
}

// Config configures a Provider.
type Config struct {
	OAuth *oauth.Service
	Users Users
	// Issuer returns the issuer URL, the same on every DC, e.g.
	// https://id.superapp.example/oidc. It is read once, on first use, so
	// a node may derive it from an address it binds after New.
	Issuer func() string
	// ConsentURL is the web app's consent page; /authorize redirects the
	// browser there with ?request=<id>. Empty: the issuer's origin +
	// /oauth/consent.
	ConsentURL string
	// CryptoKey encrypts codes and access tokens; it must be the same on
	// every DC (derive it from the cluster secret).
	CryptoKey [32]byte
	Logger    *slog.Logger
}

// Provider is the OpenID Provider. It is an http.Handler for the paths
// under Prefix. It is safe for concurrent use.
type Provider struct {
	op      *op.Provider
	handler http.Handler
	crypto  op.Crypto
	oauth   *oauth.Service
	issuer  func() string
	consent func() string
	log     *slog.Logger
}

// IDTokenLifetime is the lifetime of ID tokens.
const IDTokenLifetime = time.Hour

// New builds the provider.
func New(cfg Config) (*Provider, error) {
	if cfg.OAuth == nil || cfg.Users == nil || cfg.Issuer == nil {
		return nil, errors.New("oidcop: OAuth, Users and Issuer are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	p := &Provider{oauth: cfg.OAuth, log: cfg.Logger.With("component", "oidc")}
	p.issuer = sync.OnceValue(func() string { return strings.TrimRight(cfg.Issuer(), "/") })
	p.consent = sync.OnceValue(func() string {
		if cfg.ConsentURL != "" {
			return cfg.ConsentURL
		}
		return strings.TrimSuffix(p.issuer(), Prefix) + "/oauth/consent"
	})
	// AES-256-GCM only: the library's default also accepts unauthenticated
	// AES-CFB, and a code must be unforgeable.
	p.crypto = op.NewAES256GCMCrypto(cfg.CryptoKey, "v1")
	st := &storage{oauth: cfg.OAuth, users: cfg.Users, crypto: p.crypto, consent: p.consentURL, log: p.log,
		authorizes: identity.NewThrottle(time.Second, 60, cfg.OAuth.Now)}
	o, err := op.NewProvider(&op.Config{
		CryptoKey:             cfg.CryptoKey,
		CryptoKeyId:           "v1",
		CodeMethodS256:        true,
		AuthMethodPost:        true,
		GrantTypeRefreshToken: true,
		SupportedScopes:       append([]string{oauth.ScopeOpenID, oauth.ScopeOffline}, oauth.AppScopes...),
		SupportedClaims:       []string{"sub", "aud", "exp", "iat", "iss", "auth_time", "nonce", "amr", "azp", "at_hash", "c_hash", "name"},
	}, st, func(bool) (op.IssuerFromRequest, error) {
		return func(*http.Request) string { return p.issuer() }, nil
	},
		op.WithCrypto(p.crypto),
		op.WithIDTokenHintVerifierOpts(op.WithSupportedIDTokenHintSigningAlgorithms(string(jose.EdDSA))),
		op.WithAccessTokenVerifierOpts(op.WithSupportedAccessTokenSigningAlgorithms(string(jose.EdDSA))),
	)
	if err != nil {
		return nil, fmt.Errorf("oidc provider: %w", err)
	}
	p.op = o
	p.handler = http.StripPrefix(Prefix, o)
	return p, nil
}

// Issuer is the issuer URL.
func (p *Provider) Issuer() string { return p.issuer() }

func (p *Provider) consentURL(requestID string) string {
	sep := "?"
	if strings.Contains(p.consent(), "?") {
		sep = "&"
	}
	return p.consent() + sep + "request=" + requestID
}

// maxBody bounds a form posted to the token, revocation or introspection
// endpoint.
const maxBody = 16 << 10

// ServeHTTP serves the provider's endpoints under Prefix. The library's
// answers are buffered so that a retryable failure (this DC has not caught
// up, no quorum) becomes 503 with Retry-After, and an internal error never
// shows its text.
func (p *Provider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	info := &reqInfo{addr: r.RemoteAddr}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		info.addr = host
	}
	r = r.WithContext(context.WithValue(r.Context(), infoKey{}, info))
	if r.Body != nil {
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	}
	rec := &capture{header: http.Header{}}
	p.handler.ServeHTTP(rec, r)
	status := rec.status
	if status == 0 {
		status = http.StatusOK
	}
	retry, msg := info.retryable()
	switch {
	case retry && status >= 400:
		w.Header().Set("Retry-After", "1")
		oauthError(w, http.StatusServiceUnavailable, "temporarily_unavailable", msg)
		return
	case status >= 500:
		p.log.Error("oidc provider failed", "path", r.URL.Path, "status", status, "body", clip(rec.body.String()))
		oauthError(w, http.StatusInternalServerError, "server_error", "internal error")
		return
	}
	for k, v := range rec.header {
		w.Header()[k] = v
	}
	w.WriteHeader(status)
	_, _ = w.Write(rec.body.Bytes())
}

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

func clip(s string) string {
	if len(s) > 500 {
		return s[:500]
	}
	return s
}

// capture buffers a response.
type capture struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (c *capture) Header() http.Header { return c.header }

func (c *capture) WriteHeader(status int) {
	if c.status == 0 {
		c.status = status
	}
}

func (c *capture) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	return c.body.Write(b)
}

// reqInfo travels with one request through the library into storage.
type reqInfo struct {
	addr string

	mu    sync.Mutex
	retry bool
	msg   string
}

type infoKey struct{}

func infoOf(ctx context.Context) *reqInfo {
	if i, ok := ctx.Value(infoKey{}).(*reqInfo); ok {
		return i
	}
	return &reqInfo{}
}

func (i *reqInfo) markRetry(msg string) {
	i.mu.Lock()
	i.retry, i.msg = true, msg
	i.mu.Unlock()
}

func (i *reqInfo) retryable() (bool, string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.retry, i.msg
}

// Approve records the user's approval of an authorization request and
// returns the mini-app's redirect URI with the code and state. Errors: as
// oauth.Service.Approve.
func (p *Provider) Approve(ctx context.Context, w cmdlog.Write, user, session, requestID string) (string, cmdlog.Result, error) {
	r, res, err := p.oauth.Approve(ctx, w, user, session, requestID)
	if err != nil {
		return "", res, err
	}
	// The code is the approved id encrypted with the cluster-wide key: any
	// DC can open it, and nobody else can make one.
	u, err := op.BuildAuthResponseCallbackURL(ctx, &authRequest{r: r, id: r.ApprovedID}, p.op)
	if err != nil {
		return "", res, fmt.Errorf("build redirect for %s: %w", r.ID, err)
	}
	return u, res, nil
}

// Deny records the user's refusal and returns the mini-app's redirect URI
// with error=access_denied and the state. Errors: as Approve.
func (p *Provider) Deny(ctx context.Context, w cmdlog.Write, user, session, requestID string) (string, cmdlog.Result, error) {
	r, res, err := p.oauth.Deny(ctx, w, user, session, requestID)
	if err != nil {
		return "", res, err
	}
	e := oidc.ErrAccessDenied().WithDescription("the user denied the request")
	e.State = r.State
	u, err := op.AuthResponseURL(r.RedirectURI, oidc.ResponseTypeCode, oidc.ResponseMode(r.ResponseMode), e, p.op.Encoder())
	if err != nil {
		return "", res, fmt.Errorf("build redirect for %s: %w", r.ID, err)
	}
	return u, res, nil
}

// maxTokenLen bounds an access token before it is decrypted.
const maxTokenLen = 4096

// Authenticate verifies a mini-app's access token, as a resource server of
// superapp does. Errors: unauthenticated, token_expired, session_revoked
// (the grant was revoked), position_not_reached.
func (p *Provider) Authenticate(ctx context.Context, token string) (oauth.Access, error) {
	invalid := apperr.New(apperr.Unauthenticated, "invalid access token")
	if token == "" || len(token) > maxTokenLen {
		return oauth.Access{}, invalid
	}
	plain, err := p.crypto.Decrypt(token)
	if err != nil {
		return oauth.Access{}, invalid
	}
	id, sub, ok := strings.Cut(plain, ":")
	if !ok || strings.Contains(sub, ":") {
		return oauth.Access{}, invalid
	}
	return p.oauth.CheckAccess(ctx, id, sub)
}
