package httpapi

import (
	"net/http"
	"strings"

	"superapp/internal/apperr"
	"superapp/internal/miniapp"
	"superapp/internal/oauth"
)

// miniappRoutes are the mini-app platform beyond login: pay requests (the
// mini-app asks, the user approves in superapp), notifications into the
// user's conversation with the mini-app's official account, and the
// developer's webhook secret and delivery log.
func (s *Server) miniappRoutes() []route {
	ma := s.cfg.MiniApp
	payRequest := func(c *call) (appCaller, miniapp.PayRequest, error) {
		a, err := s.miniappCaller(c, oauth.ScopePay, "")
		if err != nil {
			return appCaller{}, miniapp.PayRequest{}, err
		}
		r, err := ma.PayRequestFor(a.userID, a.clientID, c.r.PathValue("pay_request_id"))
		return a, r, err
	}
	return []route{
		// The mini-app's side, with its access token or client credentials.
		{method: "POST", pattern: "/v1/miniapp/pay-requests", feature: "miniapp", maxBody: smallBody, handle: func(c *call) error {
			var in miniapp.PayRequestInput
			if err := c.decode(&in); err != nil {
				return err
			}
			a, err := s.miniappCaller(c, oauth.ScopePay, in.UserID)
			if err != nil {
				return err
			}
			if a.userID == "" {
				return apperr.Field("user_id", "user_id is required with client credentials")
			}
			ctx, cancel := c.writeCtx()
			defer cancel()
			r, res, err := ma.CreatePayRequest(ctx, a.clientID, a.userID, in)
			if err != nil {
				return err
			}
			r.Status = r.StatusAt(ma.Now())
			return c.written(http.StatusCreated, res, r)
		}},
		{method: "GET", pattern: "/v1/miniapp/pay-requests/{pay_request_id}", feature: "miniapp", handle: func(c *call) error {
			_, r, err := payRequest(c)
			if err != nil {
				return err
			}
			return c.json(http.StatusOK, r)
		}},
		{method: "POST", pattern: "/v1/miniapp/pay-requests/{pay_request_id}/capture", feature: "miniapp", maxBody: smallBody, handle: func(c *call) error {
			var in struct {
				Amount uint64 `json:"amount,omitempty"`
			}
			if len(strings.TrimSpace(string(c.body))) > 0 {
				if err := c.decode(&in); err != nil {
					return err
				}
			}
			a, r, err := payRequest(c)
			if err != nil {
				return err
			}
			ctx, cancel := c.writeCtx()
			defer cancel()
			out, res, err := ma.Capture(ctx, a.clientID, r.ID, in.Amount)
			if err != nil {
				return err
			}
			return c.written(http.StatusOK, res, out)
		}},
		{method: "POST", pattern: "/v1/miniapp/pay-requests/{pay_request_id}/release", feature: "miniapp", handle: func(c *call) error {
			a, r, err := payRequest(c)
			if err != nil {
				return err
			}
			ctx, cancel := c.writeCtx()
			defer cancel()
			out, res, err := ma.Release(ctx, a.clientID, r.ID)
			if err != nil {
				return err
			}
			return c.written(http.StatusOK, res, out)
		}},
		{method: "POST", pattern: "/v1/miniapp/notifications", feature: "miniapp", maxBody: smallBody, handle: func(c *call) error {
			var in miniapp.NotifyInput
			if err := c.decode(&in); err != nil {
				return err
			}
			a, err := s.miniappCaller(c, oauth.ScopeChatNotify, in.UserID)
			if err != nil {
				return err
			}
			if a.userID == "" {
				return apperr.Field("user_id", "user_id is required with client credentials")
			}
			ctx, cancel := c.writeCtx()
			defer cancel()
			m, res, err := ma.Notify(ctx, a.clientID, a.userID, in)
			if err != nil {
				return err
			}
			return c.written(http.StatusCreated, res, map[string]any{"conversation_id": m.ConversationID, "message": m})
		}},
		// The user's side, with their superapp token.
		{method: "GET", pattern: "/v1/pay-requests", feature: "miniapp", auth: true, handle: func(c *call) error {
			out := []payRequestView{}
			for _, r := range ma.Pending(c.user.UserID) {
				out = append(out, s.payRequestView(r))
			}
			return c.json(http.StatusOK, map[string]any{"pay_requests": out})
		}},
		{method: "POST", pattern: "/v1/pay-requests/{pay_request_id}/approve", feature: "miniapp", auth: true, handle: func(c *call) error {
			ctx, cancel := c.writeCtx()
			defer cancel()
			r, res, err := ma.Approve(ctx, c.user.UserID, c.r.PathValue("pay_request_id"))
			if err != nil {
				return err
			}
			return c.written(http.StatusOK, res, s.payRequestView(r))
		}},
		{method: "POST", pattern: "/v1/pay-requests/{pay_request_id}/decline", feature: "miniapp", auth: true, handle: func(c *call) error {
			ctx, cancel := c.writeCtx()
			defer cancel()
			r, res, err := ma.Decline(ctx, c.user.UserID, c.r.PathValue("pay_request_id"))
			if err != nil {
				return err
			}
			return c.written(http.StatusOK, res, s.payRequestView(r))
		}},
		// The developer's side.
		{method: "GET", pattern: "/v1/apps/{client_id}/deliveries", feature: "miniapp", auth: true, handle: func(c *call) error {
			cl, err := s.cfg.OAuth.OwnClient(c.ctx(), c.user.UserID, c.r.PathValue("client_id"))
			if err != nil {
				return err
			}
			return c.json(http.StatusOK, map[string]any{"deliveries": ma.Deliveries(cl.ID)})
		}},
		{method: "GET", pattern: "/v1/apps/{client_id}/webhook-secret", feature: "miniapp", auth: true, handle: func(c *call) error {
			cl, err := s.cfg.OAuth.OwnClient(c.ctx(), c.user.UserID, c.r.PathValue("client_id"))
			if err != nil {
				return err
			}
			sec, v, err := ma.WebhookSecret(cl.ID)
			if err != nil {
				return err
			}
			return c.json(http.StatusOK, webhookSecretView{ClientID: cl.ID, Secret: sec, Version: v})
		}},
		{method: "POST", pattern: "/v1/apps/{client_id}/webhook-secret", feature: "miniapp", auth: true, handle: func(c *call) error {
			cl, err := s.cfg.OAuth.OwnClient(c.ctx(), c.user.UserID, c.r.PathValue("client_id"))
			if err != nil {
				return err
			}
			w, err := c.write()
			if err != nil {
				return err
			}
			ctx, cancel := c.writeCtx()
			defer cancel()
			sec, v, res, err := ma.RotateWebhookSecret(ctx, w, cl.ID)
			if err != nil {
				return err
			}
			return c.written(http.StatusOK, res, webhookSecretView{ClientID: cl.ID, Secret: sec, Version: v})
		}},
	}
}

type webhookSecretView struct {
	ClientID string `json:"client_id"`
	Secret   string `json:"webhook_secret"`
	Version  uint64 `json:"version"`
}

// payRequestView is a pay request as its user sees it: which mini-app
// asks, for what.
type payRequestView struct {
	miniapp.PayRequest
	Client clientRef `json:"client"`
}

func (s *Server) payRequestView(r miniapp.PayRequest) payRequestView {
	r.Status = r.StatusAt(s.cfg.MiniApp.Now())
	return payRequestView{PayRequest: r, Client: s.clientRef(r.ClientID)}
}

// appCaller is a mini-app calling on behalf of one of its users (userID
// empty: on its own behalf, for its own resources).
type appCaller struct {
	clientID, userID string
}

// miniappCaller authenticates a mini-app: with a user's access token that
// carries scope, or with its client credentials (HTTP Basic) for user, who
// must have a live grant to it with scope. user, when given with a token,
// must be the token's user.
func (s *Server) miniappCaller(c *call, scope, user string) (appCaller, error) {
	if id, secret, ok := c.r.BasicAuth(); ok {
		// As with tokens: a DC that may not have applied a revocation
		// does not let a mini-app act for a user.
		if err := s.grantsCurrent(); err != nil {
			return appCaller{}, err
		}
		if err := s.cfg.OAuth.CheckSecret(c.ctx(), id, secret); err != nil {
			if e := apperr.From(err); e.Code == apperr.NotCaughtUp {
				return appCaller{}, err
			}
			c.w.Header().Set("WWW-Authenticate", `Basic realm="superapp"`)
			return appCaller{}, apperr.New(apperr.Unauthenticated, "wrong client_id or client_secret")
		}
		if user == "" {
			return appCaller{clientID: id}, nil
		}
		granted, scoped := false, false
		for _, g := range s.cfg.OAuth.Grants(user) {
			if g.ClientID == id {
				granted = true
				scoped = scoped || g.HasScope(scope)
			}
		}
		switch {
		case !granted:
			return appCaller{}, apperr.New(apperr.SessionRevoked, "this user has no live grant to this mini-app (never given, or revoked)")
		case !scoped:
			return appCaller{}, apperr.New(oauth.InsufficientScope, "the user did not grant this mini-app the %s scope", scope)
		}
		return appCaller{clientID: id, userID: user}, nil
	}
	a, err := s.miniappAccess(c, scope)
	if err != nil {
		return appCaller{}, err
	}
	if user != "" && user != a.UserID {
		return appCaller{}, apperr.Field("user_id", "user_id must be the access token's user (or omitted)")
	}
	return appCaller{clientID: a.ClientID, userID: a.UserID}, nil
}
