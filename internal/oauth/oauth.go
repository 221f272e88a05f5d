// Package oauth keeps the mini-app platform's side of "Login with
// superapp": registered mini-apps (OAuth clients), authorization requests
// and the user's decision on them, grants (what a user let a mini-app do)
// with their refresh-token generations, and the signing keys of ID tokens.
// Its state is derived only from the OAUTH stream, so a request made on one
// data center can be approved on a second and redeemed on a third. The
// read model lives in the node's state store (keys.go); only the key sets
// and a few numbers are also kept in memory.
//
// Every single-use decision (approve, redeem a code, rotate a refresh token,
// revoke) is a command decided in Apply with the command's own time, never
// by one node's read model or clock. The package must never store a client
// secret in clear, never hand out a grant the log does not hold, never keep
// in memory what grows with its users, clients or history, and never
// import net/http or the NATS client.
package oauth

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"superapp/internal/apperr"
	"superapp/internal/cmdlog"
	"superapp/internal/store"
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

// storedClient is a mini-app as the store keeps it: with its secret's
// hash, which Client never shows.
type storedClient struct {
	Client
	SecretHash string `json:"secret_hash"`
}

// queued is one request in the purge queue.
type queued struct {
	Nonce     string    `json:"nonce"`
	CreatedAt time.Time `json:"created_at"`
}

// State is the OAuth read model, kept in the store (see keys.go); queries
// read what is committed. It is safe for concurrent use.
type State struct {
	space *store.Space

	// mu guards the in-memory part: what is bounded by design, also in
	// the store and loaded by Load.
	mu sync.RWMutex
	// keys are the ID-token key sets; first writer wins, so one (added
	// only by EnsureKeys, never per user or client).
	keys []sealedKeys
	// revokedN is the number of revocations so far: the next revoked/ key.
	// One number.
	revokedN uint64

	// Only apply uses these (one value each): the oldest request still
	// kept (the purge queue's head), so that most commands find nothing to
	// purge without reading the store, and a purge seeks straight to it
	// rather than over the queue's deleted past. oldestKnown is false
	// until the queue was read; oldest is nil when the queue is empty.
	oldest      *queueHead
	oldestKnown bool
	// made holds the keys of the clients and grants made by the entry at
	// madeSeq (one entry's commands at most). Such an id ends in its entry's
	// position, so only a command of the same entry can have made it
	// before: no store read tells whether it is in use.
	madeSeq uint64
	made    map[string]bool
}

// madeInEntry reports whether the entry at seq made the record at key
// already.
func (s *State) madeInEntry(seq uint64, key string) bool {
	if s.madeSeq != seq {
		clear(s.made)
		s.madeSeq = seq
	}
	return s.made[key]
}

// markMade records that the entry being applied made the record at key.
func (s *State) markMade(key string) {
	if s.made == nil {
		s.made = map[string]bool{}
	}
	s.made[key] = true
}

// queueHead is the purge queue's first entry.
type queueHead struct {
	key       string
	createdAt time.Time
}

// NewState returns the state kept in space (the OAUTH stream's).
func NewState(space *store.Space) *State {
	return &State{space: space}
}

// Load fills the in-memory part from the store; the machine's loader.
func (s *State) Load() {
	var names []string
	s.space.Scan(keysPrefix, "", false, func(k string, _ []byte) bool {
		names = append(names, k)
		return true
	})
	keys := make([]sealedKeys, len(names))
	for i, k := range names {
		s.space.GetJSON(k, &keys[i])
	}
	n := s.revokedCount()
	s.mu.Lock()
	s.keys, s.revokedN = keys, n
	s.oldest, s.oldestKnown = nil, false
	s.mu.Unlock()
}

// revokedCount is the number of revocations committed.
func (s *State) revokedCount() uint64 {
	var n uint64
	s.space.Scan(revokedPrefix, "", true, func(k string, _ []byte) bool {
		n = store.ParseSeq(k[len(revokedPrefix):]) + 1
		return false
	})
	return n
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

// Apply applies one OAUTH command, writing to the entry's batch. It is
// deterministic: e.At is its only clock.
func (s *State) Apply(seq uint64, e *cmdlog.Envelope) (any, *apperr.Error) {
	tx := s.space.Tx()
	s.purge(tx, e.At)
	bad := apperr.New(apperr.Malformed, "bad command")
	switch e.Kind {
	case kindRegister:
		var c registerClient
		if json.Unmarshal(e.Data, &c) != nil || c.Nonce == "" || e.Actor == "" {
			return nil, bad
		}
		n := 0
		tx.Scan(ownerKeys(e.Actor), "", false, func(string, []byte) bool {
			n++
			return n < maxAppsPerOwner
		})
		if n >= maxAppsPerOwner {
			return nil, apperr.New(apperr.Conflict, "an account may register at most %d mini-apps", maxAppsPerOwner)
		}
		cl := storedClient{Client: Client{
			ID: c.Nonce + "." + strconv.FormatUint(seq, 10), Owner: e.Actor, Name: c.Name,
			RedirectURIs: c.RedirectURIs, WebhookURL: c.WebhookURL, Scopes: c.Scopes, CreatedAt: e.At,
			SecretVersion: 1, SecretRotatedAt: e.At,
		}, SecretHash: c.SecretHash}
		if s.madeInEntry(seq, clientKey(cl.ID)) {
			return nil, apperr.New(apperr.Conflict, "client id in use")
		}
		tx.SetJSON(clientKey(cl.ID), cl)
		tx.Set(ownerKey(cl.Owner, cl.ID), nil)
		s.markMade(clientKey(cl.ID))
		return cl.Client, nil

	case kindRotate:
		var c rotateSecret
		if json.Unmarshal(e.Data, &c) != nil {
			return nil, bad
		}
		var cl storedClient
		if !tx.GetJSON(clientKey(c.ClientID), &cl) {
			return nil, apperr.New(apperr.NotFound, "no such mini-app")
		}
		if cl.Owner != e.Actor {
			return nil, apperr.New(apperr.Forbidden, "this mini-app is not yours")
		}
		if c.Version != cl.SecretVersion+1 {
			return nil, apperr.New(apperr.Conflict, "the secret was rotated meanwhile; retry")
		}
		cl.SecretVersion, cl.SecretRotatedAt, cl.SecretHash = c.Version, e.At, c.SecretHash
		tx.SetJSON(clientKey(cl.ID), cl)
		return cl.Client, nil

	case kindRequest:
		var c createRequest
		if json.Unmarshal(e.Data, &c) != nil || c.Nonce == "" {
			return nil, bad
		}
		var cl storedClient
		if !tx.GetJSON(clientKey(c.ClientID), &cl) {
			return nil, apperr.New(apperr.NotFound, "no such mini-app")
		}
		if !slices.Contains(cl.RedirectURIs, c.RedirectURI) {
			return nil, apperr.Field("redirect_uri", "redirect_uri is not registered for this mini-app")
		}
		for _, sc := range c.Scopes {
			if !scopeAllowed(&cl.Client, sc) {
				return nil, apperr.Field("scope", "scope %q is not registered for this mini-app", sc)
			}
		}
		if tx.Has(requestKey(c.Nonce)) {
			return nil, apperr.New(apperr.Conflict, "request id in use")
		}
		r := &Request{
			ID: c.Nonce + "." + strconv.FormatUint(seq, 10), ClientID: c.ClientID, RedirectURI: c.RedirectURI,
			Scopes: c.Scopes, State: c.State, Nonce: c.OIDCNonce, CodeChallenge: c.CodeChallenge,
			ResponseMode: c.ResponseMode, CreatedAt: e.At, ExpiresAt: e.At.Add(RequestTTL),
		}
		tx.SetJSON(requestKey(c.Nonce), r)
		tx.SetJSON(queueKey(e.Cursor), queued{Nonce: c.Nonce, CreatedAt: e.At})
		if s.oldestKnown && s.oldest == nil {
			s.oldest = &queueHead{key: queueKey(e.Cursor), createdAt: e.At}
		}
		return *r, nil

	case kindApprove, kindDeny:
		var c decide
		if json.Unmarshal(e.Data, &c) != nil || e.Actor == "" {
			return nil, bad
		}
		r, ok := requestByID(tx, c.RequestID)
		if !ok {
			return nil, apperr.New(apperr.NotFound, "no such authorization request")
		}
		switch {
		case r.Approved || r.Denied:
			return nil, apperr.New(apperr.Conflict, "this authorization request was already %s", map[bool]string{true: "approved", false: "denied"}[r.Approved])
		case !e.At.Before(r.ExpiresAt):
			return nil, apperr.New(RequestExpired, "this authorization request expired; start the login again")
		}
		// The request was made for a known mini-app, and mini-apps are
		// never removed: no need to read it again.
		at := e.At
		r.UserID, r.SessionID, r.DecidedAt = e.Actor, c.SessionID, &at
		if e.Kind == kindApprove {
			r.Approved = true
			r.ApprovedID = key(r.ID) + "." + strconv.FormatUint(seq, 10)
		} else {
			r.Denied = true
		}
		tx.SetJSON(requestKey(key(r.ID)), r)
		return *r, nil

	case kindRedeem:
		var c redeem
		if json.Unmarshal(e.Data, &c) != nil || c.GrantNonce == "" {
			return nil, bad
		}
		r, ok := requestByID(tx, c.RequestID)
		switch {
		case !ok:
			return nil, apperr.New(apperr.NotFound, "unknown or expired authorization code")
		case !r.Approved:
			return nil, apperr.New(apperr.Conflict, "the authorization request was not approved")
		case r.GrantID != "":
			// RFC 6749 §4.1.2: a code used twice revokes what it granted.
			var g Grant
			if tx.GetJSON(grantKey(r.GrantID), &g) {
				s.revoke(tx, &g, e.At, "code_reused")
			}
			return nil, apperr.New(apperr.Conflict, "the authorization code was already used; the grant it made is revoked")
		case r.DecidedAt == nil || e.At.Sub(*r.DecidedAt) > CodeTTL:
			return nil, apperr.New(RequestExpired, "the authorization code expired")
		}
		// The mini-app is known: as in approve.
		g := Grant{
			ID: c.GrantNonce + "." + strconv.FormatUint(seq, 10), ClientID: r.ClientID, UserID: r.UserID,
			Scopes: r.Scopes, AuthTime: *r.DecidedAt, CreatedAt: e.At, RefreshedAt: e.At,
			Offline: slices.Contains(r.Scopes, ScopeOffline), RequestID: r.ID,
		}
		if s.madeInEntry(seq, grantKey(g.ID)) {
			return nil, apperr.New(apperr.Conflict, "grant id in use")
		}
		tx.SetJSON(grantKey(g.ID), g)
		tx.Set(userGrantKey(g.UserID, g.ID), []byte(g.ClientID))
		s.markMade(grantKey(g.ID))
		r.GrantID = g.ID
		tx.SetJSON(requestKey(key(r.ID)), r)
		return g, nil

	case kindRefresh:
		var c refresh
		if json.Unmarshal(e.Data, &c) != nil {
			return nil, bad
		}
		var g Grant
		ok := tx.GetJSON(grantKey(c.GrantID), &g)
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
			s.revoke(tx, &g, e.At, "refresh_token_reused")
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
		tx.SetJSON(grantKey(g.ID), g)
		return g, nil

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
			// In grant id order: every node revokes them in the same order.
			var ids []string
			from := userGrants(e.Actor)
			tx.Scan(from, "", false, func(k string, v []byte) bool {
				if string(v) == c.ClientID {
					ids = append(ids, k[len(from):])
				}
				return true
			})
			n := 0
			for _, id := range ids {
				var g Grant
				if tx.GetJSON(grantKey(id), &g) && g.RevokedAt == nil {
					s.revoke(tx, &g, e.At, c.Reason)
					n++
				}
			}
			return map[string]int{"revoked": n}, nil
		}
		var g Grant
		ok := tx.GetJSON(grantKey(c.GrantID), &g)
		if !ok || (e.Actor != "" && g.UserID != e.Actor) || (c.ClientID != "" && g.ClientID != c.ClientID) {
			return nil, apperr.New(apperr.NotFound, "no such grant")
		}
		s.revoke(tx, &g, e.At, c.Reason)
		return g, nil

	case kindAddKeys:
		var c sealedKeys
		if json.Unmarshal(e.Data, &c) != nil {
			return nil, bad
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if len(s.keys) == 0 {
			// First writer wins; every node then uses the same keys.
			tx.SetJSON(keysKey(len(s.keys)), c)
			s.keys = append(s.keys, c)
		}
		return map[string]string{"kid": s.keys[len(s.keys)-1].Kid}, nil
	}
	return nil, apperr.New(apperr.Invalid, "unknown command %q", e.Kind)
}

// purge forgets requests made more than requestKeep before now. The queue
// is in log order, so every node forgets the same requests at the same
// command.
func (s *State) purge(tx *store.Tx, now time.Time) {
	if s.oldestKnown && (s.oldest == nil || now.Sub(s.oldest.createdAt) < requestKeep) {
		return
	}
	from := ""
	if s.oldest != nil {
		from = s.oldest.key
	}
	var gone []string // queue keys, then request keys
	var oldest *queueHead
	tx.Scan(queuePrefix, from, false, func(k string, v []byte) bool {
		var q queued
		if err := json.Unmarshal(v, &q); err != nil {
			panic(store.Failure{Err: fmt.Errorf("decode %s: %w", k, err)})
		}
		if now.Sub(q.CreatedAt) < requestKeep {
			oldest = &queueHead{key: k, createdAt: q.CreatedAt}
			return false
		}
		gone = append(gone, k, requestKey(q.Nonce))
		return true
	})
	for _, k := range gone {
		tx.Delete(k)
	}
	s.oldest, s.oldestKnown = oldest, true
}

func scopeAllowed(c *Client, scope string) bool {
	return scope == ScopeOpenID || scope == ScopeOffline || slices.Contains(c.Scopes, scope)
}

// key is the random part of a "<random>.<position>" id.
func key(id string) string {
	k, _, _ := strings.Cut(id, ".")
	return k
}

// getter reads committed state (a Space) or an entry's batch (a Tx).
type getter interface {
	GetJSON(key string, v any) bool
}

// requestByID finds a request by its id or its approved id.
func requestByID(g getter, id string) (*Request, bool) {
	var r Request
	if !g.GetJSON(requestKey(key(id)), &r) || (id != r.ID && id != r.ApprovedID) {
		return nil, false
	}
	return &r, true
}

// Client returns the mini-app with id.
func (s *State) Client(id string) (Client, bool) {
	var c storedClient
	if !s.space.GetJSON(clientKey(id), &c) {
		return Client{}, false
	}
	return c.Client, true
}

func (s *State) secretHash(id string) (string, bool) {
	var c storedClient
	if !s.space.GetJSON(clientKey(id), &c) {
		return "", false
	}
	return c.SecretHash, true
}

// ClientsOf lists the mini-apps an account registered, oldest first.
func (s *State) ClientsOf(owner string) []Client {
	var ids []string
	from := ownerKeys(owner)
	s.space.Scan(from, "", false, func(k string, _ []byte) bool {
		ids = append(ids, k[len(from):])
		return true
	})
	out := []Client{}
	for _, id := range ids {
		if c, ok := s.Client(id); ok {
			out = append(out, c)
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

// Request returns the request with id (its id or approved id).
func (s *State) Request(id string) (Request, bool) {
	r, ok := requestByID(s.space, id)
	if !ok {
		return Request{}, false
	}
	return *r, true
}

// Grant returns the grant with id.
func (s *State) Grant(id string) (Grant, bool) {
	var g Grant
	if !s.space.GetJSON(grantKey(id), &g) {
		return Grant{}, false
	}
	return g, true
}

// GrantsOf lists a user's grants that are live at now, newest first.
func (s *State) GrantsOf(user string, now time.Time) []Grant {
	var ids []string
	from := userGrants(user)
	s.space.Scan(from, "", false, func(k string, _ []byte) bool {
		ids = append(ids, k[len(from):])
		return true
	})
	out := []Grant{}
	for _, id := range ids {
		if g, ok := s.Grant(id); ok && g.Live(now) {
			out = append(out, g)
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
// next time. It reads what is committed only, so a cursor never skips a
// revocation being applied.
func (s *State) RevokedSince(from int) ([]Grant, int) {
	n := s.revokedCount()
	start := min(uint64(max(from, 0)), n)
	var ids []string
	s.space.Scan(revokedPrefix, revokedKey(start), false, func(k string, v []byte) bool {
		if store.ParseSeq(k[len(revokedPrefix):]) >= n {
			return false
		}
		ids = append(ids, string(v))
		return true
	})
	out := []Grant{}
	for _, id := range ids {
		if g, ok := s.Grant(id); ok {
			out = append(out, g)
		}
	}
	return out, int(n)
}

// revoke ends a grant (once), in the entry's batch.
func (s *State) revoke(tx *store.Tx, g *Grant, at time.Time, reason string) {
	if g.RevokedAt != nil {
		return
	}
	g.RevokedAt, g.RevokeReason = &at, reason
	tx.SetJSON(grantKey(g.ID), g)
	s.mu.Lock()
	n := s.revokedN
	s.revokedN++
	s.mu.Unlock()
	tx.Set(revokedKey(n), []byte(g.ID))
}
