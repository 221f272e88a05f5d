package client

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// App is a mini-app's OAuth client credentials.
type App struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
}

// basic is the Authorization header of the mini-app's credentials.
func (a App) basic() http.Header {
	raw := url.QueryEscape(a.ClientID) + ":" + url.QueryEscape(a.ClientSecret)
	return http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte(raw))}}
}

// AppInput registers a mini-app.
type AppInput struct {
	Name         string   `json:"name"`
	RedirectURIs []string `json:"redirect_uris"`
	WebhookURL   string   `json:"webhook_url,omitempty"`
	Scopes       []string `json:"scopes"`
}

// RegisterApp registers a mini-app owned by the user and returns its
// credentials; key makes it idempotent (a retry returns the same secret).
func (c *Client) RegisterApp(ctx context.Context, key string, in AppInput) (App, error) {
	var a App
	err := c.Do(ctx, Request{Method: http.MethodPost, Path: "/v1/oauth/clients", IdempotencyKey: key, Body: in}, &a)
	return a, err
}

// NewVerifier returns a random PKCE code verifier (RFC 7636 §4.1).
func NewVerifier() string { return NewKey() + NewKey() }

// Challenge is the S256 code challenge of a PKCE verifier (RFC 7636 §4.2).
func Challenge(verifier string) string {
	h := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// AuthorizeInput starts "Login with superapp" for a mini-app: the
// authorization request a browser would make (OpenID Connect Core
// §3.1.2.1), always with PKCE S256.
type AuthorizeInput struct {
	ClientID    string
	RedirectURI string
	Scopes      []string // must include openid
	State       string
	Nonce       string
	Verifier    string // the PKCE verifier; its challenge is sent
}

// Authorize makes the authorization request and returns the id of the
// request the user is asked to consent to (the consent page's
// ?request=). A request the provider cannot take now (it sends the
// browser back with error=temporarily_unavailable) is an *Error with
// status 503, to be retried; any other error sent back is a refusal.
// The request is not keyed: a retry makes another request, and the one
// the user approves is the only one that counts.
func (c *Client) Authorize(ctx context.Context, in AuthorizeInput) (string, error) {
	q := url.Values{
		"response_type": {"code"}, "client_id": {in.ClientID}, "redirect_uri": {in.RedirectURI},
		"scope": {strings.Join(in.Scopes, " ")}, "state": {in.State}, "nonce": {in.Nonce},
		"code_challenge": {Challenge(in.Verifier)}, "code_challenge_method": {"S256"},
	}
	var loc string
	if err := c.Do(ctx, Request{Method: http.MethodGet, Path: "/oidc/authorize?" + q.Encode(), NoAuth: true, Location: &loc}, nil); err != nil {
		return "", err
	}
	return consentRequest(loc)
}

// consentRequest reads the consent request id out of the authorization
// request's redirect, or the error sent back to the mini-app.
func consentRequest(location string) (string, error) {
	u, err := url.Parse(location)
	if err != nil || location == "" {
		return "", fmt.Errorf("authorize: no redirect (%q)", location)
	}
	q := u.Query()
	if id := q.Get("request"); id != "" && q.Get("error") == "" {
		return id, nil
	}
	e := &Error{Status: http.StatusBadRequest, Code: q.Get("error"), Message: q.Get("error_description")}
	if e.Code == "temporarily_unavailable" {
		e.Status = http.StatusServiceUnavailable
	}
	if e.Code == "" {
		e.Code, e.Message = "http_302", "authorize redirected to "+location
	}
	return "", e
}

// ApproveLogin lets the mini-app of a consent request in (the user's
// call) and returns where the browser goes next: the mini-app's redirect
// URI with code and state. key makes it idempotent.
func (c *Client) ApproveLogin(ctx context.Context, requestID, key string) (string, error) {
	var out struct {
		RedirectTo string `json:"redirect_to"`
	}
	err := c.Do(ctx, Request{Method: http.MethodPost, Path: "/v1/oauth/requests/" + url.PathEscape(requestID) + "/approve", IdempotencyKey: key}, &out)
	return out.RedirectTo, err
}

// AppTokens are what a mini-app gets for a code or a refresh token.
type AppTokens struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	IDToken      string `json:"id_token"`
	RefreshToken string `json:"refresh_token"`
}

// ExchangeCode trades an authorization code for tokens (the mini-app's
// backend's call, authenticated with its credentials). The same code
// sent again within a minute, on any DC, gets the same grant: the
// failover client may send it twice.
func (c *Client) ExchangeCode(ctx context.Context, app App, code, redirectURI, verifier string) (AppTokens, error) {
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirectURI}, "code_verifier": {verifier}}
	var t AppTokens
	err := c.Do(ctx, Request{Method: http.MethodPost, Path: "/oidc/oauth/token", NoAuth: true, Header: app.basic(),
		Raw: []byte(form.Encode()), ContentType: "application/x-www-form-urlencoded"}, &t)
	return t, err
}

// UserInfo is what a mini-app learns about the user (OpenID Connect Core §5.3).
type UserInfo struct {
	Subject string `json:"sub"`
	Name    string `json:"name,omitempty"`
}

// UserInfo asks for the claims of the user whose mini-app access token
// the client holds (see UseTokens).
func (c *Client) UserInfo(ctx context.Context) (UserInfo, error) {
	var u UserInfo
	err := c.Do(ctx, Request{Method: http.MethodGet, Path: "/oidc/userinfo"}, &u)
	return u, err
}

// Grant is a mini-app the user let in: one per login with superapp.
type Grant struct {
	GrantID string `json:"grant_id"`
	Client  struct {
		ClientID string `json:"client_id"`
		Name     string `json:"name"`
	} `json:"client"`
	Scopes    []string  `json:"scopes"`
	CreatedAt time.Time `json:"created_at"`
}

// Grants lists the user's live grants, newest first.
func (c *Client) Grants(ctx context.Context) ([]Grant, error) {
	var out struct {
		Grants []Grant `json:"grants"`
	}
	err := c.Do(ctx, Request{Method: http.MethodGet, Path: "/v1/oauth/grants"}, &out)
	return out.Grants, err
}
