// Package social keeps who knows whom: friend requests, friendships and
// blocks. Its state is derived only from the SOCIAL stream. Other features
// ask it whether a block stands between two users before they let one
// reach the other.
//
// It must never let a blocked user reach the user who blocked them, and
// never import net/http or the NATS client.
package social

import (
	"context"
	"encoding/json"
	"log/slog"
	"sort"
	"sync"
	"time"

	"superapp/internal/apperr"
	"superapp/internal/cmdlog"
	"superapp/internal/store"
)

// Stream is the name of the social stream.
const Stream = "SOCIAL"

// Request is a pending friend request.
type Request struct {
	From      string    `json:"from"`
	To        string    `json:"to"`
	CreatedAt time.Time `json:"created_at"`
}

// Friend is one side of a friendship.
type Friend struct {
	UserID string    `json:"user_id"`
	Since  time.Time `json:"since"`
}

// Block is one user blocking another.
type Block struct {
	UserID string    `json:"user_id"`
	Since  time.Time `json:"since"`
}

// Change is the outcome of a social command.
type Change struct {
	// Status is the relationship afterwards: "requested", "friends",
	// "declined", "cancelled", "removed", "blocked", "unblocked".
	Status string    `json:"status"`
	UserID string    `json:"user_id"`
	At     time.Time `json:"at"`
}

type pair struct{ a, b string }

func key(a, b string) pair {
	if a > b {
		a, b = b, a
	}
	return pair{a, b}
}

// State is the social read model. It is safe for concurrent use.
type State struct {
	mu       sync.RWMutex
	friends  map[pair]time.Time
	requests map[[2]string]time.Time // [from, to]
	blocks   map[[2]string]time.Time // [blocker, blocked]
}

// NewState returns an empty state.
func NewState() *State {
	return &State{friends: map[pair]time.Time{}, requests: map[[2]string]time.Time{}, blocks: map[[2]string]time.Time{}}
}

const (
	kindRequest = "request.send"
	kindAccept  = "request.accept"
	kindDecline = "request.decline"
	kindCancel  = "request.cancel"
	kindRemove  = "friend.remove"
	kindBlock   = "block.add"
	kindUnblock = "block.remove"
)

type target struct {
	UserID string `json:"user_id"`
}

// Apply applies one SOCIAL command. It is deterministic.
func (s *State) Apply(_ uint64, e *cmdlog.Envelope) (any, *apperr.Error) {
	var t target
	if err := json.Unmarshal(e.Data, &t); err != nil || t.UserID == "" || e.Actor == "" {
		return nil, apperr.New(apperr.Malformed, "bad command")
	}
	me, other := e.Actor, t.UserID
	if me == other {
		return nil, apperr.Field("user_id", "that is you")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := Change{UserID: other, At: e.At}
	switch e.Kind {
	case kindRequest:
		if _, ok := s.blocks[[2]string{other, me}]; ok {
			return nil, apperr.New(apperr.Blocked, "this user does not accept requests from you")
		}
		if _, ok := s.blocks[[2]string{me, other}]; ok {
			return nil, apperr.New(apperr.Blocked, "you blocked this user; unblock them first")
		}
		if _, ok := s.friends[key(me, other)]; ok {
			return nil, apperr.New(apperr.AlreadyFriends, "you are friends already")
		}
		if _, ok := s.requests[[2]string{other, me}]; ok {
			// Both asked: that is a friendship.
			delete(s.requests, [2]string{other, me})
			s.friends[key(me, other)] = e.At
			out.Status = "friends"
			return out, nil
		}
		if _, ok := s.requests[[2]string{me, other}]; !ok {
			s.requests[[2]string{me, other}] = e.At
		}
		out.Status = "requested"
	case kindAccept:
		if _, ok := s.requests[[2]string{other, me}]; !ok {
			return nil, apperr.New(apperr.NotFound, "no friend request from this user")
		}
		delete(s.requests, [2]string{other, me})
		s.friends[key(me, other)] = e.At
		out.Status = "friends"
	case kindDecline:
		if _, ok := s.requests[[2]string{other, me}]; !ok {
			return nil, apperr.New(apperr.NotFound, "no friend request from this user")
		}
		delete(s.requests, [2]string{other, me})
		out.Status = "declined"
	case kindCancel:
		if _, ok := s.requests[[2]string{me, other}]; !ok {
			return nil, apperr.New(apperr.NotFound, "no friend request to this user")
		}
		delete(s.requests, [2]string{me, other})
		out.Status = "cancelled"
	case kindRemove:
		if _, ok := s.friends[key(me, other)]; !ok {
			return nil, apperr.New(apperr.NotFound, "not your friend")
		}
		delete(s.friends, key(me, other))
		out.Status = "removed"
	case kindBlock:
		if _, ok := s.blocks[[2]string{me, other}]; !ok {
			s.blocks[[2]string{me, other}] = e.At
		}
		delete(s.friends, key(me, other))
		delete(s.requests, [2]string{me, other})
		delete(s.requests, [2]string{other, me})
		out.Status = "blocked"
	case kindUnblock:
		if _, ok := s.blocks[[2]string{me, other}]; !ok {
			return nil, apperr.New(apperr.NotFound, "this user is not blocked")
		}
		delete(s.blocks, [2]string{me, other})
		out.Status = "unblocked"
	default:
		return nil, apperr.New(apperr.Invalid, "unknown command %q", e.Kind)
	}
	return out, nil
}

// Friends lists a user's friends, oldest friendship first.
func (s *State) Friends(user string) []Friend {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := []Friend{}
	for p, since := range s.friends {
		switch user {
		case p.a:
			out = append(out, Friend{UserID: p.b, Since: since})
		case p.b:
			out = append(out, Friend{UserID: p.a, Since: since})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Since.Equal(out[j].Since) {
			return out[i].Since.Before(out[j].Since)
		}
		return out[i].UserID < out[j].UserID
	})
	return out
}

// AreFriends reports whether a and b are friends.
func (s *State) AreFriends(a, b string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := s.friends[key(a, b)]
	return ok
}

// Requests lists a user's incoming and outgoing requests, oldest first.
func (s *State) Requests(user string) (incoming, outgoing []Request) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	incoming, outgoing = []Request{}, []Request{}
	for r, at := range s.requests {
		switch user {
		case r[1]:
			incoming = append(incoming, Request{From: r[0], To: r[1], CreatedAt: at})
		case r[0]:
			outgoing = append(outgoing, Request{From: r[0], To: r[1], CreatedAt: at})
		}
	}
	byTime := func(rs []Request) {
		sort.Slice(rs, func(i, j int) bool {
			if !rs[i].CreatedAt.Equal(rs[j].CreatedAt) {
				return rs[i].CreatedAt.Before(rs[j].CreatedAt)
			}
			return rs[i].From+rs[i].To < rs[j].From+rs[j].To
		})
	}
	byTime(incoming)
	byTime(outgoing)
	return incoming, outgoing
}

// Blocks lists whom a user blocked.
func (s *State) Blocks(user string) []Block {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := []Block{}
	for b, at := range s.blocks {
		if b[0] == user {
			out = append(out, Block{UserID: b[1], Since: at})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].UserID < out[j].UserID })
	return out
}

// Blocked reports whether either user blocked the other.
func (s *State) Blocked(a, b string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ab := s.blocks[[2]string{a, b}]
	_, ba := s.blocks[[2]string{b, a}]
	return ab || ba
}

// HasBlocked reports whether blocker blocked user.
func (s *State) HasBlocked(blocker, user string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := s.blocks[[2]string{blocker, user}]
	return ok
}

// Service is social's use cases.
type Service struct {
	state   *State
	machine *cmdlog.Machine
	sub     *cmdlog.Submitter
	exists  func(userID string) bool
}

// Config configures a Service.
type Config struct {
	Log cmdlog.Appender
	// Store keeps the read model (the node's state store).
	Store *store.DB
	Now   func() time.Time
	// UserExists tells whether an account exists (from identity).
	UserExists func(userID string) bool
	Logger     *slog.Logger
}

// New returns a service; the node must feed Machine() the SOCIAL stream.
func New(cfg Config) *Service {
	st := NewState()
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	m := cmdlog.NewMachine(Stream, cfg.Store.Space(Stream), st.Apply, cfg.Logger)
	m.SetVolatile() // state still in memory: replayed from the first entry
	return &Service{
		state:   st,
		machine: m,
		sub:     &cmdlog.Submitter{Log: cfg.Log, Machine: m, Subject: "social", Now: cfg.Now},
		exists:  cfg.UserExists,
	}
}

// Close stops the service's writers; call it before the engine closes.
func (s *Service) Close() { s.sub.Close() }

// Machine is the state machine of the SOCIAL stream.
func (s *Service) Machine() *cmdlog.Machine { return s.machine }

// State is the social read model.
func (s *Service) State() *State { return s.state }

// Change commands: each returns the Change applied. Errors: invalid_field,
// user_not_found, blocked, already_friends, not_found.
func (s *Service) change(ctx context.Context, w cmdlog.Write, kind, actor, other string) (Change, cmdlog.Result, error) {
	if other == "" {
		return Change{}, cmdlog.Result{}, apperr.Field("user_id", "user_id is required")
	}
	if other == actor {
		return Change{}, cmdlog.Result{}, apperr.Field("user_id", "that is you")
	}
	if !s.exists(other) {
		return Change{}, cmdlog.Result{}, &apperr.Error{Code: apperr.UserNotFound, Field: "user_id", Message: "no such user"}
	}
	res, err := s.sub.Submit(ctx, w, kind, actor, target{UserID: other})
	if err != nil {
		return Change{}, res, err
	}
	var c Change
	err = json.Unmarshal(res.Value, &c)
	return c, res, err
}

// SendRequest asks other to be friends (or accepts their pending request).
func (s *Service) SendRequest(ctx context.Context, w cmdlog.Write, actor, other string) (Change, cmdlog.Result, error) {
	return s.change(ctx, w, kindRequest, actor, other)
}

// Accept accepts other's request.
func (s *Service) Accept(ctx context.Context, w cmdlog.Write, actor, other string) (Change, cmdlog.Result, error) {
	return s.change(ctx, w, kindAccept, actor, other)
}

// Decline declines other's request.
func (s *Service) Decline(ctx context.Context, w cmdlog.Write, actor, other string) (Change, cmdlog.Result, error) {
	return s.change(ctx, w, kindDecline, actor, other)
}

// Cancel withdraws the actor's request to other.
func (s *Service) Cancel(ctx context.Context, w cmdlog.Write, actor, other string) (Change, cmdlog.Result, error) {
	return s.change(ctx, w, kindCancel, actor, other)
}

// Remove ends a friendship.
func (s *Service) Remove(ctx context.Context, w cmdlog.Write, actor, other string) (Change, cmdlog.Result, error) {
	return s.change(ctx, w, kindRemove, actor, other)
}

// Block blocks other: it ends a friendship and pending requests both ways.
func (s *Service) Block(ctx context.Context, w cmdlog.Write, actor, other string) (Change, cmdlog.Result, error) {
	return s.change(ctx, w, kindBlock, actor, other)
}

// Unblock lifts a block.
func (s *Service) Unblock(ctx context.Context, w cmdlog.Write, actor, other string) (Change, cmdlog.Result, error) {
	return s.change(ctx, w, kindUnblock, actor, other)
}
