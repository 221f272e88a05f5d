package oauth

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"superapp/internal/apperr"
	"superapp/internal/cmdlog"
	"superapp/internal/store"
)

// ReplayWindow is how long the same authorization code or refresh token,
// presented again by its client (which passed PKCE and client
// authentication), gets the original answer: a client whose response was
// lost to a DC failure retries on another DC and must not be logged out.
// After it, a second use is a reuse and revokes the grant.
const ReplayWindow = time.Minute

// Config configures a Service.
type Config struct {
	Log cmdlog.Appender
	// Store keeps the read model (the node's state store).
	Store  *store.DB
	Secret []byte // cluster secret; seals the keys
	Now    func() time.Time
	Logger *slog.Logger
}

// Service is the mini-app platform's OAuth use cases. It is safe for
// concurrent use.
type Service struct {
	state   *State
	machine *cmdlog.Machine
	sub     *cmdlog.Submitter
	secret  []byte
	now     func() time.Time
	log     *slog.Logger
	keys    atomic.Pointer[keyBundle]
}

// New returns a service; the node must feed Machine() the OAUTH stream.
func New(cfg Config) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	space := cfg.Store.Space(Stream)
	st := NewState(space)
	m := cmdlog.NewMachine(Stream, space, st.Apply, cfg.Logger)
	m.SetLoader(st.Load)
	return &Service{
		state:   st,
		machine: m,
		sub:     &cmdlog.Submitter{Log: cfg.Log, Machine: m, Subject: "oauth", Now: cfg.Now},
		secret:  cfg.Secret,
		now:     cfg.Now,
		log:     cfg.Logger,
	}
}

// Close stops the service's writers; call it before the engine closes.
func (s *Service) Close() { s.sub.Close() }

// Machine is the state machine of the OAUTH stream.
func (s *Service) Machine() *cmdlog.Machine { return s.machine }

// State is the OAuth read model.
func (s *Service) State() *State { return s.state }

// Now is the service's clock.
func (s *Service) Now() time.Time { return s.now() }

// EnsureKeys loads the keys from the log, creating them if the cluster has
// none yet. Call it once the machine has caught up.
func (s *Service) EnsureKeys(ctx context.Context) error {
	sk, ok := s.state.latestKeys()
	if !ok {
		k, err := newKeyBundle()
		if err != nil {
			return err
		}
		sealed, err := k.seal(s.secret)
		if err != nil {
			return err
		}
		// One fixed id: whichever node commits first, every node applies
		// that one entry only.
		if _, err := s.sub.Submit(ctx, cmdlog.Write{ID: "system/oauth-keys-v1"}, kindAddKeys, "", sealed); err != nil {
			return fmt.Errorf("create oauth keys: %w", err)
		}
		if sk, ok = s.state.latestKeys(); !ok {
			return errors.New("oauth keys missing after create")
		}
	}
	k, err := openKeys(sk, s.secret)
	if err != nil {
		return err
	}
	s.keys.Store(k)
	return nil
}

// KeysReady reports whether EnsureKeys has succeeded.
func (s *Service) KeysReady() bool { return s.keys.Load() != nil }

// SigningKey is the Ed25519 key that signs ID tokens, and its key id.
func (s *Service) SigningKey() (ed25519.PrivateKey, string, error) {
	k := s.keys.Load()
	if k == nil {
		return nil, "", errKeys
	}
	return k.priv, k.Kid, nil
}

var errKeys = &apperr.Error{Code: apperr.Unavailable, Message: "oauth keys not loaded yet", RetryAfter: 1}

// maxAhead is how far past the known tail of the stream a position may be
// and still be waited for.
const maxAhead = 10_000

// wait makes the caller wait, bounded, until this node has applied the
// position an id carries: the id was made on another DC a moment ago.
func (s *Service) wait(ctx context.Context, seq uint64) error {
	if s.machine.Applied() >= seq {
		return nil
	}
	if seq > s.machine.Tail()+maxAhead {
		// Made up, not made on another DC a moment ago: no waiting.
		return apperr.New(apperr.NotFound, "no such login request, client or grant")
	}
	wctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := s.machine.WaitApplied(wctx, seq); err != nil {
		return &apperr.Error{Code: apperr.NotCaughtUp, Message: "this data center has not caught up with this login yet; retry", RetryAfter: 1}
	}
	return nil
}

// position is the log position an id "<random>.<position>" carries.
func position(id string) (uint64, bool) {
	k, p, ok := strings.Cut(id, ".")
	if !ok || k == "" || strings.Contains(p, ".") {
		return 0, false
	}
	seq, err := strconv.ParseUint(p, 10, 64)
	return seq, err == nil && seq > 0
}

func decode[T any](res cmdlog.Result) (T, error) {
	var v T
	err := json.Unmarshal(res.Value, &v)
	return v, err
}

// ClientInput is what a developer registers.
type ClientInput struct {
	Name         string   `json:"name"`
	RedirectURIs []string `json:"redirect_uris"`
	WebhookURL   string   `json:"webhook_url,omitempty"`
	Scopes       []string `json:"scopes"`
}

// Credentials is a mini-app with its client secret, shown once.
type Credentials struct {
	Client
	ClientSecret string `json:"client_secret"`
}

// RegisterClient registers a mini-app owned by owner. Errors: invalid_field,
// conflict (too many apps), idempotency_key_reused, unavailable.
func (s *Service) RegisterClient(ctx context.Context, w cmdlog.Write, owner string, in ClientInput) (Credentials, cmdlog.Result, error) {
	c, aerr := validClient(in)
	if aerr != nil {
		return Credentials{}, cmdlog.Result{}, aerr
	}
	k := s.keys.Load()
	if k == nil {
		return Credentials{}, cmdlog.Result{}, errKeys
	}
	c.Nonce = cmdlog.NewID()[:24]
	c.SecretHash = hashSecret(k.clientSecret(c.Nonce, 1))
	res, err := s.sub.Submit(ctx, w, kindRegister, owner, c)
	if err != nil {
		return Credentials{}, res, err
	}
	cl, err := decode[Client](res)
	if err != nil {
		return Credentials{}, res, err
	}
	// A replay derives the same secret again: the answer is the original.
	return Credentials{Client: cl, ClientSecret: k.clientSecret(key(cl.ID), cl.SecretVersion)}, res, nil
}

// RotateSecret gives a mini-app a new secret; the old one stops working at
// once. Errors: not_found, forbidden (not the owner), conflict.
func (s *Service) RotateSecret(ctx context.Context, w cmdlog.Write, owner, clientID string) (Credentials, cmdlog.Result, error) {
	k := s.keys.Load()
	if k == nil {
		return Credentials{}, cmdlog.Result{}, errKeys
	}
	var version uint64
	if _, replay := s.machine.Outcome(w.ID); !replay || w.ID == "" {
		cl, err := s.OwnClient(ctx, owner, clientID)
		if err != nil {
			return Credentials{}, cmdlog.Result{}, err
		}
		version = cl.SecretVersion + 1
	}
	res, err := s.sub.Submit(ctx, w, kindRotate, owner, rotateSecret{ClientID: clientID, Version: version, SecretHash: hashSecret(k.clientSecret(key(clientID), version))})
	if err != nil {
		return Credentials{}, res, err
	}
	cl, err := decode[Client](res)
	if err != nil {
		return Credentials{}, res, err
	}
	return Credentials{Client: cl, ClientSecret: k.clientSecret(key(cl.ID), cl.SecretVersion)}, res, nil
}

// ClientByID returns a mini-app, waiting until this node knows it. Errors:
// not_found, position_not_reached.
func (s *Service) ClientByID(ctx context.Context, id string) (Client, error) {
	seq, ok := position(id)
	if !ok {
		return Client{}, apperr.New(apperr.NotFound, "no such mini-app")
	}
	if err := s.wait(ctx, seq); err != nil {
		return Client{}, err
	}
	c, ok := s.state.Client(id)
	if !ok {
		return Client{}, apperr.New(apperr.NotFound, "no such mini-app")
	}
	return c, nil
}

// OwnClient returns one of owner's mini-apps. Errors: not_found,
// forbidden (another account's app).
func (s *Service) OwnClient(ctx context.Context, owner, id string) (Client, error) {
	c, err := s.ClientByID(ctx, id)
	if err != nil {
		return Client{}, err
	}
	if c.Owner != owner {
		return Client{}, apperr.New(apperr.Forbidden, "this mini-app is not yours")
	}
	return c, nil
}

// CheckSecret reports whether secret is a mini-app's current secret.
// Errors: unauthenticated.
func (s *Service) CheckSecret(ctx context.Context, clientID, secret string) error {
	if _, err := s.ClientByID(ctx, clientID); err != nil {
		return err
	}
	want, ok := s.state.secretHash(clientID)
	got := hashSecret(secret)
	if !ok || subtle.ConstantTimeCompare([]byte(want), []byte(got)) != 1 {
		return apperr.New(apperr.Unauthenticated, "wrong client_id or client_secret")
	}
	return nil
}

// NewRequest is an authorization request as /authorize received it, after
// the provider checked the client and redirect URI.
type NewRequest struct {
	ClientID            string
	RedirectURI         string
	Scopes              []string
	State               string
	Nonce               string
	CodeChallenge       string
	CodeChallengeMethod string
	ResponseMode        string
}

// CreateRequest records an authorization request for the user to approve.
// Errors: invalid_field (field scope, code_challenge, state, nonce,
// response_mode, redirect_uri), not_found, unavailable.
func (s *Service) CreateRequest(ctx context.Context, in NewRequest) (Request, error) {
	c, aerr := validRequest(in)
	if aerr != nil {
		return Request{}, aerr
	}
	cl, err := s.ClientByID(ctx, in.ClientID)
	if err != nil {
		return Request{}, err
	}
	for _, sc := range c.Scopes {
		if !scopeAllowed(&cl, sc) {
			return Request{}, apperr.Field("scope", "scope %q is not registered for this mini-app", sc)
		}
	}
	c.Nonce = cmdlog.NewID()
	res, err := s.sub.Submit(ctx, cmdlog.Write{}, kindRequest, "", c)
	if err != nil {
		return Request{}, err
	}
	return decode[Request](res)
}

// Request returns an authorization request by its id or approved id,
// waiting until this node knows it. Errors: not_found,
// position_not_reached.
func (s *Service) Request(ctx context.Context, id string) (Request, error) {
	seq, ok := position(id)
	if !ok {
		return Request{}, apperr.New(apperr.NotFound, "no such authorization request")
	}
	if err := s.wait(ctx, seq); err != nil {
		return Request{}, err
	}
	r, ok := s.state.Request(id)
	if !ok {
		return Request{}, apperr.New(apperr.NotFound, "no such authorization request")
	}
	return r, nil
}

// Approve records that user (on session) lets the request's mini-app in.
// Errors: not_found, conflict (decided already), request_expired.
func (s *Service) Approve(ctx context.Context, w cmdlog.Write, user, session, requestID string) (Request, cmdlog.Result, error) {
	return s.decide(ctx, w, kindApprove, user, session, requestID)
}

// Deny records that user refuses the request. Errors: as Approve.
func (s *Service) Deny(ctx context.Context, w cmdlog.Write, user, session, requestID string) (Request, cmdlog.Result, error) {
	return s.decide(ctx, w, kindDeny, user, session, requestID)
}

func (s *Service) decide(ctx context.Context, w cmdlog.Write, kind, user, session, requestID string) (Request, cmdlog.Result, error) {
	if _, err := s.Request(ctx, requestID); err != nil {
		return Request{}, cmdlog.Result{}, err
	}
	res, err := s.sub.Submit(ctx, w, kind, user, decide{RequestID: requestID, SessionID: session})
	if err != nil {
		return Request{}, res, err
	}
	r, err := decode[Request](res)
	return r, res, err
}

// Redeem turns an approved request's code into a grant. The code's hash is
// the command's id: the same code retried within ReplayWindow gets the
// original grant on any DC; used again later, or another code of the same
// request, revokes the grant. The caller has verified PKCE and the client.
// Errors: not_found, conflict, request_expired, session_revoked,
// unavailable.
func (s *Service) Redeem(ctx context.Context, requestID, code string) (Grant, error) {
	if _, err := s.Request(ctx, requestID); err != nil {
		return Grant{}, err
	}
	return s.useOnce(ctx, "code/"+digest(code), kindRedeem, redeem{RequestID: requestID, GrantNonce: cmdlog.NewID()},
		func(g Grant) time.Time { return g.CreatedAt }, "code_reused")
}

// Refresh rotates a grant's refresh token from generation gen, narrowing its
// scopes if scopes is not empty. The token's hash is the command's id (see
// Redeem); an older generation revokes the grant. Errors: not_found,
// session_revoked, request_expired, invalid_field (scope), unavailable.
func (s *Service) Refresh(ctx context.Context, grantID string, gen uint64, token string, scopes []string) (Grant, error) {
	if _, err := s.Grant(ctx, grantID); err != nil {
		return Grant{}, err
	}
	return s.useOnce(ctx, "rt/"+digest(token), kindRefresh, refresh{GrantID: grantID, Gen: gen, Scopes: scopes},
		func(g Grant) time.Time { return g.RefreshedAt }, "refresh_token_reused")
}

// useOnce applies a single-use credential's command under the id id. A
// credential used before gets the original grant within ReplayWindow of
// when it was used (usedAt), and revokes the grant after it.
func (s *Service) useOnce(ctx context.Context, id, kind string, cmd any, usedAt func(Grant) time.Time, reason string) (Grant, error) {
	var g Grant
	if o, ok := s.machine.Outcome(id); ok && o.Err == nil {
		if err := json.Unmarshal(o.Value, &g); err != nil {
			return Grant{}, err
		}
	} else {
		res, err := s.sub.Submit(ctx, cmdlog.Write{ID: id}, kind, "", cmd)
		if err != nil {
			return Grant{}, err
		}
		if g, err = decode[Grant](res); err != nil || !res.Replayed {
			return g, err
		}
	}
	cur, ok := s.state.Grant(g.ID)
	if !ok || cur.RevokedAt != nil {
		return Grant{}, apperr.New(apperr.SessionRevoked, "the grant was revoked")
	}
	if s.now().Sub(usedAt(g)) < ReplayWindow {
		return g, nil
	}
	if _, err := s.sub.Submit(ctx, cmdlog.Write{}, kindRevoke, "", revoke{GrantID: g.ID, Reason: reason}); err != nil {
		return Grant{}, err
	}
	return Grant{}, apperr.New(apperr.SessionRevoked, "this credential was already used; the grant is revoked")
}

func digest(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// Grant returns a grant, waiting until this node knows it. Errors:
// not_found, position_not_reached.
func (s *Service) Grant(ctx context.Context, id string) (Grant, error) {
	seq, ok := position(id)
	if !ok {
		return Grant{}, apperr.New(apperr.NotFound, "no such grant")
	}
	if err := s.wait(ctx, seq); err != nil {
		return Grant{}, err
	}
	g, ok := s.state.Grant(id)
	if !ok {
		return Grant{}, apperr.New(apperr.NotFound, "no such grant")
	}
	return g, nil
}

// Grants lists a user's live grants, newest first.
func (s *Service) Grants(user string) []Grant { return s.state.GrantsOf(user, s.now()) }

// RevokeGrant ends one of user's grants: its tokens stop working on every
// DC. Errors: not_found.
func (s *Service) RevokeGrant(ctx context.Context, w cmdlog.Write, user, grantID string) (Grant, cmdlog.Result, error) {
	if _, replay := s.machine.Outcome(w.ID); !replay || w.ID == "" {
		if g, err := s.Grant(ctx, grantID); err != nil || g.UserID != user {
			return Grant{}, cmdlog.Result{}, apperr.New(apperr.NotFound, "no such grant")
		}
	}
	res, err := s.sub.Submit(ctx, w, kindRevoke, user, revoke{GrantID: grantID, Reason: "revoked_by_user"})
	if err != nil {
		return Grant{}, res, err
	}
	g, err := decode[Grant](res)
	return g, res, err
}

// RevokeForClient ends a grant at its mini-app's request (RFC 7009).
// Errors: not_found (not this client's grant).
func (s *Service) RevokeForClient(ctx context.Context, clientID, grantID string) error {
	g, err := s.Grant(ctx, grantID)
	if err != nil {
		return err
	}
	if g.ClientID != clientID {
		return apperr.New(apperr.NotFound, "no such grant")
	}
	if g.RevokedAt != nil {
		return nil
	}
	_, err = s.sub.Submit(ctx, cmdlog.Write{}, kindRevoke, "", revoke{GrantID: grantID, ClientID: clientID, Reason: "revoked_by_client"})
	return err
}

// RevokeAll ends every grant of user for one mini-app.
func (s *Service) RevokeAll(ctx context.Context, user, clientID string) error {
	_, err := s.sub.Submit(ctx, cmdlog.Write{}, kindRevoke, user, revoke{ClientID: clientID, Reason: "session_ended"})
	return err
}

// RefreshToken is the refresh token of a grant's current generation.
func (s *Service) RefreshToken(g Grant) (string, error) {
	k := s.keys.Load()
	if k == nil {
		return "", errKeys
	}
	return k.refreshToken(g.ID, g.Gen), nil
}

// ParseRefreshToken checks a refresh token's MAC and returns its grant and
// generation.
func (s *Service) ParseRefreshToken(tok string) (grantID string, gen uint64, ok bool) {
	k := s.keys.Load()
	if k == nil {
		return "", 0, false
	}
	return k.parseRefresh(tok)
}

// AccessTokenID is the id of a new access token for a grant:
// "<grant id>.<expiry unix>". The provider encrypts it with the subject.
func (s *Service) AccessTokenID(g Grant) (string, time.Time) {
	exp := s.now().Add(AccessTTL).Truncate(time.Second)
	return g.ID + "." + strconv.FormatInt(exp.Unix(), 10), exp
}

// GrantOfTokenID returns the grant id inside an access token id.
func GrantOfTokenID(tokenID string) (string, bool) {
	i := strings.LastIndexByte(tokenID, '.')
	if i < 0 {
		return "", false
	}
	_, ok := position(tokenID[:i])
	return tokenID[:i], ok
}

// Access is what a mini-app's access token allows.
type Access struct {
	UserID    string
	ClientID  string
	GrantID   string
	Scopes    []string
	ExpiresAt time.Time
	AuthTime  time.Time
}

// HasScope reports whether the token carries scope.
func (a Access) HasScope(scope string) bool { return slices.Contains(a.Scopes, scope) }

// CheckAccess verifies an access token's id and subject: not expired, its
// grant known here (waiting for it if needed), not revoked, for subject.
// Errors: unauthenticated, token_expired, session_revoked,
// position_not_reached.
func (s *Service) CheckAccess(ctx context.Context, tokenID, subject string) (Access, error) {
	grantID, ok := GrantOfTokenID(tokenID)
	if !ok {
		return Access{}, apperr.New(apperr.Unauthenticated, "invalid access token")
	}
	unix, err := strconv.ParseInt(tokenID[len(grantID)+1:], 10, 64)
	if err != nil {
		return Access{}, apperr.New(apperr.Unauthenticated, "invalid access token")
	}
	exp := time.Unix(unix, 0)
	if !s.now().Before(exp) {
		return Access{}, apperr.New(apperr.TokenExpired, "access token expired; refresh it")
	}
	g, err := s.Grant(ctx, grantID)
	if err != nil {
		if apperr.From(err).Code == apperr.NotFound {
			return Access{}, apperr.New(apperr.Unauthenticated, "invalid access token")
		}
		return Access{}, err
	}
	switch {
	case g.UserID != subject:
		return Access{}, apperr.New(apperr.Unauthenticated, "invalid access token")
	case g.RevokedAt != nil:
		return Access{}, apperr.New(apperr.SessionRevoked, "the user's grant to this mini-app was revoked")
	}
	return Access{UserID: g.UserID, ClientID: g.ClientID, GrantID: g.ID, Scopes: g.Scopes, ExpiresAt: exp, AuthTime: g.AuthTime}, nil
}

// WebhookSecret is version version of a mini-app's webhook signing secret.
func (s *Service) WebhookSecret(clientID string, version uint64) (string, error) {
	k := s.keys.Load()
	if k == nil {
		return "", errKeys
	}
	return k.webhookSecret(key(clientID), version), nil
}
