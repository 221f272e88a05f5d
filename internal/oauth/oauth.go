// Package oauth keeps the mini-app platform's side of "Login with
// superapp": registered mini-apps (OAuth clients), authorization requests
// and the user's decision on them, grants (what a user let a mini-app do)
// with their refresh-token generations, and the signing keys of ID tokens.
// Its state is derived only from the OAUTH stream, so a request made on one
// data center can be approved on a second and redeemed on a third.
//
// Every single-use decision (approve, redeem a code, rotate a refresh token,
// revoke) is a command decided in Apply with the command's own time, never
// by one node's read model or clock. The package must never store a client
// secret in clear, never hand out a grant the log does not hold, and never
// import net/http or the NATS client.
package oauth

import (
	"encoding/json"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"superapp/internal/apperr"
	"superapp/internal/cmdlog"
)

// Stream is the name of the OAuth stream.
const Stream = "OAUTH"

// Scopes. openid and offline_access are always allowed; a mini-app may be
// granted only the platform scopes it registered.
const (
	ScopeOpenID     = "openid"
	ScopeOffline    = "offline_access"
	ScopeProfile    = "profile"     // the user's name and status message
	ScopeFriends    = "friends"     // the user's friend list
	ScopePay        = "pay"         // ask the user for payments (later)
	ScopeChatNotify = "chat-notify" // send the user chat notifications (later)
)

// AppScopes are the platform scopes a mini-app may register.
var AppScopes = []string{ScopeProfile, ScopeFriends, ScopePay, ScopeChatNotify}

// Error codes of this package.
const (
	// InsufficientScope: the mini-app's token lacks the scope a resource needs.
	InsufficientScope = "insufficient_scope"
	// RequestExpired: an authorization request or code is past its lifetime.
	RequestExpired = "request_expired"
)

func init() {
	apperr.Register(InsufficientScope, 403) // Forbidden
	apperr.Register(RequestExpired, 410)    // Gone
}

// Lifetimes.
const (
	// RequestTTL is how long a user has to approve an authorization request.
	RequestTTL = 10 * time.Minute
	// CodeTTL is how long after approval the code may be redeemed.
	CodeTTL = 5 * time.Minute
	// AccessTTL is the lifetime of a mini-app's access token.
	AccessTTL = 15 * time.Minute
	// RefreshIdle ends a grant whose refresh token was not used this long.
	RefreshIdle = 30 * 24 * time.Hour
	// requestKeep is how long a request stays known after it was made, so a
	// code presented again is still recognised as reused.
	requestKeep = time.Hour
	// maxAppsPerOwner bounds what one developer account registers.
	maxAppsPerOwner = 50
)

// Client is a registered mini-app, an OAuth confidential client.
type Client struct {
	ID           string    `json:"client_id"`
	Owner        string    `json:"owner_id"`
	Name         string    `json:"name"`
	RedirectURIs []string  `json:"redirect_uris"`
	WebhookURL   string    `json:"webhook_url,omitempty"`
	Scopes       []string  `json:"scopes"`
	CreatedAt    time.Time `json:"created_at"`
	// SecretVersion counts secret rotations; the secret of a version can be
	// derived again only by the nodes (it is a MAC), never read from the log.
	SecretVersion   uint64    `json:"secret_version"`
	SecretRotatedAt time.Time `json:"secret_rotated_at"`

	secretHash string
}

// Request is one authorization request, from /authorize to its redemption.
type Request struct {
	// ID is "<random>.<position>": the position lets any DC wait for it.
	ID            string     `json:"request_id"`
	ClientID      string     `json:"client_id"`
	RedirectURI   string     `json:"redirect_uri"`
	Scopes        []string   `json:"scopes"`
	State         string     `json:"state,omitempty"`
	Nonce         string     `json:"nonce,omitempty"`
	CodeChallenge string     `json:"code_challenge"` // S256, always
	ResponseMode  string     `json:"response_mode,omitempty"`
	CreatedAt     time.Time  `json:"created_at"`
	ExpiresAt     time.Time  `json:"expires_at"`
	Approved      bool       `json:"approved"`
	Denied        bool       `json:"denied"`
	UserID        string     `json:"user_id,omitempty"`
	SessionID     string     `json:"session_id,omitempty"`
	DecidedAt     *time.Time `json:"decided_at,omitempty"`
	// ApprovedID is "<random>.<approval position>": codes carry it, so the
	// DC redeeming a code waits until it has applied the approval.
	ApprovedID string `json:"approved_id,omitempty"`
	GrantID    string `json:"grant_id,omitempty"`
}

// Status is the request's state for the consent page: pending, approved,
// denied, redeemed or expired (at now).
func (r Request) Status(now time.Time) string {
	switch {
	case r.GrantID != "":
		return "redeemed"
	case r.Denied:
		return "denied"
	case r.Approved:
		return "approved"
	case !now.Before(r.ExpiresAt):
		return "expired"
	}
	return "pending"
}

// Grant is what a user let one mini-app do: made by redeeming an approved
// request's code, kept alive by refresh-token rotation, ended by revocation.
type Grant struct {
	ID        string    `json:"grant_id"` // "<random>.<position>"
	ClientID  string    `json:"client_id"`
	UserID    string    `json:"user_id"`
	Scopes    []string  `json:"scopes"`
	AuthTime  time.Time `json:"auth_time"`
	CreatedAt time.Time `json:"created_at"`
	// RefreshedAt is the last rotation (or creation).
	RefreshedAt time.Time `json:"refreshed_at"`
	// Offline is true when the grant has refresh tokens (offline_access).
	Offline bool `json:"offline"`
	// Gen is the generation of the only refresh token valid now.
	Gen          uint64     `json:"gen"`
	RevokedAt    *time.Time `json:"revoked_at,omitempty"`
	RevokeReason string     `json:"revoke_reason,omitempty"`
	RequestID    string     `json:"request_id"`
}

// Live reports whether the grant is still of use at now: not revoked, and
// its refresh token (or, without one, its access token) not yet expired.
func (g Grant) Live(now time.Time) bool {
	switch {
	case g.RevokedAt != nil:
		return false
	case g.Offline:
		return now.Sub(g.RefreshedAt) < RefreshIdle
	}
	return now.Sub(g.CreatedAt) < AccessTTL
}

// HasScope reports whether the grant includes scope.
func (g Grant) HasScope(scope string) bool { return slices.Contains(g.Scopes, scope) }

// sealedKeys is the ID-token and MAC key material, encrypted with the
// cluster secret.
type sealedKeys struct {
	Kid    string `json:"kid"`
	Sealed []byte `json:"sealed"`
}

// State is the OAuth read model. It is safe for concurrent use.
type State struct {
	mu       sync.RWMutex
	clients  map[string]*Client
	requests map[string]*Request // by the random part of the id
	queue    []string            // request keys in the order made, for purging
	grants   map[string]*Grant
	// revoked lists grant ids in the order they were revoked, so that
	// followers (webhooks) read only what is new.
	revoked []string
	keys    []sealedKeys
}

// NewState returns an empty state.
func NewState() *State {
	return &State{clients: map[string]*Client{}, requests: map[string]*Request{}, grants: map[string]*Grant{}}
}

// Command kinds in the OAUTH stream.
const (
	kindRegister = "client.register"
	kindRotate   = "client.rotate"
	kindRequest  = "request.create"
	kindApprove  = "request.approve"
	kindDeny     = "request.deny"
	kindRedeem   = "grant.create"
	kindRefresh  = "grant.refresh"
	kindRevoke   = "grant.revoke"
	kindAddKeys  = "keys.add"
)

type registerClient struct {
	Nonce        string   `json:"nonce"`
	Name         string   `json:"name"`
	RedirectURIs []string `json:"redirect_uris"`
	WebhookURL   string   `json:"webhook_url,omitempty"`
	Scopes       []string `json:"scopes"`
	SecretHash   string   `json:"secret_hash"`
}

type rotateSecret struct {
	ClientID   string `json:"client_id"`
	Version    uint64 `json:"version"`
	SecretHash string `json:"secret_hash"`
}

type createRequest struct {
	Nonce         string   `json:"nonce"`
	ClientID      string   `json:"client_id"`
	RedirectURI   string   `json:"redirect_uri"`
	Scopes        []string `json:"scopes"`
	State         string   `json:"state,omitempty"`
	OIDCNonce     string   `json:"oidc_nonce,omitempty"`
	CodeChallenge string   `json:"code_challenge"`
	ResponseMode  string   `json:"response_mode,omitempty"`
}

type decide struct {
	RequestID string `json:"request_id"`
	SessionID string `json:"session_id,omitempty"`
}

type redeem struct {
	RequestID  string `json:"request_id"`
	GrantNonce string `json:"grant_nonce"`
}

type refresh struct {
	GrantID string   `json:"grant_id"`
	Gen     uint64   `json:"gen"`
	Scopes  []string `json:"scopes,omitempty"`
}

type revoke struct {
	GrantID string `json:"grant_id,omitempty"`
	// ClientID, when set, is the client asking: it may revoke only its own
	// grants (RFC 7009). With GrantID empty, every grant of the actor for
	// this client is revoked.
	ClientID string `json:"client_id,omitempty"`
	Reason   string `json:"reason"`
}

// Apply applies one OAUTH command. It is deterministic: e.At is its only
// clock.
func (s *State) Apply(seq uint64, e *cmdlog.Envelope) (any, *apperr.Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.purge(e.At)
	bad := apperr.New(apperr.Malformed, "bad command")
	switch e.Kind {
	case kindRegister:
		var c registerClient
		if json.Unmarshal(e.Data, &c) != nil || c.Nonce == "" || e.Actor == "" {
			return nil, bad
		}
		n := 0
		for _, cl := range s.clients {
			if cl.Owner == e.Actor {
				n++
			}
		}
		if n >= maxAppsPerOwner {
			return nil, apperr.New(apperr.Conflict, "an account may register at most %d mini-apps", maxAppsPerOwner)
		}
		cl := &Client{
			ID: c.Nonce + "." + strconv.FormatUint(seq, 10), Owner: e.Actor, Name: c.Name,
			RedirectURIs: c.RedirectURIs, WebhookURL: c.WebhookURL, Scopes: c.Scopes, CreatedAt: e.At,
			SecretVersion: 1, SecretRotatedAt: e.At, secretHash: c.SecretHash,
		}
		if _, dup := s.clients[cl.ID]; dup {
			return nil, apperr.New(apperr.Conflict, "client id in use")
		}
		s.clients[cl.ID] = cl
		return *cl, nil

	case kindRotate:
		var c rotateSecret
		if json.Unmarshal(e.Data, &c) != nil {
			return nil, bad
		}
		cl, ok := s.clients[c.ClientID]
		if !ok {
			return nil, apperr.New(apperr.NotFound, "no such mini-app")
		}
		if cl.Owner != e.Actor {
			return nil, apperr.New(apperr.Forbidden, "this mini-app is not yours")
		}
		if c.Version != cl.SecretVersion+1 {
			return nil, apperr.New(apperr.Conflict, "the secret was rotated meanwhile; retry")
		}
		cl.SecretVersion, cl.SecretRotatedAt, cl.secretHash = c.Version, e.At, c.SecretHash
		return *cl, nil

	case kindRequest:
		var c createRequest
		if json.Unmarshal(e.Data, &c) != nil || c.Nonce == "" {
			return nil, bad
		}
		cl, ok := s.clients[c.ClientID]
		if !ok {
			return nil, apperr.New(apperr.NotFound, "no such mini-app")
		}
		if !slices.Contains(cl.RedirectURIs, c.RedirectURI) {
			return nil, apperr.Field("redirect_uri", "redirect_uri is not registered for this mini-app")
		}
		for _, sc := range c.Scopes {
			if !scopeAllowed(cl, sc) {
				return nil, apperr.Field("scope", "scope %q is not registered for this mini-app", sc)
			}
		}
		if _, dup := s.requests[c.Nonce]; dup {
			return nil, apperr.New(apperr.Conflict, "request id in use")
		}
		r := &Request{
			ID: c.Nonce + "." + strconv.FormatUint(seq, 10), ClientID: c.ClientID, RedirectURI: c.RedirectURI,
			Scopes: c.Scopes, State: c.State, Nonce: c.OIDCNonce, CodeChallenge: c.CodeChallenge,
			ResponseMode: c.ResponseMode, CreatedAt: e.At, ExpiresAt: e.At.Add(RequestTTL),
		}
		s.requests[c.Nonce] = r
		s.queue = append(s.queue, c.Nonce)
		return *r, nil

	case kindApprove, kindDeny:
		var c decide
		if json.Unmarshal(e.Data, &c) != nil || e.Actor == "" {
			return nil, bad
		}
		r, ok := s.requestByID(c.RequestID)
		if !ok {
			return nil, apperr.New(apperr.NotFound, "no such authorization request")
		}
		switch {
		case r.Approved || r.Denied:
			return nil, apperr.New(apperr.Conflict, "this authorization request was already %s", map[bool]string{true: "approved", false: "denied"}[r.Approved])
		case !e.At.Before(r.ExpiresAt):
			return nil, apperr.New(RequestExpired, "this authorization request expired; start the login again")
		}
		if _, ok := s.clients[r.ClientID]; !ok {
			return nil, apperr.New(apperr.NotFound, "no such mini-app")
		}
		at := e.At
		r.UserID, r.SessionID, r.DecidedAt = e.Actor, c.SessionID, &at
		if e.Kind == kindApprove {
			r.Approved = true
			r.ApprovedID = key(r.ID) + "." + strconv.FormatUint(seq, 10)
		} else {
			r.Denied = true
		}
		return *r, nil

	case kindRedeem:
		var c redeem
		if json.Unmarshal(e.Data, &c) != nil || c.GrantNonce == "" {
			return nil, bad
		}
		r, ok := s.requestByID(c.RequestID)
		switch {
		case !ok:
			return nil, apperr.New(apperr.NotFound, "unknown or expired authorization code")
		case !r.Approved:
			return nil, apperr.New(apperr.Conflict, "the authorization request was not approved")
		case r.GrantID != "":
			// RFC 6749 §4.1.2: a code used twice revokes what it granted.
			if g, ok := s.grants[r.GrantID]; ok {
				s.revoke(g, e.At, "code_reused")
			}
			return nil, apperr.New(apperr.Conflict, "the authorization code was already used; the grant it made is revoked")
		case r.DecidedAt == nil || e.At.Sub(*r.DecidedAt) > CodeTTL:
			return nil, apperr.New(RequestExpired, "the authorization code expired")
		}
		if _, ok := s.clients[r.ClientID]; !ok {
			return nil, apperr.New(apperr.NotFound, "no such mini-app")
		}
		g := &Grant{
			ID: c.GrantNonce + "." + strconv.FormatUint(seq, 10), ClientID: r.ClientID, UserID: r.UserID,
			Scopes: r.Scopes, AuthTime: *r.DecidedAt, CreatedAt: e.At, RefreshedAt: e.At,
			Offline: slices.Contains(r.Scopes, ScopeOffline), RequestID: r.ID,
		}
		if _, dup := s.grants[g.ID]; dup {
			return nil, apperr.New(apperr.Conflict, "grant id in use")
		}
		s.grants[g.ID] = g
		r.GrantID = g.ID
		return *g, nil

	case kindRefresh:
		var c refresh
		if json.Unmarshal(e.Data, &c) != nil {
			return nil, bad
		}
		g, ok := s.grants[c.GrantID]
		switch {
		case !ok:
			return nil, apperr.New(apperr.NotFound, "unknown refresh token")
		case g.RevokedAt != nil:
			return nil, apperr.New(apperr.SessionRevoked, "the grant was revoked")
		case !g.Offline:
			return nil, apperr.New(apperr.Conflict, "this grant has no refresh tokens")
		case e.At.Sub(g.RefreshedAt) >= RefreshIdle:
			return nil, apperr.New(RequestExpired, "the refresh token expired; log in again")
		case c.Gen > g.Gen:
			return nil, apperr.New(apperr.NotFound, "unknown refresh token")
		case c.Gen < g.Gen:
			// An old refresh token came back: it was copied. End the grant.
			s.revoke(g, e.At, "refresh_token_reused")
			return nil, apperr.New(apperr.SessionRevoked, "the refresh token was already used; the grant is revoked")
		}
		for _, sc := range c.Scopes {
			if !slices.Contains(g.Scopes, sc) {
				return nil, apperr.Field("scope", "scope %q was not granted", sc)
			}
		}
		g.Gen++
		g.RefreshedAt = e.At
		if len(c.Scopes) > 0 {
			// Narrowing is for good: a refresh cannot widen a grant.
			g.Scopes = c.Scopes
		}
		return *g, nil

	case kindRevoke:
		var c revoke
		if json.Unmarshal(e.Data, &c) != nil {
			return nil, bad
		}
		if c.GrantID == "" {
			// Every grant of the actor for one client (end of session).
			if e.Actor == "" || c.ClientID == "" {
				return nil, bad
			}
			ids := make([]string, 0)
			for id, g := range s.grants {
				if g.UserID == e.Actor && g.ClientID == c.ClientID && g.RevokedAt == nil {
					ids = append(ids, id)
				}
			}
			sort.Strings(ids)
			for _, id := range ids {
				s.revoke(s.grants[id], e.At, c.Reason)
			}
			return map[string]int{"revoked": len(ids)}, nil
		}
		g, ok := s.grants[c.GrantID]
		if !ok || (e.Actor != "" && g.UserID != e.Actor) || (c.ClientID != "" && g.ClientID != c.ClientID) {
			return nil, apperr.New(apperr.NotFound, "no such grant")
		}
		s.revoke(g, e.At, c.Reason)
		return *g, nil

	case kindAddKeys:
		var c sealedKeys
		if json.Unmarshal(e.Data, &c) != nil {
			return nil, bad
		}
		if len(s.keys) == 0 {
			// First writer wins; every node then uses the same keys.
			s.keys = append(s.keys, c)
		}
		return map[string]string{"kid": s.keys[len(s.keys)-1].Kid}, nil
	}
	return nil, apperr.New(apperr.Invalid, "unknown command %q", e.Kind)
}

// purge forgets requests made more than requestKeep before now. The queue
// is in log order, so every node forgets the same requests at the same
// command.
func (s *State) purge(now time.Time) {
	for len(s.queue) > 0 {
		r, ok := s.requests[s.queue[0]]
		if ok && now.Sub(r.CreatedAt) < requestKeep {
			return
		}
		delete(s.requests, s.queue[0])
		s.queue = s.queue[1:]
	}
}

func scopeAllowed(c *Client, scope string) bool {
	return scope == ScopeOpenID || scope == ScopeOffline || slices.Contains(c.Scopes, scope)
}

// key is the random part of a "<random>.<position>" id.
func key(id string) string {
	k, _, _ := strings.Cut(id, ".")
	return k
}

// requestByID finds a request by its id or its approved id.
func (s *State) requestByID(id string) (*Request, bool) {
	r, ok := s.requests[key(id)]
	if !ok || (id != r.ID && id != r.ApprovedID) {
		return nil, false
	}
	return r, true
}

func (c *Client) clone() Client {
	out := *c
	out.RedirectURIs = slices.Clone(c.RedirectURIs)
	out.Scopes = slices.Clone(c.Scopes)
	return out
}

// Client returns a copy of the mini-app with id.
func (s *State) Client(id string) (Client, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, ok := s.clients[id]
	if !ok {
		return Client{}, false
	}
	return c.clone(), true
}

func (s *State) secretHash(id string) (string, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, ok := s.clients[id]
	if !ok {
		return "", false
	}
	return c.secretHash, true
}

// ClientsOf lists the mini-apps an account registered, oldest first.
func (s *State) ClientsOf(owner string) []Client {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := []Client{}
	for _, c := range s.clients {
		if c.Owner == owner {
			out = append(out, c.clone())
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.Before(out[j].CreatedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// Request returns a copy of the request with id (its id or approved id).
func (s *State) Request(id string) (Request, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r, ok := s.requestByID(id)
	if !ok {
		return Request{}, false
	}
	out := *r
	out.Scopes = slices.Clone(r.Scopes)
	return out, true
}

// Grant returns a copy of the grant with id.
func (s *State) Grant(id string) (Grant, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	g, ok := s.grants[id]
	if !ok {
		return Grant{}, false
	}
	out := *g
	out.Scopes = slices.Clone(g.Scopes)
	return out, true
}

// GrantsOf lists a user's grants that are live at now, newest first.
func (s *State) GrantsOf(user string, now time.Time) []Grant {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := []Grant{}
	for _, g := range s.grants {
		if g.UserID == user && g.Live(now) {
			c := *g
			c.Scopes = slices.Clone(g.Scopes)
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.After(out[j].CreatedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

func (s *State) latestKeys() (sealedKeys, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if len(s.keys) == 0 {
		return sealedKeys{}, false
	}
	return s.keys[len(s.keys)-1], true
}

// RevokedGrants lists the revoked grants, for announcing revocations.
func (s *State) RevokedGrants() []Grant {
	out, _ := s.RevokedSince(0)
	return out
}

// RevokedSince returns the grants revoked after the first from
// revocations, in the order they were revoked, and the cursor to ask from
// next time.
func (s *State) RevokedSince(from int) ([]Grant, int) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := []Grant{}
	for _, id := range s.revoked[min(from, len(s.revoked)):] {
		c := *s.grants[id]
		c.Scopes = slices.Clone(c.Scopes)
		out = append(out, c)
	}
	return out, len(s.revoked)
}

// revoke ends a grant (once); the caller holds s.mu.
func (s *State) revoke(g *Grant, at time.Time, reason string) {
	if g.RevokedAt != nil {
		return
	}
	g.RevokedAt, g.RevokeReason = &at, reason
	s.revoked = append(s.revoked, g.ID)
}
