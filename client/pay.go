package client

import (
	"context"
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
