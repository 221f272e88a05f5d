package identity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"superapp/internal/apperr"
	"superapp/internal/cmdlog"
	"superapp/internal/store"
)

// Stream is the name of the identity stream.
const Stream = "IDENTITY"

// Config configures a Service.
type Config struct {
	Log cmdlog.Appender
	// Store keeps the read model (the node's state store).
	Store  *store.DB
	Secret []byte // cluster secret; seals the token keys
	Now    func() time.Time
	Logger *slog.Logger
	// AccessTTL is the lifetime of access tokens (default 15 minutes).
	AccessTTL time.Duration
}

// Service is identity's use cases. It is safe for concurrent use.
type Service struct {
	state   *State
	machine *cmdlog.Machine
	sub     *cmdlog.Submitter
	secret  []byte
	now     func() time.Time
	ttl     time.Duration
	keys    atomic.Pointer[keyBundle]

	verifiedMu sync.Mutex
	verified   map[string]*claims

	hashing      chan struct{} // bounds concurrent argon2 work (19 MiB each)
	loginAddr    *Throttle
	loginAccount *Throttle
	signupAddr   *Throttle
	lookups      *Throttle
}

// New returns a service; the node must feed Machine() the IDENTITY stream.
func New(cfg Config) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.AccessTTL == 0 {
		cfg.AccessTTL = 15 * time.Minute
	}
	space := cfg.Store.Space(Stream)
	st := NewState(space)
	m := cmdlog.NewMachine(Stream, space, st.Apply, cfg.Logger)
	m.SetLoader(st.Load)
	return &Service{
		state:        st,
		machine:      m,
		sub:          &cmdlog.Submitter{Log: cfg.Log, Machine: m, Subject: "identity", Now: cfg.Now},
		secret:       cfg.Secret,
		now:          cfg.Now,
		ttl:          cfg.AccessTTL,
		hashing:      make(chan struct{}, 2*runtime.GOMAXPROCS(0)),
		verified:     map[string]*claims{},
		loginAddr:    NewThrottle(2*time.Second, 30, cfg.Now),
		loginAccount: NewThrottle(time.Minute, 5, cfg.Now),
		signupAddr:   NewThrottle(30*time.Second, 20, cfg.Now),
		lookups:      NewThrottle(2*time.Second, 30, cfg.Now),
	}
}

// Close stops the service's writers; call it before the engine closes.
func (s *Service) Close() { s.sub.Close() }

// Machine is the state machine of the IDENTITY stream.
func (s *Service) Machine() *cmdlog.Machine { return s.machine }

// State is the identity read model.
func (s *Service) State() *State { return s.state }

// EnsureKeys loads the token keys from the log, creating them if the
// cluster has none yet. Call it once the machine has caught up.
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
		if _, err := s.sub.Submit(ctx, cmdlog.Write{ID: "system/keys-v1"}, kindAddKeys, "", sealed); err != nil {
			return fmt.Errorf("create token keys: %w", err)
		}
		if sk, ok = s.state.latestKeys(); !ok {
			return errors.New("token keys missing after create")
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

func (s *Service) hash(ctx context.Context, fn func()) error {
	select {
	case s.hashing <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.hashing }()
	fn()
	return nil
}

// SignUp is the input of SignUp.
type SignUp struct {
	Phone    string `json:"phone,omitempty"`
	Email    string `json:"email,omitempty"`
	Password string `json:"password"`
	Name     string `json:"name"`
}

// SignUp creates an account. Errors: invalid_field, weak_password,
// login_taken, rate_limited, idempotency_key_reused, unavailable.
func (s *Service) SignUp(ctx context.Context, w cmdlog.Write, in SignUp, addr string) (User, cmdlog.Result, error) {
	c := createAccount{UserID: cmdlog.NewID()}
	var ok bool
	switch {
	case in.Phone == "" && in.Email == "":
		return User{}, cmdlog.Result{}, apperr.Field("phone", "give a phone number or an email")
	case in.Phone != "" && in.Email != "":
		return User{}, cmdlog.Result{}, apperr.Field("email", "give a phone number or an email, not both")
	case in.Phone != "":
		if c.Phone, ok = NormalizePhone(in.Phone); !ok {
			return User{}, cmdlog.Result{}, apperr.Field("phone", "phone must be in international form, e.g. +821012345678")
		}
	default:
		if c.Email, ok = NormalizeEmail(in.Email); !ok {
			return User{}, cmdlog.Result{}, apperr.Field("email", "email is not a valid address")
		}
	}
	name, aerr := cleanText("name", in.Name, 64, false)
	if aerr != nil {
		return User{}, cmdlog.Result{}, aerr
	}
	c.Name = name
	if _, replay := s.machine.Outcome(w.ID); replay && w.ID != "" {
		// A replay: answer without spending a hash or the rate budget.
		return s.submitAccount(ctx, w, c)
	}
	if ok, wait := s.signupAddr.Allow(addr); !ok {
		return User{}, cmdlog.Result{}, rateLimited(wait, "too many sign-ups from this address")
	}
	var err error
	var weak *apperr.Error
	if herr := s.hash(ctx, func() {
		if weak = checkPassword(in.Password, in.Name, c.Email, c.Phone); weak == nil {
			c.PasswordHash, err = hashPassword(in.Password)
		}
	}); herr != nil {
		return User{}, cmdlog.Result{}, herr
	}
	if weak != nil {
		return User{}, cmdlog.Result{}, weak
	}
	if err != nil {
		return User{}, cmdlog.Result{}, err
	}
	return s.submitAccount(ctx, w, c)
}

func (s *Service) submitAccount(ctx context.Context, w cmdlog.Write, c createAccount) (User, cmdlog.Result, error) {
	res, err := s.sub.Submit(ctx, w, kindCreateAccount, "", c)
	if err != nil {
		return User{}, res, err
	}
	var u User
	err = json.Unmarshal(res.Value, &u)
	return u, res, err
}

func rateLimited(wait time.Duration, msg string) *apperr.Error {
	return &apperr.Error{Code: apperr.RateLimited, Message: msg, RetryAfter: int(math.Ceil(wait.Seconds()))}
}

// Login is the input of Login.
type Login struct {
	Login    string `json:"login"`
	Password string `json:"password"`
	Device   string `json:"device,omitempty"`
}

// Tokens is a session's credentials.
type Tokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	UserID       string `json:"user_id"`
	SessionID    string `json:"session_id"`
}

var (
	dummyOnce sync.Once
	dummyHash string
)

// Login checks a password and opens a session. Errors: invalid_field,
// invalid_credentials, rate_limited, idempotency_key_reused, unavailable.
func (s *Service) Login(ctx context.Context, w cmdlog.Write, in Login, addr string) (Tokens, cmdlog.Result, error) {
	if in.Login == "" {
		return Tokens{}, cmdlog.Result{}, apperr.Field("login", "login is required")
	}
	if in.Password == "" {
		return Tokens{}, cmdlog.Result{}, apperr.Field("password", "password is required")
	}
	if len(in.Password) > maxPasswordBytes {
		return Tokens{}, cmdlog.Result{}, apperr.New(apperr.BadCredentials, "wrong login or password")
	}
	device, aerr := cleanText("device", in.Device, 64, true)
	if aerr != nil {
		return Tokens{}, cmdlog.Result{}, aerr
	}
	key, ok := loginKeyFor(in.Login)
	if !ok {
		return Tokens{}, cmdlog.Result{}, apperr.Field("login", "login must be a phone number in international form or an email")
	}
	if ok, wait := s.loginAddr.Allow(addr); !ok {
		return Tokens{}, cmdlog.Result{}, rateLimited(wait, "too many login attempts from this address")
	}
	refund, wait := s.loginAccount.Reserve(key)
	if refund == nil {
		return Tokens{}, cmdlog.Result{}, rateLimited(wait, "too many failed logins for this account")
	}
	u, hash, found := s.state.userByLogin(key)
	if !found {
		dummyOnce.Do(func() { dummyHash, _ = hashPassword(cmdlog.NewID()) })
		hash = dummyHash
	}
	var match bool
	var verr error
	if err := s.hash(ctx, func() { match, verr = verifyPassword(hash, in.Password) }); err != nil {
		return Tokens{}, cmdlog.Result{}, err
	}
	if verr != nil {
		return Tokens{}, cmdlog.Result{}, fmt.Errorf("verify password of %s: %w", u.ID, verr)
	}
	if !found || !match {
		return Tokens{}, cmdlog.Result{}, apperr.New(apperr.BadCredentials, "wrong login or password")
	}
	refund() // only failures count against the account
	if device == "" {
		device = "unnamed device"
	}
	res, err := s.sub.Submit(ctx, w, kindCreateSession, u.ID, createSession{SessionID: cmdlog.NewID(), Device: device, Address: addr})
	if err != nil {
		return Tokens{}, res, err
	}
	t, err := s.grantTokens(res)
	return t, res, err
}

func (s *Service) grantTokens(res cmdlog.Result) (Tokens, error) {
	var g sessionGrant
	if err := json.Unmarshal(res.Value, &g); err != nil {
		return Tokens{}, err
	}
	k := s.keys.Load()
	if k == nil {
		return Tokens{}, &apperr.Error{Code: apperr.Unavailable, Message: "token keys not loaded yet", RetryAfter: 1}
	}
	at, err := k.signAccess(g.UserID, g.SessionID, g.Pos, s.now(), s.ttl)
	if err != nil {
		return Tokens{}, fmt.Errorf("sign token: %w", err)
	}
	return Tokens{
		AccessToken:  at,
		RefreshToken: k.refreshToken(g.SessionID, g.Gen),
		TokenType:    "Bearer",
		ExpiresIn:    int(s.ttl.Seconds()),
		UserID:       g.UserID,
		SessionID:    g.SessionID,
	}, nil
}

// Refresh rotates a refresh token: the presented one stops working, a new
// pair is returned. Presenting an older token revokes the session.
// Errors: unauthenticated, session_revoked, unavailable.
func (s *Service) Refresh(ctx context.Context, w cmdlog.Write, refreshToken string) (Tokens, cmdlog.Result, error) {
	k := s.keys.Load()
	if k == nil {
		return Tokens{}, cmdlog.Result{}, &apperr.Error{Code: apperr.Unavailable, Message: "token keys not loaded yet", RetryAfter: 1}
	}
	sid, gen, ok := k.parseRefresh(refreshToken)
	if !ok {
		return Tokens{}, cmdlog.Result{}, &apperr.Error{Code: apperr.Unauthenticated, Field: "refresh_token", Message: "invalid refresh token"}
	}
	// The session may have been made on another DC a moment ago: let the
	// log decide, in order, rather than this node's read model right now.
	res, err := s.sub.Submit(ctx, w, kindRefreshSession, "", refreshSession{SessionID: sid, Gen: gen})
	if err != nil {
		return Tokens{}, res, err
	}
	t, err := s.grantTokens(res)
	return t, res, err
}

// Principal is who an access token speaks for.
type Principal struct {
	UserID    string
	SessionID string
}

// Authenticate verifies an access token locally: the signature, expiry and
// that its session is live in this node's read model. Errors:
// unauthenticated, token_expired, session_revoked, position_not_reached.
func (s *Service) Authenticate(ctx context.Context, token string) (Principal, error) {
	k := s.keys.Load()
	if k == nil {
		return Principal{}, &apperr.Error{Code: apperr.Unavailable, Message: "token keys not loaded yet", RetryAfter: 1}
	}
	c, err := s.verify(k, token)
	if errors.Is(err, errTokenExpired) {
		return Principal{}, apperr.New(apperr.TokenExpired, "access token expired; refresh it")
	}
	if err != nil {
		return Principal{}, apperr.New(apperr.Unauthenticated, "invalid access token")
	}
	if s.machine.Applied() < c.Pos {
		wctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		err := s.machine.WaitApplied(wctx, c.Pos)
		cancel()
		if err != nil {
			return Principal{}, &apperr.Error{Code: apperr.NotCaughtUp, Message: "this data center has not caught up with your session yet", RetryAfter: 1}
		}
	}
	ss, ok := s.state.session(c.SessionID)
	switch {
	case !ok || ss.UserID != c.Subject:
		return Principal{}, apperr.New(apperr.Unauthenticated, "invalid access token")
	case ss.RevokedAt != nil:
		return Principal{}, apperr.New(apperr.SessionRevoked, "the session was revoked")
	}
	return Principal{UserID: c.Subject, SessionID: c.SessionID}, nil
}

// verify checks a token's signature once and remembers the claims: an
// Ed25519 verification costs more than the rest of a request. Expiry is
// checked on every use, the session's state by the caller.
func (s *Service) verify(k *keyBundle, token string) (*claims, error) {
	now := s.now()
	s.verifiedMu.Lock()
	c, ok := s.verified[token]
	s.verifiedMu.Unlock()
	if ok {
		if !now.Before(c.ExpiresAt.Time) {
			return nil, errTokenExpired
		}
		return c, nil
	}
	c, err := k.parseAccess(token, now)
	if err != nil {
		return nil, err
	}
	s.verifiedMu.Lock()
	if len(s.verified) >= maxVerified {
		clear(s.verified) // crude, bounded, and cheap to refill
	}
	s.verified[token] = c
	s.verifiedMu.Unlock()
	return c, nil
}

const maxVerified = 1 << 16

// RevokeSession ends one of the actor's sessions. Errors: not_found.
func (s *Service) RevokeSession(ctx context.Context, w cmdlog.Write, actor, sessionID string) (Session, cmdlog.Result, error) {
	// Sessions are only made by this log, so one this node does not know
	// of, for this user, is not theirs: answer without a write.
	if ss, ok := s.state.session(sessionID); !ok || ss.UserID != actor {
		if _, replay := s.machine.Outcome(w.ID); !replay {
			return Session{}, cmdlog.Result{}, apperr.New(apperr.NotFound, "no such session")
		}
	}
	res, err := s.sub.Submit(ctx, w, kindRevokeSession, actor, revokeSession{SessionID: sessionID})
	if err != nil {
		return Session{}, res, err
	}
	var ss Session
	err = json.Unmarshal(res.Value, &ss)
	return ss, res, err
}

// ProfileUpdate is the input of UpdateProfile; nil fields stay as they are.
type ProfileUpdate struct {
	Name   *string `json:"name,omitempty"`
	Status *string `json:"status_message,omitempty"`
}

// UpdateProfile changes the actor's name or status message.
// Errors: invalid_field.
func (s *Service) UpdateProfile(ctx context.Context, w cmdlog.Write, actor string, in ProfileUpdate) (User, cmdlog.Result, error) {
	var c updateProfile
	if in.Name == nil && in.Status == nil {
		return User{}, cmdlog.Result{}, apperr.Field("name", "nothing to update: give name or status_message")
	}
	if in.Name != nil {
		n, aerr := cleanText("name", *in.Name, 64, false)
		if aerr != nil {
			return User{}, cmdlog.Result{}, aerr
		}
		c.Name = &n
	}
	if in.Status != nil {
		st, aerr := cleanText("status_message", *in.Status, 140, true)
		if aerr != nil {
			return User{}, cmdlog.Result{}, aerr
		}
		c.Status = &st
	}
	res, err := s.sub.Submit(ctx, w, kindUpdateProfile, actor, c)
	if err != nil {
		return User{}, res, err
	}
	var u User
	err = json.Unmarshal(res.Value, &u)
	return u, res, err
}

// Lookup finds a user by exact phone or email; exactly one must be given.
// Each user may look up a few a minute, so the directory cannot be
// enumerated. Errors: invalid_field, user_not_found, rate_limited.
func (s *Service) Lookup(actor, phone, email string) (User, error) {
	if ok, wait := s.lookups.Allow(actor); !ok {
		return User{}, rateLimited(wait, "too many lookups")
	}
	var key string
	switch {
	case phone != "" && email == "":
		p, ok := NormalizePhone(phone)
		if !ok {
			return User{}, apperr.Field("phone", "phone must be in international form")
		}
		key = loginKey("phone", p)
	case email != "" && phone == "":
		e, ok := NormalizeEmail(email)
		if !ok {
			return User{}, apperr.Field("email", "email is not a valid address")
		}
		key = loginKey("email", e)
	default:
		return User{}, apperr.Field("phone", "give exactly one of phone or email")
	}
	u, _, ok := s.state.userByLogin(key)
	if !ok {
		return User{}, apperr.New(apperr.UserNotFound, "no user with this %s", map[bool]string{true: "phone", false: "email"}[phone != ""])
	}
	return u, nil
}
