// Package identity keeps who is who: accounts, passwords, sessions
// (devices), profiles and the signing keys of access tokens. Its state is
// derived only from the IDENTITY stream, so every data center can log a user
// in, verify a token or refuse a revoked session on its own.
//
// It must never store a password or refresh secret in clear, never issue a
// token for a session the log does not hold, and never import net/http or
// the NATS client.
package identity

import (
	"encoding/json"
	"sort"
	"sync"
	"time"

	"superapp/internal/apperr"
	"superapp/internal/cmdlog"
)

// User is an account.
type User struct {
	ID           string    `json:"user_id"`
	Phone        string    `json:"phone,omitempty"`
	Email        string    `json:"email,omitempty"`
	Name         string    `json:"name"`
	Status       string    `json:"status_message"`
	CreatedAt    time.Time `json:"created_at"`
	passwordHash string
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

// State is the identity read model. It is safe for concurrent use.
type State struct {
	mu       sync.RWMutex
	users    map[string]*User
	byLogin  map[string]string
	sessions map[string]*Session
	keys     []sealedKeys
}

// NewState returns an empty state.
func NewState() *State {
	return &State{users: map[string]*User{}, byLogin: map[string]string{}, sessions: map[string]*Session{}}
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

// Apply applies one IDENTITY command. It is deterministic.
func (s *State) Apply(seq uint64, e *cmdlog.Envelope) (any, *apperr.Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch e.Kind {
	case kindCreateAccount:
		var c createAccount
		if err := json.Unmarshal(e.Data, &c); err != nil {
			return nil, apperr.New(apperr.Malformed, "bad command")
		}
		for _, k := range accountLogins(c.Phone, c.Email) {
			if _, taken := s.byLogin[k]; taken {
				field := "email"
				if k == loginKey("phone", c.Phone) {
					field = "phone"
				}
				return nil, &apperr.Error{Code: apperr.LoginTaken, Field: field, Message: "an account with this " + field + " exists"}
			}
		}
		if _, dup := s.users[c.UserID]; dup {
			return nil, apperr.New(apperr.Conflict, "user id in use")
		}
		u := &User{ID: c.UserID, Phone: c.Phone, Email: c.Email, Name: c.Name, CreatedAt: e.At, passwordHash: c.PasswordHash}
		s.users[u.ID] = u
		for _, k := range accountLogins(c.Phone, c.Email) {
			s.byLogin[k] = u.ID
		}
		return *u, nil

	case kindUpdateProfile:
		var c updateProfile
		if err := json.Unmarshal(e.Data, &c); err != nil {
			return nil, apperr.New(apperr.Malformed, "bad command")
		}
		u, ok := s.users[e.Actor]
		if !ok {
			return nil, apperr.New(apperr.UserNotFound, "no such user")
		}
		if c.Name != nil {
			u.Name = *c.Name
		}
		if c.Status != nil {
			u.Status = *c.Status
		}
		return *u, nil

	case kindCreateSession:
		var c createSession
		if err := json.Unmarshal(e.Data, &c); err != nil {
			return nil, apperr.New(apperr.Malformed, "bad command")
		}
		if _, ok := s.users[e.Actor]; !ok {
			return nil, apperr.New(apperr.UserNotFound, "no such user")
		}
		if _, dup := s.sessions[c.SessionID]; dup {
			return nil, apperr.New(apperr.Conflict, "session id in use")
		}
		ss := &Session{ID: c.SessionID, UserID: e.Actor, Device: c.Device, Address: c.Address, CreatedAt: e.At, RefreshedAt: e.At, Pos: seq}
		s.sessions[ss.ID] = ss
		return sessionGrant{SessionID: ss.ID, UserID: ss.UserID, Gen: 0, Pos: seq}, nil

	case kindRefreshSession:
		var c refreshSession
		if err := json.Unmarshal(e.Data, &c); err != nil {
			return nil, apperr.New(apperr.Malformed, "bad command")
		}
		ss, ok := s.sessions[c.SessionID]
		if !ok {
			return nil, apperr.New(apperr.Unauthenticated, "unknown refresh token")
		}
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
		default:
			// An old refresh token came back: it was stolen or copied.
			// Revoke the whole session, as OAuth 2.0 security BCP advises.
			at := e.At
			ss.RevokedAt = &at
			return nil, apperr.New(apperr.SessionRevoked, "refresh token reused; the session is revoked")
		}
		return sessionGrant{SessionID: ss.ID, UserID: ss.UserID, Gen: ss.Gen, Pos: ss.Pos}, nil

	case kindRevokeSession:
		var c revokeSession
		if err := json.Unmarshal(e.Data, &c); err != nil {
			return nil, apperr.New(apperr.Malformed, "bad command")
		}
		ss, ok := s.sessions[c.SessionID]
		if !ok || ss.UserID != e.Actor {
			return nil, apperr.New(apperr.NotFound, "no such session")
		}
		if ss.RevokedAt == nil {
			at := e.At
			ss.RevokedAt = &at
		}
		return *ss, nil

	case kindAddKeys:
		var c sealedKeys
		if err := json.Unmarshal(e.Data, &c); err != nil {
			return nil, apperr.New(apperr.Malformed, "bad command")
		}
		if len(s.keys) == 0 {
			// First writer wins; every node then uses the same keys.
			s.keys = append(s.keys, c)
		}
		return map[string]string{"kid": s.keys[len(s.keys)-1].Kid}, nil
	}
	return nil, apperr.New(apperr.Invalid, "unknown command %q", e.Kind)
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

// User returns a copy of the user with id.
func (s *State) User(id string) (User, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	u, ok := s.users[id]
	if !ok {
		return User{}, false
	}
	return *u, true
}

// userByLogin returns the user and password hash for a normalized login.
func (s *State) userByLogin(key string) (User, string, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	id, ok := s.byLogin[key]
	if !ok {
		return User{}, "", false
	}
	u := s.users[id]
	return *u, u.passwordHash, true
}

// session returns a copy of the session with id.
func (s *State) session(id string) (Session, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ss, ok := s.sessions[id]
	if !ok {
		return Session{}, false
	}
	return *ss, true
}

// Sessions lists a user's sessions, newest first; revoked ones included
// when all is true.
func (s *State) Sessions(userID string, all bool) []Session {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []Session
	for _, ss := range s.sessions {
		if ss.UserID == userID && (all || ss.RevokedAt == nil) {
			out = append(out, *ss)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Pos > out[j].Pos })
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
	for _, ss := range s.sessions {
		if ss.RevokedAt == nil {
			sessions++
		}
	}
	return len(s.users), sessions
}

// SessionLive reports whether a user's session exists and is not revoked.
func (s *State) SessionLive(user, session string) bool {
	ss, ok := s.session(session)
	return ok && ss.UserID == user && ss.RevokedAt == nil
}
