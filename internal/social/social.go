// Package social keeps who knows whom: friend requests, friendships and
// blocks. Its state is derived only from the SOCIAL stream. Other features
// ask it whether a block stands between two users before they let one
// reach the other.
//
// Its read model lives in the node's state store (keys.go), nothing of it
// in memory.
//
// It must never let a blocked user reach the user who blocked them, never
// keep in memory what grows with its users, and never import net/http or
// the NATS client.
package social

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
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

// side is the index, in a relation's pairs of fields, of what from does
// to to: 0 when from is the pair's first id, 1 when it is the second.
func side(from, to string) int {
	if from < to {
		return 0
	}
	return 1
}

// relation is everything between two users, as the store keeps it.
type relation struct {
	Friends *time.Time `json:"f,omitempty"`
	// Req[side(from, to)] is when from asked to to be friends.
	Req [2]*time.Time `json:"r"`
	// Block[side(blocker, blocked)] is when blocker blocked blocked.
	Block [2]*time.Time `json:"b"`
}

func (r relation) empty() bool {
	return r.Friends == nil && r.Req == [2]*time.Time{} && r.Block == [2]*time.Time{}
}

// State is the social read model, kept in the store (see keys.go); queries
// read what is committed. It keeps nothing in memory and is safe for
// concurrent use.
type State struct {
	space *store.Space
}

// NewState returns the state kept in space (the SOCIAL stream's).
func NewState(space *store.Space) *State {
	return &State{space: space}
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

// change is one command's edit of a relation: the record and the
// per-user index keys that mirror it, written together.
type change struct {
	tx  *store.Tx
	p   pair
	rel relation
}

func (c *change) befriend(at time.Time) {
	c.rel.Friends = &at
	c.tx.SetJSON(edgeKey(friendPrefix, c.p.a, c.p.b), at)
	c.tx.SetJSON(edgeKey(friendPrefix, c.p.b, c.p.a), at)
}

func (c *change) unfriend() {
	if c.rel.Friends != nil {
		c.rel.Friends = nil
		c.tx.Delete(edgeKey(friendPrefix, c.p.a, c.p.b))
		c.tx.Delete(edgeKey(friendPrefix, c.p.b, c.p.a))
	}
}

func (c *change) request(from, to string, at time.Time) {
	c.rel.Req[side(from, to)] = &at
	c.tx.SetJSON(edgeKey(outPrefix, from, to), at)
	c.tx.SetJSON(edgeKey(inPrefix, to, from), at)
}

func (c *change) unrequest(from, to string) {
	if c.rel.Req[side(from, to)] != nil {
		c.rel.Req[side(from, to)] = nil
		c.tx.Delete(edgeKey(outPrefix, from, to))
		c.tx.Delete(edgeKey(inPrefix, to, from))
	}
}

func (c *change) block(blocker, blocked string, at time.Time) {
	c.rel.Block[side(blocker, blocked)] = &at
	c.tx.SetJSON(edgeKey(blockPrefix, blocker, blocked), at)
}

func (c *change) unblock(blocker, blocked string) {
	c.rel.Block[side(blocker, blocked)] = nil
	c.tx.Delete(edgeKey(blockPrefix, blocker, blocked))
}

// save writes the relation, or drops it when nothing is left of it.
func (c *change) save() {
	if c.rel.empty() {
		c.tx.Delete(relKey(c.p))
		return
	}
	c.tx.SetJSON(relKey(c.p), c.rel)
}

// Apply applies one SOCIAL command, writing to the entry's batch. It is
// deterministic.
func (s *State) Apply(_ uint64, e *cmdlog.Envelope) (any, *apperr.Error) {
	var t target
	if err := json.Unmarshal(e.Data, &t); err != nil || t.UserID == "" || e.Actor == "" {
		return nil, apperr.New(apperr.Malformed, "bad command")
	}
	me, other := e.Actor, t.UserID
	if me == other {
		return nil, apperr.Field("user_id", "that is you")
	}
	tx := s.space.Tx()
	c := &change{tx: tx, p: key(me, other)}
	tx.GetJSON(relKey(c.p), &c.rel)
	mine, theirs := side(me, other), side(other, me)
	out := Change{UserID: other, At: e.At}
	switch e.Kind {
	case kindRequest:
		if c.rel.Block[theirs] != nil {
			return nil, apperr.New(apperr.Blocked, "this user does not accept requests from you")
		}
		if c.rel.Block[mine] != nil {
			return nil, apperr.New(apperr.Blocked, "you blocked this user; unblock them first")
		}
		if c.rel.Friends != nil {
			return nil, apperr.New(apperr.AlreadyFriends, "you are friends already")
		}
		if c.rel.Req[theirs] != nil {
			// Both asked: that is a friendship.
			c.unrequest(other, me)
			c.befriend(e.At)
			out.Status = "friends"
			break
		}
		if c.rel.Req[mine] == nil {
			c.request(me, other, e.At)
		}
		out.Status = "requested"
	case kindAccept:
		if c.rel.Req[theirs] == nil {
			return nil, apperr.New(apperr.NotFound, "no friend request from this user")
		}
		c.unrequest(other, me)
		c.befriend(e.At)
		out.Status = "friends"
	case kindDecline:
		if c.rel.Req[theirs] == nil {
			return nil, apperr.New(apperr.NotFound, "no friend request from this user")
		}
		c.unrequest(other, me)
		out.Status = "declined"
	case kindCancel:
		if c.rel.Req[mine] == nil {
			return nil, apperr.New(apperr.NotFound, "no friend request to this user")
		}
		c.unrequest(me, other)
		out.Status = "cancelled"
	case kindRemove:
		if c.rel.Friends == nil {
			return nil, apperr.New(apperr.NotFound, "not your friend")
		}
		c.unfriend()
		out.Status = "removed"
	case kindBlock:
		if c.rel.Block[mine] == nil {
			c.block(me, other, e.At)
		}
		c.unfriend()
		c.unrequest(me, other)
		c.unrequest(other, me)
		out.Status = "blocked"
	case kindUnblock:
		if c.rel.Block[mine] == nil {
			return nil, apperr.New(apperr.NotFound, "this user is not blocked")
		}
		c.unblock(me, other)
		out.Status = "unblocked"
	default:
		return nil, apperr.New(apperr.Invalid, "unknown command %q", e.Kind)
	}
	c.save()
	return out, nil
}

// relation reads what is committed between a and b.
func (s *State) relation(a, b string) relation {
	var r relation
	if a != b {
		s.space.GetJSON(relKey(key(a, b)), &r)
	}
	return r
}

// edges lists the other ends of a user's keys under prefix, with their
// times, in id order.
func (s *State) edges(prefix, user string) (others []string, times []time.Time) {
	from := userKeys(prefix, user)
	s.space.Scan(from, "", false, func(k string, v []byte) bool {
		var at time.Time
		if err := json.Unmarshal(v, &at); err != nil {
			panic(store.Failure{Err: fmt.Errorf("decode %s: %w", k, err)})
		}
		others = append(others, k[len(from):])
		times = append(times, at)
		return true
	})
	return others, times
}

// Friends lists a user's friends, oldest friendship first.
func (s *State) Friends(user string) []Friend {
	others, times := s.edges(friendPrefix, user)
	out := make([]Friend, len(others))
	for i := range others {
		out[i] = Friend{UserID: others[i], Since: times[i]}
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
	return s.relation(a, b).Friends != nil
}

// Requests lists a user's incoming and outgoing requests, oldest first.
func (s *State) Requests(user string) (incoming, outgoing []Request) {
	froms, times := s.edges(inPrefix, user)
	incoming = make([]Request, len(froms))
	for i := range froms {
		incoming[i] = Request{From: froms[i], To: user, CreatedAt: times[i]}
	}
	tos, times := s.edges(outPrefix, user)
	outgoing = make([]Request, len(tos))
	for i := range tos {
		outgoing[i] = Request{From: user, To: tos[i], CreatedAt: times[i]}
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
	others, times := s.edges(blockPrefix, user)
	out := make([]Block, len(others))
	for i := range others {
		out[i] = Block{UserID: others[i], Since: times[i]}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].UserID < out[j].UserID })
	return out
}

// Blocked reports whether either user blocked the other.
func (s *State) Blocked(a, b string) bool {
	r := s.relation(a, b)
	return r.Block[0] != nil || r.Block[1] != nil
}

// HasBlocked reports whether blocker blocked user.
func (s *State) HasBlocked(blocker, user string) bool {
	return s.relation(blocker, user).Block[side(blocker, user)] != nil
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
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	space := cfg.Store.Space(Stream)
	st := NewState(space)
	m := cmdlog.NewMachine(Stream, space, st.Apply, cfg.Logger)
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
