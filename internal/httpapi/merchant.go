package httpapi

import (
	"net/http"

	"superapp/internal/apperr"
	"superapp/internal/ledger"
	"superapp/internal/pay"
)

func (s *Server) merchantRoutes() []route {
	p := s.cfg.Pay
	return []route{
		{method: "POST", pattern: "/v1/merchants", feature: "pay", auth: true, maxBody: smallBody, handle: func(c *call) error {
			var in struct {
				Name string `json:"name"`
			}
			if err := c.decode(&in); err != nil {
				return err
			}
			ctx, cancel := c.writeCtx()
			defer cancel()
			m, res, err := p.RegisterMerchant(ctx, c.user.UserID, in.Name)
			return s.paid(c, m, res, err, http.StatusCreated)
		}},
		{method: "GET", pattern: "/v1/merchants/me/qr", feature: "pay", auth: true, handle: func(c *call) error {
			qr, err := p.StaticQR(c.user.UserID)
			if err != nil {
				return err
			}
			return c.json(http.StatusOK, map[string]string{"qr": qr})
		}},
		{method: "POST", pattern: "/v1/merchants/qr", feature: "pay", auth: true, maxBody: smallBody, handle: func(c *call) error {
			var in struct {
				Amount   uint64 `json:"amount"`
				Currency string `json:"currency"`
			}
			if err := c.decode(&in); err != nil {
				return err
			}
			ctx, cancel := c.writeCtx()
			defer cancel()
			qr, res, err := p.DynamicQR(ctx, c.user.UserID, in.Amount, in.Currency)
			return s.paid(c, map[string]string{"qr": qr}, res, err, http.StatusCreated)
		}},
		{method: "POST", pattern: "/v1/pay/qr", feature: "pay", auth: true, maxBody: smallBody, handle: func(c *call) error {
			var in struct {
				ID       string `json:"id"`
				QR       string `json:"qr"`
				Amount   uint64 `json:"amount"`
				Currency string `json:"currency"`
			}
			if err := c.decode(&in); err != nil {
				return err
			}
			ctx, cancel := c.writeCtx()
			defer cancel()
			sale, res, err := p.PayQR(ctx, c.user.UserID, in.ID, in.QR, in.Amount, in.Currency)
			return s.paid(c, sale, res, err, http.StatusCreated)
		}},
		{method: "POST", pattern: "/v1/pay/codes", feature: "pay", auth: true, handle: func(c *call) error {
			ctx, cancel := c.writeCtx()
			defer cancel()
			code, exp, res, err := p.IssueCode(ctx, c.user.UserID, c.user.SessionID)
			return s.paid(c, map[string]any{"code": code, "expires_at": exp}, res, err, http.StatusCreated)
		}},
		{method: "POST", pattern: "/v1/merchants/charges", feature: "pay", auth: true, maxBody: smallBody, handle: func(c *call) error {
			var in struct {
				ID       string `json:"id"`
				Code     string `json:"code"`
				Amount   uint64 `json:"amount"`
				Currency string `json:"currency"`
			}
			if err := c.decode(&in); err != nil {
				return err
			}
			if in.Code == "" {
				return apperr.Field("code", "code is required")
			}
			ctx, cancel := c.writeCtx()
			defer cancel()
			sale, res, err := p.Charge(ctx, c.user.UserID, in.ID, in.Code, in.Amount, in.Currency, s.cfg.Identity.State().SessionLive)
			return s.paid(c, sale, res, err, http.StatusCreated)
		}},
		{method: "POST", pattern: "/v1/merchants/refunds", feature: "pay", auth: true, maxBody: smallBody, handle: func(c *call) error {
			var in struct {
				ID        string `json:"id"`
				PaymentID string `json:"payment_id"`
				Amount    uint64 `json:"amount"`
			}
			if err := c.decode(&in); err != nil {
				return err
			}
			var pid ledger.ID
			if err := pid.UnmarshalText([]byte(in.PaymentID)); err != nil {
				return apperr.Field("payment_id", "payment_id must be a payment's id")
			}
			ctx, cancel := c.writeCtx()
			defer cancel()
			sale, res, err := p.Refund(ctx, c.user.UserID, in.ID, pid, in.Amount)
			return s.paid(c, sale, res, err, http.StatusOK)
		}},
		{method: "GET", pattern: "/v1/merchants/statement", feature: "pay", auth: true, handle: func(c *call) error {
			if _, ok := p.State().MerchantOf(c.user.UserID); !ok {
				return apperr.New(pay.NotMerchant, "register as a merchant first")
			}
			limit, err := limitParam(c, defaultPage, maxPage)
			if err != nil {
				return err
			}
			return c.json(http.StatusOK, map[string]any{"entries": p.State().MerchantStatement(c.user.UserID, limit)})
		}},
	}
}
