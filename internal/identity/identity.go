// Package identity keeps who is who: accounts, passwords, sessions
// (devices), profiles and the signing keys of access tokens. Its state is
// derived only from the IDENTITY stream, so every data center can log a user
// in, verify a token or refuse a revoked session on its own.
//
// Its read model lives in the node's state store (keys.go); in memory are
// only the token keys, two totals and a bounded cache of the users and
// sessions that requests read (cache.go).
//
// It must never store a password or refresh secret in clear, never issue a
// token for a session the log does not hold, never keep in memory what
// grows with its users or their logins, and never import net/http or the
// NATS client.
package identity

import (
	"encoding/json"
	"sync"
	"time"

	"superapp/internal/apperr"
	"superapp/internal/cmdlog"
	"superapp/internal/store"
)

// User is an account.
type User struct {
	ID        string    `json:"user_id"`
	Phone     string    `json:"phone,omitempty"`
	Email     string    `json:"email,omitempty"`
	Name      string    `json:"name"`
	Status    string    `json:"status_message"`
	CreatedAt time.Time `json:"created_at"`
}

// Session is one logged-in device.
type Session struct {
	ID          string     `json:"session_id"`
	UserID      string     `json:"user_id"`
	Device      string     `json:"device"`
	Address     string     `json:"address,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
	RefreshedAt time.Time  `json:"refreshed_at"`
	RevokedAt   *time.Time `json:"revoked_at,omitempty"`
	// Gen is the generation of the only refresh token that is valid now.
	Gen uint64 `json:"-"`
	// Pos is the IDENTITY sequence that created the session; tokens carry
	// it so a node that has not applied it yet waits instead of refusing.
	Pos uint64 `json:"-"`
}

// sealedKeys is the token key material, encrypted with the cluster secret.
type sealedKeys struct {
	Kid    string `json:"kid"`
	Sealed []byte `json:"sealed"`
}

// storedUser is a user as the store keeps it: with the password hash,
// which User never shows.
type storedUser struct {
	User
	PasswordHash string `json:"password_hash"`
}

// storedSession is a session as the store keeps it: with what Session
// does not show.
type storedSession struct {
	S   Session `json:"s"`
	Gen uint64  `json:"gen"`
	Pos uint64  `json:"pos"`
}

func (r storedSession) session() Session {
	ss := r.S
	ss.Gen, ss.Pos = r.Gen, r.Pos
	return ss
}

func storeSession(ss *Session) storedSession {
	return storedSession{S: *ss, Gen: ss.Gen, Pos: ss.Pos}
}

// counts are the totals Counts reports.
type counts struct {
	Users    int `json:"users"`
	Sessions int `json:"sessions"` // live ones
}

// State is the identity read model: users, logins and sessions live in the
// store (see keys.go); queries read what is committed. It is safe for
// concurrent use.
type State struct {
	space *store.Space

	// mu guards the in-memory part, all of it also in the store and loaded
	// by Load.
	mu sync.RWMutex
	// keys are the token key sets; first writer wins, so one (bounded by
	// design: a key set is added only by EnsureKeys, never per user).
	keys []sealedKeys
	// counts: two numbers.
	counts counts

	// users and sessions are what queries read recently, at most
	// cachedRecords of each (see readCache).
	users    *readCache[storedUser]
	sessions *readCache[Session]
}

// cachedRecords bounds each read cache: a few MiB of the users and
// sessions in use.
const cachedRecords = 1 << 14

// NewState returns the state kept in space (the IDENTITY stream's).
func NewState(space *store.Space) *State {
	return &State{space: space, users: newReadCache[storedUser](cachedRecords), sessions: newReadCache[Session](cachedRecords)}
}

// Load fills the in-memory part from the store; the machine's loader.
func (s *State) Load() {
	var names []string
	s.space.Scan(tokenKeysPrefix, "", false, func(k string, _ []byte) bool {
		names = append(names, k)
		return true
	})
	keys := make([]sealedKeys, len(names))
	for i, k := range names {
		s.space.GetJSON(k, &keys[i])
	}
	var c counts
	s.space.GetJSON(countsKey, &c)
	s.mu.Lock()
	s.keys, s.counts = keys, c
	s.mu.Unlock()
}

// Command kinds and payloads in the IDENTITY stream.
const (
	kindCreateAccount  = "account.create"
	kindUpdateProfile  = "profile.update"
	kindCreateSession  = "session.create"
	kindRefreshSession = "session.refresh"
	kindRevokeSession  = "session.revoke"
	kindAddKeys        = "keys.add"
)

type createAccount struct {
	UserID       string `json:"user_id"`
	Phone        string `json:"phone,omitempty"`
	Email        string `json:"email,omitempty"`
	Name         string `json:"name"`
	PasswordHash string `json:"password_hash"`
}

type updateProfile struct {
	Name   *string `json:"name,omitempty"`
	Status *string `json:"status_message,omitempty"`
}

type createSession struct {
	SessionID string `json:"session_id"`
	Device    string `json:"device"`
	Address   string `json:"address,omitempty"`
}

type refreshSession struct {
	SessionID string `json:"session_id"`
	Gen       uint64 `json:"gen"`
}

type revokeSession struct {
	SessionID string `json:"session_id"`
}

// sessionGrant is the outcome of creating or refreshing a session.
type sessionGrant struct {
	SessionID string `json:"session_id"`
	UserID    string `json:"user_id"`
	Gen       uint64 `json:"gen"`
	Pos       uint64 `json:"pos"`
}

func loginKey(kind, v string) string { return kind + ":" + v }

// Apply applies one IDENTITY command, writing to the entry's batch. It is
// deterministic.
func (s *State) Apply(seq uint64, e *cmdlog.Envelope) (any, *apperr.Error) {
	tx := s.space.Tx()
	switch e.Kind {
	case kindCreateAccount:
		var c createAccount
		if err := json.Unmarshal(e.Data, &c); err != nil {
			return nil, apperr.New(apperr.Malformed, "bad command")
		}
		for _, k := range accountLogins(c.Phone, c.Email) {
			if tx.Has(loginStoreKey(k)) {
				field := "email"
				if k == loginKey("phone", c.Phone) {
					field = "phone"
				}
				return nil, &apperr.Error{Code: apperr.LoginTaken, Field: field, Message: "an account with this " + field + " exists"}
			}
		}
		if tx.Has(userKey(c.UserID)) {
			return nil, apperr.New(apperr.Conflict, "user id in use")
		}
		u := storedUser{User: User{ID: c.UserID, Phone: c.Phone, Email: c.Email, Name: c.Name, CreatedAt: e.At}, PasswordHash: c.PasswordHash}
		s.setUser(tx, u)
		for _, k := range accountLogins(c.Phone, c.Email) {
			tx.Set(loginStoreKey(k), []byte(u.ID))
		}
		s.count(tx, 1, 0)
		return u.User, nil

	case kindUpdateProfile:
		var c updateProfile
		if err := json.Unmarshal(e.Data, &c); err != nil {
			return nil, apperr.New(apperr.Malformed, "bad command")
		}
		var u storedUser
		if !tx.GetJSON(userKey(e.Actor), &u) {
			return nil, apperr.New(apperr.UserNotFound, "no such user")
		}
		if c.Name != nil {
			u.Name = *c.Name
		}
		if c.Status != nil {
			u.Status = *c.Status
		}
		s.setUser(tx, u)
		return u.User, nil

	case kindCreateSession:
		var c createSession
		if err := json.Unmarshal(e.Data, &c); err != nil {
			return nil, apperr.New(apperr.Malformed, "bad command")
		}
		if !tx.Has(userKey(e.Actor)) {
			return nil, apperr.New(apperr.UserNotFound, "no such user")
		}
		if tx.Has(sessionKey(c.SessionID)) {
			return nil, apperr.New(apperr.Conflict, "session id in use")
		}
		ss := &Session{ID: c.SessionID, UserID: e.Actor, Device: c.Device, Address: c.Address, CreatedAt: e.At, RefreshedAt: e.At, Pos: seq}
		s.setSession(tx, ss)
		tx.Set(userSessionKey(ss.UserID, e.Cursor), []byte(ss.ID))
		s.count(tx, 0, 1)
		return sessionGrant{SessionID: ss.ID, UserID: ss.UserID, Gen: 0, Pos: seq}, nil

	case kindRefreshSession:
		var c refreshSession
		if err := json.Unmarshal(e.Data, &c); err != nil {
			return nil, apperr.New(apperr.Malformed, "bad command")
		}
		var rec storedSession
		if !tx.GetJSON(sessionKey(c.SessionID), &rec) {
			return nil, apperr.New(apperr.Unauthenticated, "unknown refresh token")
		}
		ss := rec.session()
		if ss.RevokedAt != nil {
			return nil, apperr.New(apperr.SessionRevoked, "the session was revoked")
		}
		// A client that lost the answer retries with the same idempotency
		// key and gets the original outcome before this runs; any other
		// use of an old generation is a copy of the token.
		switch {
		case c.Gen == ss.Gen:
			ss.Gen++
			ss.RefreshedAt = e.At
			s.setSession(tx, &ss)
		default:
			// An old refresh token came back: it was stolen or copied.
			// Revoke the whole session, as OAuth 2.0 security BCP advises.
			at := e.At
			ss.RevokedAt = &at
			s.setSession(tx, &ss)
			s.count(tx, 0, -1)
			return nil, apperr.New(apperr.SessionRevoked, "refresh token reused; the session is revoked")
		}
		return sessionGrant{SessionID: ss.ID, UserID: ss.UserID, Gen: ss.Gen, Pos: ss.Pos}, nil

	case kindRevokeSession:
		var c revokeSession
		if err := json.Unmarshal(e.Data, &c); err != nil {
			return nil, apperr.New(apperr.Malformed, "bad command")
		}
		var rec storedSession
		ok := tx.GetJSON(sessionKey(c.SessionID), &rec)
		ss := rec.session()
		if !ok || ss.UserID != e.Actor {
			return nil, apperr.New(apperr.NotFound, "no such session")
		}
		if ss.RevokedAt == nil {
			at := e.At
			ss.RevokedAt = &at
			s.setSession(tx, &ss)
			s.count(tx, 0, -1)
		}
		return ss, nil

	case kindAddKeys:
		var c sealedKeys
		if err := json.Unmarshal(e.Data, &c); err != nil {
			return nil, apperr.New(apperr.Malformed, "bad command")
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if len(s.keys) == 0 {
			// First writer wins; every node then uses the same keys.
			tx.SetJSON(tokenKeysKey(len(s.keys)), c)
			s.keys = append(s.keys, c)
		}
		return map[string]string{"kid": s.keys[len(s.keys)-1].Kid}, nil
	}
	return nil, apperr.New(apperr.Invalid, "unknown command %q", e.Kind)
}

func (s *State) setUser(tx *store.Tx, u storedUser) {
	tx.SetJSON(userKey(u.ID), u)
	s.users.written(tx, u.ID)
}

func (s *State) setSession(tx *store.Tx, ss *Session) {
	tx.SetJSON(sessionKey(ss.ID), storeSession(ss))
	s.sessions.written(tx, ss.ID)
}

// count adds to the totals, in memory and in the entry's batch.
func (s *State) count(tx *store.Tx, users, sessions int) {
	s.mu.Lock()
	s.counts.Users += users
	s.counts.Sessions += sessions
	c := s.counts
	s.mu.Unlock()
	tx.SetJSON(countsKey, c)
}

func accountLogins(phone, email string) []string {
	var ks []string
	if phone != "" {
		ks = append(ks, loginKey("phone", phone))
	}
	if email != "" {
		ks = append(ks, loginKey("email", email))
	}
	return ks
}

// User returns the user with id.
func (s *State) User(id string) (User, bool) {
	u, ok := s.user(id)
	return u.User, ok
}

func (s *State) user(id string) (storedUser, bool) {
	return s.users.get(id, func() (storedUser, bool) {
		var u storedUser
		ok := s.space.GetJSON(userKey(id), &u)
		return u, ok
	})
}

// userByLogin returns the user and password hash for a normalized login.
func (s *State) userByLogin(key string) (User, string, bool) {
	id, ok := s.space.Get(loginStoreKey(key))
	if !ok {
		return User{}, "", false
	}
	u, ok := s.user(string(id))
	if !ok {
		return User{}, "", false
	}
	return u.User, u.PasswordHash, true
}

// session returns the session with id.
func (s *State) session(id string) (Session, bool) {
	return s.sessions.get(id, func() (Session, bool) {
		var rec storedSession
		if !s.space.GetJSON(sessionKey(id), &rec) {
			return Session{}, false
		}
		return rec.session(), true
	})
}

// Sessions lists a user's sessions, newest first; revoked ones included
// when all is true.
func (s *State) Sessions(userID string, all bool) []Session {
	var ids []string
	s.space.Scan(userSessionsOf(userID), "", true, func(_ string, v []byte) bool {
		ids = append(ids, string(v))
		return true
	})
	var out []Session
	for _, id := range ids {
		if ss, ok := s.session(id); ok && (all || ss.RevokedAt == nil) {
			out = append(out, ss)
		}
	}
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

// Counts returns the number of users and of live sessions.
func (s *State) Counts() (users, sessions int) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.counts.Users, s.counts.Sessions
}

// SessionLive reports whether a user's session exists and is not revoked.
func (s *State) SessionLive(user, session string) bool {
	ss, ok := s.session(session)
	return ok && ss.UserID == user && ss.RevokedAt == nil
}
