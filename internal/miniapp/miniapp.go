// Package miniapp is the mini-app platform beyond login: pay requests a
// mini-app sends its users (approved in superapp, paid through the ledger),
// notifications into the user's conversation with the mini-app's official
// account, and signed webhooks to the mini-app's backend with a delivery
// log. Its state is derived only from the MINIAPP stream: every pay-request
// decision, every webhook delivery and each attempt's outcome is a command,
// so a DC that burns takes no pending delivery with it, and a lease in the
// log lets exactly one live node attempt a delivery at a time. The state
// lives in the node's state store (keys.go); only the pending deliveries
// are also held in memory.
//
// It must never move money without an id derived from the pay request (so
// a retry anywhere moves it once), never let one mini-app or user see
// another's requests, never hold in memory what grows with the stream's
// history, and never import net/http or the NATS client (the webhook
// sender is an adapter, see webhookhttp).
package miniapp

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"
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

// Command kinds in the MINIAPP stream.
const (
	kindCreate   = "payreq.create"
	kindApprove  = "payreq.approve"
	kindDecline  = "payreq.decline"
	kindResolve  = "payreq.resolve"
	kindRevoked  = "grant.revoked"
	kindChecked  = "revocations.checked"
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

// checkedCmd records that every OAuth revocation before UpTo (in the
// order OAuth numbers them) was announced or needed no announcement: a
// worker starting later begins there, not at the first revocation ever.
type checkedCmd struct {
	UpTo int `json:"up_to"`
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
