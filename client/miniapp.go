package client

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// PayRequestInput is a mini-app's request that its user pay it.
type PayRequestInput struct {
	ID          string `json:"id"` // the mini-app's idempotent key
	Amount      uint64 `json:"amount"`
	Currency    string `json:"currency,omitempty"`
	Description string `json:"description"`
	Capture     string `json:"capture,omitempty"` // immediate (default) or hold
}

// PayRequest is a mini-app's pay request as superapp keeps it.
type PayRequest struct {
	PayRequestID string `json:"pay_request_id"`
	ID           string `json:"id"`
	ClientID     string `json:"client_id"`
	UserID       string `json:"user_id"`
	Amount       uint64 `json:"amount"`
	Currency     string `json:"currency"`
	Status       string `json:"status"`
	PaymentID    string `json:"payment_id,omitempty"`
	HoldID       string `json:"hold_id,omitempty"`
}

// CreatePayRequest asks the user to pay the mini-app (the mini-app's
// backend's call, with the user's mini-app access token carrying the pay
// scope; see UseTokens). The same ID returns the same request on any DC.
func (c *Client) CreatePayRequest(ctx context.Context, in PayRequestInput) (PayRequest, error) {
	var r PayRequest
	err := c.Do(ctx, Request{Method: http.MethodPost, Path: "/v1/miniapp/pay-requests", IdempotencyKey: in.ID, Body: in}, &r)
	return r, err
}

// AppPayRequest reads one of the mini-app's pay requests with its client
// credentials (which, unlike an access token, do not expire).
func (c *Client) AppPayRequest(ctx context.Context, app App, payRequestID string) (PayRequest, error) {
	var r PayRequest
	err := c.Do(ctx, Request{Method: http.MethodGet, Path: "/v1/miniapp/pay-requests/" + url.PathEscape(payRequestID), NoAuth: true, Header: app.basic()}, &r)
	return r, err
}

// ApprovePayRequest pays a mini-app's request (the user's call). The money
// moves under an id derived from the request: retried on any DC, it pays
// once; a retry after the approval was applied is a conflict (see the
// request's status).
func (c *Client) ApprovePayRequest(ctx context.Context, payRequestID string) (PayRequest, error) {
	var r PayRequest
	err := c.Do(ctx, Request{Method: http.MethodPost, Path: "/v1/pay-requests/" + url.PathEscape(payRequestID) + "/approve",
		IdempotencyKey: "approve-" + payRequestID}, &r)
	return r, err
}

// Delivery is one webhook event for a mini-app and how its delivery went.
type Delivery struct {
	DeliveryID string          `json:"delivery_id"`
	ClientID   string          `json:"client_id"`
	Event      string          `json:"event"`
	Data       json.RawMessage `json:"data"`
	CreatedAt  time.Time       `json:"created_at"`
	Status     string          `json:"status"` // pending, delivered, failed
	LeasedBy   string          `json:"leased_by,omitempty"`
}

// Deliveries lists a mini-app's latest webhook deliveries, newest first
// (its owner's call).
func (c *Client) Deliveries(ctx context.Context, clientID string) ([]Delivery, error) {
	var out struct {
		Deliveries []Delivery `json:"deliveries"`
	}
	err := c.Do(ctx, Request{Method: http.MethodGet, Path: "/v1/apps/" + url.PathEscape(clientID) + "/deliveries"}, &out)
	return out.Deliveries, err
}

// WebhookSecret returns the secret a mini-app's webhooks are signed with
// (its owner's call).
func (c *Client) WebhookSecret(ctx context.Context, clientID string) (string, error) {
	var out struct {
		Secret string `json:"webhook_secret"`
	}
	err := c.Do(ctx, Request{Method: http.MethodGet, Path: "/v1/apps/" + url.PathEscape(clientID) + "/webhook-secret"}, &out)
	return out.Secret, err
}

// Webhook request headers.
const (
	HeaderDeliveryID = "Superapp-Delivery-Id" // the same on every retry: dedupe on it
	HeaderEvent      = "Superapp-Event"
	HeaderTimestamp  = "Superapp-Timestamp" // unix seconds
	HeaderSignature  = "Superapp-Signature" // v1=<hex HMAC-SHA256 of "<timestamp>.<body>">
)

// VerifyWebhook reports whether a webhook's signature header is right for
// its timestamp header and body under secret, and the timestamp within
// tolerance of now (0: any age), so a captured webhook cannot be replayed
// later.
func VerifyWebhook(secret string, header http.Header, body []byte, now time.Time, tolerance time.Duration) bool {
	ts := header.Get(HeaderTimestamp)
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return false
	}
	if d := now.Sub(time.Unix(sec, 0)); tolerance > 0 && (d > tolerance || d < -tolerance) {
		return false
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts + "."))
	m.Write(body)
	want := "v1=" + hex.EncodeToString(m.Sum(nil))
	return hmac.Equal([]byte(header.Get(HeaderSignature)), []byte(want))
}
