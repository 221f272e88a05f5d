// Package miniapp is the mini-app platform beyond login: pay requests a
// mini-app sends its users (approved in superapp, paid through the ledger),
// notifications into the user's conversation with the mini-app's official
// account, and signed webhooks to the mini-app's backend with a delivery
// log. Its state is derived only from the MINIAPP stream: every pay-request
// decision, every webhook delivery and each attempt's outcome is a command,
// so a DC that burns takes no pending delivery with it, and a lease in the
// log lets exactly one live node attempt a delivery at a time.
//
// It must never move money without an id derived from the pay request (so
// a retry anywhere moves it once), never let one mini-app or user see
// another's requests, and never import net/http or the NATS client (the
// webhook sender is an adapter, see webhookhttp).
package miniapp

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"sort"
	"sync"
	"time"

	"superapp/internal/apperr"
	"superapp/internal/cmdlog"
)

// Stream is the name of the mini-app stream.
const Stream = "MINIAPP"

// Pay request statuses.
const (
	StatusPending  = "pending"
	StatusApproved = "approved" // paid (capture immediate) or held (capture hold)
	StatusDeclined = "declined"
	StatusExpired  = "expired"
	StatusCaptured = "captured"
	StatusReleased = "released"
)

// Capture modes of a pay request.
const (
	CaptureImmediate = "immediate"
	CaptureHold      = "hold"
)

// Webhook event types.
const (
	EventPayApproved  = "pay_request.approved"
	EventPayDeclined  = "pay_request.declined"
	EventPayCaptured  = "pay_request.captured"
	EventPayReleased  = "pay_request.released"
	EventGrantRevoked = "grant.revoked"
)

// Delivery statuses.
const (
	DeliveryPending   = "pending"
	DeliveryDelivered = "delivered"
	DeliveryFailed    = "failed" // gave up after the last retry
)

// PayRequest is a mini-app's request that a user pay it.
type PayRequest struct {
	ID          string     `json:"pay_request_id"`
	ClientKey   string     `json:"id"` // the mini-app's idempotent id
	ClientID    string     `json:"client_id"`
	UserID      string     `json:"user_id"`
	Amount      uint64     `json:"amount"`
	Currency    string     `json:"currency"`
	Description string     `json:"description"`
	Capture     string     `json:"capture"`
	Status      string     `json:"status"`
	CreatedAt   time.Time  `json:"created_at"`
	ExpiresAt   time.Time  `json:"expires_at"`
	DecidedAt   *time.Time `json:"decided_at,omitempty"`
	PaymentID   string     `json:"payment_id,omitempty"`
	HoldID      string     `json:"hold_id,omitempty"`
	Captured    uint64     `json:"captured,omitempty"`
}

// StatusAt is the request's status at now: a pending request past its
// expiry is expired.
func (p PayRequest) StatusAt(now time.Time) string {
	if p.Status == StatusPending && !now.Before(p.ExpiresAt) {
		return StatusExpired
	}
	return p.Status
}

// Attempt is one try to deliver a webhook.
type Attempt struct {
	At         time.Time `json:"at"`
	DC         string    `json:"dc"`
	StatusCode int       `json:"status_code,omitempty"`
	Error      string    `json:"error,omitempty"`
	DurationMS int64     `json:"duration_ms"`
}

// Delivery is one webhook event for one mini-app, and its attempts.
type Delivery struct {
	ID            string          `json:"delivery_id"`
	ClientID      string          `json:"client_id"`
	Event         string          `json:"event"`
	Data          json.RawMessage `json:"data"`
	CreatedAt     time.Time       `json:"created_at"`
	Status        string          `json:"status"`
	Attempts      []Attempt       `json:"attempts"`
	NextAttemptAt *time.Time      `json:"next_attempt_at,omitempty"`
	// LeasedBy is the DC attempting it now, until LeaseUntil.
	LeasedBy   string     `json:"leased_by,omitempty"`
	LeaseUntil *time.Time `json:"lease_until,omitempty"`
	leaseOwner string
}

// Body is what the mini-app's backend receives: the same bytes on every
// attempt.
func (d *Delivery) Body() []byte {
	b, _ := json.Marshal(struct {
		ID        string          `json:"id"`
		Type      string          `json:"type"`
		CreatedAt time.Time       `json:"created_at"`
		Data      json.RawMessage `json:"data"`
	}{d.ID, d.Event, d.CreatedAt, d.Data})
	return b
}

// State is the mini-app read model. It is safe for concurrent use.
type State struct {
	mu         sync.RWMutex
	requests   map[string]*PayRequest
	byUser     map[string][]string
	deliveries map[string]*Delivery
	byClient   map[string][]string // delivery ids, oldest first
	pending    map[string]struct{} // deliveries not yet delivered or failed
	secretVer  map[string]uint64   // webhook secret version per client (1 if absent)
	revoked    map[string]bool     // grants whose revocation was announced
}

// NewState returns an empty state.
func NewState() *State {
	return &State{requests: map[string]*PayRequest{}, byUser: map[string][]string{}, deliveries: map[string]*Delivery{},
		byClient: map[string][]string{}, pending: map[string]struct{}{}, secretVer: map[string]uint64{}, revoked: map[string]bool{}}
}

// Command kinds in the MINIAPP stream.
const (
	kindCreate   = "payreq.create"
	kindApprove  = "payreq.approve"
	kindDecline  = "payreq.decline"
	kindResolve  = "payreq.resolve"
	kindRevoked  = "grant.revoked"
	kindLease    = "delivery.lease"
	kindAttempt  = "delivery.attempt"
	kindRotate   = "secret.rotate"
	maxAttempts  = 64 // a bound on the log kept per delivery
	maxListShown = 100
)

type createCmd struct {
	Request PayRequest `json:"request"`
	Webhook bool       `json:"webhook"`
}

type decideCmd struct {
	ID        string `json:"pay_request_id"`
	PaymentID string `json:"payment_id,omitempty"`
	HoldID    string `json:"hold_id,omitempty"`
	Captured  uint64 `json:"captured,omitempty"`
	Status    string `json:"status,omitempty"` // resolve: captured or released
	Webhook   bool   `json:"webhook"`
}

type revokedCmd struct {
	GrantID  string `json:"grant_id"`
	ClientID string `json:"client_id"`
	UserID   string `json:"user_id"`
	Reason   string `json:"reason"`
}

type leaseCmd struct {
	DeliveryID string    `json:"delivery_id"`
	Owner      string    `json:"owner"` // node instance
	DC         string    `json:"dc"`
	Until      time.Time `json:"until"`
}

type attemptCmd struct {
	DeliveryID string     `json:"delivery_id"`
	Owner      string     `json:"owner"`
	Attempt    Attempt    `json:"attempt"`
	Delivered  bool       `json:"delivered"`
	NextAt     *time.Time `json:"next_at,omitempty"` // nil: give up
}

type rotateCmd struct {
	ClientID string `json:"client_id"`
	Version  uint64 `json:"version"`
}

// RequestID is the id of a mini-app's pay request with its own id key:
// the same on every DC, so a retried create finds the first.
func RequestID(clientID, key string) string {
	h := sha256.Sum256([]byte(clientID + "\x00" + key))
	return "pr_" + hex.EncodeToString(h[:16])
}

// DeliveryID is the id of the webhook delivery of one event.
func DeliveryID(eventKey string) string {
	h := sha256.Sum256([]byte(eventKey))
	return "dlv_" + hex.EncodeToString(h[:16])
}

// Apply applies one MINIAPP command. It is deterministic: e.At is its only
// clock.
func (s *State) Apply(seq uint64, e *cmdlog.Envelope) (any, *apperr.Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	bad := apperr.New(apperr.Malformed, "bad command")
	switch e.Kind {
	case kindCreate:
		var c createCmd
		if json.Unmarshal(e.Data, &c) != nil || c.Request.ID == "" {
			return nil, bad
		}
		if old, ok := s.requests[c.Request.ID]; ok {
			return *old, nil
		}
		r := c.Request
		r.Status, r.CreatedAt = StatusPending, e.At
		if r.ExpiresAt.IsZero() {
			r.ExpiresAt = e.At.Add(DefaultRequestTTL)
		}
		s.requests[r.ID] = &r
		s.byUser[r.UserID] = append(s.byUser[r.UserID], r.ID)
		return r, nil

	case kindApprove, kindDecline, kindResolve:
		var c decideCmd
		if json.Unmarshal(e.Data, &c) != nil {
			return nil, bad
		}
		r, ok := s.requests[c.ID]
		if !ok {
			return nil, apperr.New(apperr.NotFound, "no such pay request")
		}
		event := ""
		switch e.Kind {
		case kindApprove, kindDecline:
			if r.UserID != e.Actor {
				return nil, apperr.New(apperr.NotFound, "no such pay request")
			}
			if r.Status != StatusPending {
				return nil, apperr.New(apperr.Conflict, "this pay request is %s already", r.Status)
			}
			// An approval's money moved before it was recorded: it is
			// recorded even when it arrives after the expiry.
			if e.Kind == kindDecline && !e.At.Before(r.ExpiresAt) {
				return nil, apperr.New(apperr.Conflict, "this pay request expired")
			}
			at := e.At
			r.DecidedAt = &at
			if e.Kind == kindApprove {
				r.Status, r.PaymentID, r.HoldID, event = StatusApproved, c.PaymentID, c.HoldID, EventPayApproved
			} else {
				r.Status, event = StatusDeclined, EventPayDeclined
			}
		case kindResolve:
			if r.ClientID != e.Actor {
				return nil, apperr.New(apperr.NotFound, "no such pay request")
			}
			if r.Capture != CaptureHold || r.Status != StatusApproved {
				return nil, apperr.New(apperr.Conflict, "only an approved hold can be captured or released; this request is %s", r.Status)
			}
			switch c.Status {
			case StatusCaptured:
				r.Status, r.Captured, event = StatusCaptured, c.Captured, EventPayCaptured
			case StatusReleased:
				r.Status, event = StatusReleased, EventPayReleased
			default:
				return nil, bad
			}
		}
		if c.Webhook {
			data, _ := json.Marshal(map[string]any{"pay_request": r})
			s.enqueue(e, r.ClientID, event, r.ID+"/"+event, data)
		}
		return *r, nil

	case kindRevoked:
		var c revokedCmd
		if json.Unmarshal(e.Data, &c) != nil || c.GrantID == "" {
			return nil, bad
		}
		if !s.revoked[c.GrantID] {
			s.revoked[c.GrantID] = true
			data, _ := json.Marshal(map[string]any{"grant_id": c.GrantID, "user_id": c.UserID, "reason": c.Reason})
			s.enqueue(e, c.ClientID, EventGrantRevoked, "grant/"+c.GrantID+"/revoked", data)
		}
		return map[string]string{"grant_id": c.GrantID}, nil

	case kindLease:
		var c leaseCmd
		if json.Unmarshal(e.Data, &c) != nil || c.Owner == "" {
			return nil, bad
		}
		d, ok := s.deliveries[c.DeliveryID]
		switch {
		case !ok:
			return nil, apperr.New(apperr.NotFound, "no such delivery")
		case d.Status != DeliveryPending:
			return nil, apperr.New(apperr.Conflict, "delivery is %s", d.Status)
		case d.LeaseUntil != nil && e.At.Before(*d.LeaseUntil) && d.leaseOwner != c.Owner:
			return nil, apperr.New(apperr.Conflict, "another node is delivering it")
		case d.NextAttemptAt != nil && e.At.Before(*d.NextAttemptAt):
			return nil, apperr.New(apperr.Conflict, "not due yet")
		}
		until := c.Until
		d.leaseOwner, d.LeasedBy, d.LeaseUntil = c.Owner, c.DC, &until
		return d.view(), nil

	case kindAttempt:
		var c attemptCmd
		if json.Unmarshal(e.Data, &c) != nil {
			return nil, bad
		}
		d, ok := s.deliveries[c.DeliveryID]
		if !ok {
			return nil, apperr.New(apperr.NotFound, "no such delivery")
		}
		if d.Status != DeliveryPending {
			// Delivered meanwhile by a node that took over: keep the
			// outcome, note the attempt.
			d.addAttempt(c.Attempt)
			return d.view(), nil
		}
		d.addAttempt(c.Attempt)
		if d.leaseOwner == c.Owner {
			d.leaseOwner, d.LeasedBy, d.LeaseUntil = "", "", nil
		}
		switch {
		case c.Delivered:
			d.Status, d.NextAttemptAt = DeliveryDelivered, nil
			delete(s.pending, d.ID)
		case c.NextAt == nil:
			d.Status, d.NextAttemptAt = DeliveryFailed, nil
			delete(s.pending, d.ID)
		default:
			next := *c.NextAt
			d.NextAttemptAt = &next
		}
		return d.view(), nil

	case kindRotate:
		var c rotateCmd
		if json.Unmarshal(e.Data, &c) != nil || c.ClientID == "" {
			return nil, bad
		}
		if c.Version != s.secretVersion(c.ClientID)+1 {
			return nil, apperr.New(apperr.Conflict, "the webhook secret was rotated meanwhile; retry")
		}
		s.secretVer[c.ClientID] = c.Version
		return map[string]uint64{"version": c.Version}, nil
	}
	return nil, apperr.New(apperr.Invalid, "unknown command %q", e.Kind)
}

func (d *Delivery) addAttempt(a Attempt) {
	d.Attempts = append(d.Attempts, a)
	if len(d.Attempts) > maxAttempts {
		d.Attempts = d.Attempts[len(d.Attempts)-maxAttempts:]
	}
}

// enqueue records a webhook delivery of an event, once per event key.
func (s *State) enqueue(e *cmdlog.Envelope, clientID, event, key string, data []byte) {
	id := DeliveryID(key)
	if _, ok := s.deliveries[id]; ok {
		return
	}
	at := e.At
	d := &Delivery{ID: id, ClientID: clientID, Event: event, Data: data, CreatedAt: e.At, Status: DeliveryPending, Attempts: []Attempt{}, NextAttemptAt: &at}
	s.deliveries[id] = d
	s.byClient[clientID] = append(s.byClient[clientID], id)
	s.pending[id] = struct{}{}
}

func (d *Delivery) view() Delivery {
	out := *d
	out.Attempts = slices.Clone(d.Attempts)
	return out
}

func (s *State) secretVersion(clientID string) uint64 {
	if v, ok := s.secretVer[clientID]; ok {
		return v
	}
	return 1
}

// SecretVersion is the current version of a mini-app's webhook secret.
func (s *State) SecretVersion(clientID string) uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.secretVersion(clientID)
}

// PayRequest returns a pay request by id.
func (s *State) PayRequest(id string) (PayRequest, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r, ok := s.requests[id]
	if !ok {
		return PayRequest{}, false
	}
	return *r, true
}

// PendingOf lists a user's pending pay requests at now, newest first.
func (s *State) PendingOf(user string, now time.Time) []PayRequest {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := []PayRequest{}
	ids := s.byUser[user]
	for i := len(ids) - 1; i >= 0 && len(out) < maxListShown; i-- {
		r := s.requests[ids[i]]
		if r.StatusAt(now) == StatusPending {
			out = append(out, *r)
		}
	}
	return out
}

// Delivery returns a delivery by id.
func (s *State) Delivery(id string) (Delivery, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	d, ok := s.deliveries[id]
	if !ok {
		return Delivery{}, false
	}
	return d.view(), true
}

// Deliveries lists a mini-app's latest deliveries, newest first.
func (s *State) Deliveries(clientID string, limit int) []Delivery {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ids := s.byClient[clientID]
	out := []Delivery{}
	for i := len(ids) - 1; i >= 0 && len(out) < limit; i-- {
		out = append(out, s.deliveries[ids[i]].view())
	}
	return out
}

// due lists the pending deliveries whose next attempt is due at now and
// that no live lease holds, oldest first.
func (s *State) due(now time.Time, limit int) []Delivery {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := []Delivery{}
	for id := range s.pending {
		d := s.deliveries[id]
		if d.NextAttemptAt != nil && now.Before(*d.NextAttemptAt) {
			continue
		}
		if d.LeaseUntil != nil && now.Before(*d.LeaseUntil) {
			continue
		}
		out = append(out, d.view())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	if len(out) > limit {
		out = out[:limit]
	}
	return out
}

// revokeAnnounced reports whether a grant's revocation was announced.
func (s *State) revokeAnnounced(grantID string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.revoked[grantID]
}
