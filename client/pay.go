package client

import (
	"context"
	"fmt"
	"net/http"
)

// Balance is one wallet balance, in minor units.
type Balance struct {
	Currency  string `json:"currency"`
	Available uint64 `json:"available"`
	Pending   uint64 `json:"pending"`
}

// Payment is the answer to a top-up or a transfer.
type Payment struct {
	Status     string `json:"status"`
	TransferID string `json:"transfer_id"`
	Amount     uint64 `json:"amount"`
	Currency   string `json:"currency"`
	To         string `json:"to_user,omitempty"`
}

// TopUp adds money to the user's wallet from their bank; id makes it
// idempotent.
func (c *Client) TopUp(ctx context.Context, id string, amount uint64, currency string) (Payment, error) {
	var p Payment
	err := c.Do(ctx, Request{Method: http.MethodPost, Path: "/v1/wallet/topups",
		Body: map[string]any{"id": id, "amount": amount, "currency": currency}}, &p)
	return p, err
}

// Pay sends money to another user; id makes it idempotent. A refusal
// (say, not enough money) is an *Error whose Code is the ledger's result.
func (c *Client) Pay(ctx context.Context, id, toUser string, amount uint64, currency string) (Payment, error) {
	var p Payment
	err := c.Do(ctx, Request{Method: http.MethodPost, Path: "/v1/wallet/transfers",
		Body: map[string]any{"id": id, "to_user": toUser, "amount": amount, "currency": currency}}, &p)
	return p, err
}

// Wallet returns the user's balances.
func (c *Client) Wallet(ctx context.Context) ([]Balance, error) {
	var out struct {
		Balances []Balance `json:"balances"`
	}
	err := c.Do(ctx, Request{Method: http.MethodGet, Path: "/v1/wallet"}, &out)
	return out.Balances, err
}

// Hold is money reserved from a payer for a payee.
type Hold struct {
	HoldID   string `json:"hold_id"`
	Payer    string `json:"payer"`
	Payee    string `json:"payee"`
	Amount   uint64 `json:"amount"`
	Currency string `json:"currency"`
	Status   string `json:"status"`
	Captured uint64 `json:"captured"`
}

// PlaceHold reserves amount from the user's wallet for payee.
func (c *Client) PlaceHold(ctx context.Context, id, payee string, amount uint64, currency string, expiresIn int) (Hold, error) {
	body := map[string]any{"id": id, "payee": payee, "amount": amount, "currency": currency}
	if expiresIn > 0 {
		body["expires_in"] = expiresIn
	}
	var h Hold
	err := c.Do(ctx, Request{Method: http.MethodPost, Path: "/v1/wallet/holds", Body: body}, &h)
	return h, err
}

// Capture takes a hold (the payee's call); amount 0 takes all of it.
func (c *Client) Capture(ctx context.Context, holdID string, amount uint64) (Hold, error) {
	var h Hold
	err := c.Do(ctx, Request{Method: http.MethodPost, Path: "/v1/wallet/holds/" + holdID + "/capture", Body: map[string]uint64{"amount": amount}}, &h)
	return h, err
}

// Release gives a hold back to its payer (the payee's call).
func (c *Client) Release(ctx context.Context, holdID string) (Hold, error) {
	var h Hold
	err := c.Do(ctx, Request{Method: http.MethodPost, Path: "/v1/wallet/holds/" + holdID + "/release"}, &h)
	return h, err
}

// Entry is a statement line.
type Entry struct {
	Kind         string `json:"kind"`
	Amount       uint64 `json:"amount"`
	Currency     string `json:"currency"`
	Counterparty string `json:"counterparty,omitempty"`
	ID           string `json:"id,omitempty"`
}

// Statement returns the user's statement, newest first, before a cursor
// (0: from the newest), and the cursor of the next page (0: none).
func (c *Client) Statement(ctx context.Context, before, limit int) ([]Entry, int, error) {
	var out struct {
		Entries []Entry `json:"entries"`
		Before  int     `json:"before"`
	}
	err := c.Do(ctx, Request{Method: http.MethodGet, Path: fmt.Sprintf("/v1/wallet/statement?before=%d&limit=%d", before, limit)}, &out)
	return out.Entries, out.Before, err
}

// Envelope is a red envelope.
type Envelope struct {
	EnvelopeID string            `json:"envelope_id"`
	Sender     string            `json:"sender"`
	Amount     uint64            `json:"amount"`
	Shares     int               `json:"shares"`
	Split      string            `json:"split"`
	Remaining  uint64            `json:"remaining"`
	Claims     map[string]uint64 `json:"claims"`
	Status     string            `json:"status"`
}

// SendEnvelope puts amount in a red envelope for a group's first shares
// claimers, split "equal" or "random".
func (c *Client) SendEnvelope(ctx context.Context, convID, id string, amount uint64, shares int, split string) (Envelope, error) {
	var out struct {
		Envelope Envelope `json:"envelope"`
	}
	err := c.Do(ctx, Request{Method: http.MethodPost, Path: "/v1/conversations/" + convID + "/envelopes",
		Body: map[string]any{"id": id, "amount": amount, "shares": shares, "split": split}}, &out)
	return out.Envelope, err
}

// Claim takes the user's share of an envelope.
func (c *Client) Claim(ctx context.Context, envelopeID string) (Envelope, error) {
	var env Envelope
	err := c.Do(ctx, Request{Method: http.MethodPost, Path: "/v1/envelopes/" + envelopeID + "/claim"}, &env)
	return env, err
}

// Sale is a merchant's payment from a customer.
type Sale struct {
	PaymentID string `json:"payment_id"`
	Merchant  string `json:"merchant_id"`
	Customer  string `json:"customer"`
	Amount    uint64 `json:"amount"`
	Refunded  uint64 `json:"refunded"`
}

// RegisterMerchant makes the user a merchant.
func (c *Client) RegisterMerchant(ctx context.Context, name string) error {
	return c.Do(ctx, Request{Method: http.MethodPost, Path: "/v1/merchants", Body: map[string]string{"name": name}}, nil)
}

// MerchantQR returns the merchant's static QR, or a single-use one for an
// amount when amount > 0.
func (c *Client) MerchantQR(ctx context.Context, amount uint64) (string, error) {
	var out struct {
		QR string `json:"qr"`
	}
	var err error
	if amount == 0 {
		err = c.Do(ctx, Request{Method: http.MethodGet, Path: "/v1/merchants/me/qr"}, &out)
	} else {
		err = c.Do(ctx, Request{Method: http.MethodPost, Path: "/v1/merchants/qr", Body: map[string]any{"amount": amount}}, &out)
	}
	return out.QR, err
}

// PayQR pays a scanned merchant QR (amount only for a static QR).
func (c *Client) PayQR(ctx context.Context, id, qr string, amount uint64) (Sale, error) {
	var s Sale
	err := c.Do(ctx, Request{Method: http.MethodPost, Path: "/v1/pay/qr", Body: map[string]any{"id": id, "qr": qr, "amount": amount}}, &s)
	return s, err
}

// PaymentCode issues a one-time code for a merchant to scan.
func (c *Client) PaymentCode(ctx context.Context) (string, error) {
	var out struct {
		Code string `json:"code"`
	}
	err := c.Do(ctx, Request{Method: http.MethodPost, Path: "/v1/pay/codes"}, &out)
	return out.Code, err
}

// Charge charges a customer's payment code (the merchant's point of sale).
func (c *Client) Charge(ctx context.Context, id, code string, amount uint64) (Sale, error) {
	var s Sale
	err := c.Do(ctx, Request{Method: http.MethodPost, Path: "/v1/merchants/charges", Body: map[string]any{"id": id, "code": code, "amount": amount}}, &s)
	return s, err
}

// Refund refunds a sale, all of it (amount 0) or part.
func (c *Client) Refund(ctx context.Context, id, paymentID string, amount uint64) (Sale, error) {
	var s Sale
	err := c.Do(ctx, Request{Method: http.MethodPost, Path: "/v1/merchants/refunds", Body: map[string]any{"id": id, "payment_id": paymentID, "amount": amount}}, &s)
	return s, err
}
