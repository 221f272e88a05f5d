package httpapi

import (
	"context"
	"net/http"

	"superapp/internal/apperr"
	"superapp/internal/cmdlog"
	"superapp/internal/pay"
)

type moneyCall func(ctx context.Context, user string, in pay.MoneyInput) (pay.Payment, cmdlog.Result, error)

func (s *Server) payRoutes() []route {
	p := s.cfg.Pay
	return []route{
		{method: "GET", pattern: "/v1/wallet", feature: "pay", auth: true, handle: func(c *call) error {
			return c.json(http.StatusOK, map[string]any{"balances": p.State().Balances(c.user.UserID)})
		}},
		{method: "POST", pattern: "/v1/wallet/topups", feature: "pay", auth: true, maxBody: smallBody, handle: func(c *call) error {
			return s.money(c, p.TopUp, false)
		}},
		{method: "POST", pattern: "/v1/wallet/transfers", feature: "pay", auth: true, maxBody: smallBody, handle: func(c *call) error {
			return s.money(c, p.Transfer, true)
		}},
	}
}

// money runs a payment: 201 {"status":"ok",…} (200 when the id was paid
// before), or the ledger's refusal as {"status":<code>,"error":{…}}.
func (s *Server) money(c *call, fn moneyCall, transfer bool) error {
	var in pay.MoneyInput
	if err := c.decode(&in); err != nil {
		return err
	}
	if transfer && in.ToUser != "" {
		if _, ok := s.cfg.Identity.State().User(in.ToUser); !ok {
			return &apperr.Error{Code: apperr.UserNotFound, Field: "to_user", Message: "no such user"}
		}
		if s.cfg.Social.State().Blocked(c.user.UserID, in.ToUser) {
			return &apperr.Error{Code: apperr.Blocked, Field: "to_user", Message: "a block stands between you and this user"}
		}
	}
	ctx, cancel := c.writeCtx()
	defer cancel()
	pm, res, err := fn(ctx, c.user.UserID, in)
	if e := apperr.From(err); err != nil && pay.IsLedgerCode(e.Code) {
		return c.json(apperr.Status(e.Code), map[string]any{"status": e.Code,
			"error": errorDetail{Code: e.Code, Message: e.Message, Field: e.Field, RequestID: c.reqID}})
	}
	if err != nil {
		return err
	}
	status := http.StatusCreated
	if res.Replayed {
		status = http.StatusOK
	}
	return c.written(status, res, pm)
}
