package drill

import (
	"context"
	"fmt"

	"superapp/client"
	"superapp/internal/miniapp"
)

// miniUser is a person's payments to mini-apps.
type miniUser struct {
	n   int
	ack map[string]*app // approved pay request id → its mini-app
	try map[string]*app // every pay request id (derived from its key) sent
}

// miniappOp is a mini-app asking its user to pay 1,000 won, and the user
// approving in superapp; the mini-app's backend then receives the
// approval's webhook. Without a live login to a mini-app, the person
// logs in first. The request and the approval are two actors' writes (the
// mini-app's backend, then the person), each measured on its own.
func (u *user) miniappOp() *op {
	a := u.oidc.current()
	if a == nil || a.token == "" || u.oidc.login != nil {
		return u.loginOp()
	}
	u.mini.n++
	a.n++
	key := fmt.Sprintf("u%d-pay-request%d", u.idx, u.mini.n)
	// The pay request's id is derived from the mini-app's key: known
	// before it is answered, so one never acknowledged is checked too.
	prid := miniapp.RequestID(a.creds.ClientID, key)
	u.mu.Lock()
	u.mini.try[prid] = a
	u.mu.Unlock()
	approve := &op{feature: "miniapp", write: true, run: func(ctx context.Context) error {
		r, err := u.c.ApprovePayRequest(ctx, prid)
		if client.Code(err) == "conflict" {
			// Approved by an earlier attempt whose answer was lost?
			r, err = u.oidc.appc.AppPayRequest(ctx, a.creds, prid)
			if err == nil && r.Status != "approved" {
				return wrong("pay request %s is %s", prid, r.Status)
			}
		}
		if err != nil {
			return err
		}
		u.mu.Lock()
		u.mini.ack[prid] = a
		u.mu.Unlock()
		return nil
	}}
	return &op{feature: "miniapp", write: true, then: approve, run: func(ctx context.Context) error {
		u.oidc.appc.UseTokens(client.Tokens{AccessToken: a.token})
		r, err := u.oidc.appc.CreatePayRequest(ctx, client.PayRequestInput{ID: key, Amount: miniAmount, Description: "Drill order " + key})
		if err != nil {
			if refused(err) {
				a.token = "" // expired or revoked: log in again
			}
			return err
		}
		if r.PayRequestID != prid {
			return wrong("pay request %s has id %s, want %s", key, r.PayRequestID, prid)
		}
		return nil
	}}
}

// miniAmount is what each mini-app pay request asks, in won.
const miniAmount = 1_000
