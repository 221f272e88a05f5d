package client

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Account is a user's own account.
type Account struct {
	UserID    string    `json:"user_id"`
	Phone     string    `json:"phone,omitempty"`
	Email     string    `json:"email,omitempty"`
	Name      string    `json:"name"`
	Status    string    `json:"status_message"`
	CreatedAt time.Time `json:"created_at"`
}

// Profile is what other users see of a user.
type Profile struct {
	UserID string `json:"user_id"`
	Name   string `json:"name"`
	Status string `json:"status_message"`
}

// Tokens are a session's credentials.
type Tokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	ExpiresIn    int    `json:"expires_in"`
	UserID       string `json:"user_id"`
	SessionID    string `json:"session_id"`
}

// Session is one logged-in device.
type Session struct {
	SessionID string     `json:"session_id"`
	Device    string     `json:"device"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	Current   bool       `json:"current"`
}

// SignUp creates an account with a phone number or email (login decides
// which: it is an email if it contains "@").
func (c *Client) SignUp(ctx context.Context, login, password, name string) (Account, error) {
	body := map[string]string{"password": password, "name": name}
	if strings.Contains(login, "@") {
		body["email"] = login
	} else {
		body["phone"] = login
	}
	var a Account
	err := c.Do(ctx, Request{Method: http.MethodPost, Path: "/v1/accounts", Body: body, NoAuth: true}, &a)
	return a, err
}

// Login opens a session and keeps its tokens in the client.
func (c *Client) Login(ctx context.Context, login, password, device string) (Tokens, error) {
	var t Tokens
	err := c.Do(ctx, Request{Method: http.MethodPost, Path: "/v1/sessions", NoAuth: true,
		Body: map[string]string{"login": login, "password": password, "device": device}}, &t)
	if err == nil {
		c.setTokens(t)
	}
	return t, err
}

func (c *Client) setTokens(t Tokens) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.access, c.refresh, c.userID = t.AccessToken, t.RefreshToken, t.UserID
}

// UseTokens makes the client act with the given tokens.
func (c *Client) UseTokens(t Tokens) { c.setTokens(t) }

// Refresh rotates the refresh token and keeps the new pair.
func (c *Client) Refresh(ctx context.Context) (Tokens, error) {
	c.mu.Lock()
	rt := c.refresh
	c.mu.Unlock()
	var t Tokens
	err := c.Do(ctx, Request{Method: http.MethodPost, Path: "/v1/sessions/refresh", NoAuth: true,
		Body: map[string]string{"refresh_token": rt}}, &t)
	if err == nil {
		c.setTokens(t)
	}
	return t, err
}

// Logout revokes the current session.
func (c *Client) Logout(ctx context.Context) error {
	return c.Do(ctx, Request{Method: http.MethodDelete, Path: "/v1/sessions/current"}, nil)
}

// Sessions lists the user's live sessions.
func (c *Client) Sessions(ctx context.Context) ([]Session, error) {
	var out struct {
		Sessions []Session `json:"sessions"`
	}
	err := c.Do(ctx, Request{Method: http.MethodGet, Path: "/v1/sessions"}, &out)
	return out.Sessions, err
}

// RevokeSession ends one of the user's sessions.
func (c *Client) RevokeSession(ctx context.Context, sessionID string) error {
	return c.Do(ctx, Request{Method: http.MethodDelete, Path: "/v1/sessions/" + url.PathEscape(sessionID)}, nil)
}

// Me returns the user's own account.
func (c *Client) Me(ctx context.Context) (Account, error) {
	var a Account
	err := c.Do(ctx, Request{Method: http.MethodGet, Path: "/v1/me"}, &a)
	return a, err
}

// UpdateProfile changes name and/or status message (nil leaves it).
func (c *Client) UpdateProfile(ctx context.Context, name, status *string) (Account, error) {
	body := map[string]*string{}
	if name != nil {
		body["name"] = name
	}
	if status != nil {
		body["status_message"] = status
	}
	var a Account
	err := c.Do(ctx, Request{Method: http.MethodPatch, Path: "/v1/me", Body: body}, &a)
	return a, err
}

// Lookup finds a user by exact phone number or email.
func (c *Client) Lookup(ctx context.Context, login string) (Profile, error) {
	q := url.Values{}
	if strings.Contains(login, "@") {
		q.Set("email", login)
	} else {
		q.Set("phone", login)
	}
	var p Profile
	err := c.Do(ctx, Request{Method: http.MethodGet, Path: "/v1/users/lookup?" + q.Encode()}, &p)
	return p, err
}

// RefreshToken is the current refresh token, for an app to keep across
// restarts.
func (c *Client) RefreshToken() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.refresh
}
