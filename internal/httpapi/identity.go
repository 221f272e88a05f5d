package httpapi

import (
	"context"
	"net/http"

	"superapp/internal/apperr"
	"superapp/internal/cmdlog"
	"superapp/internal/identity"
)

const smallBody = 16 << 10

// bodyWrite is the common shape of a write: decode the body into In, run
// fn with the request's idempotency write under the write deadline, and
// answer status with the outcome and its position.
func bodyWrite[In, Out any](status int, fn func(ctx context.Context, c *call, w cmdlog.Write, in In) (Out, cmdlog.Result, error)) func(*call) error {
	return bodyWriteAnswer(fn, func(c *call, res cmdlog.Result, out Out) error { return c.written(status, res, out) })
}

// bodyWriteAnswer is bodyWrite with its own answer.
func bodyWriteAnswer[In, Out any](fn func(ctx context.Context, c *call, w cmdlog.Write, in In) (Out, cmdlog.Result, error), answer func(c *call, res cmdlog.Result, out Out) error) func(*call) error {
	return func(c *call) error {
		var in In
		if err := c.decode(&in); err != nil {
			return err
		}
		w, err := c.write()
		if err != nil {
			return err
		}
		ctx, cancel := c.writeCtx()
		defer cancel()
		out, res, err := fn(ctx, c, w, in)
		if err != nil {
			return err
		}
		return answer(c, res, out)
	}
}

func (s *Server) identityRoutes() []route {
	id := s.cfg.Identity
	return []route{
		{method: "POST", pattern: "/v1/accounts", feature: "identity", maxBody: smallBody,
			handle: bodyWrite(http.StatusCreated, func(ctx context.Context, c *call, w cmdlog.Write, in identity.SignUp) (identity.User, cmdlog.Result, error) {
				return id.SignUp(ctx, w, in, c.clientAddr())
			})},
		{method: "POST", pattern: "/v1/sessions", feature: "identity", maxBody: smallBody,
			handle: bodyWrite(http.StatusCreated, func(ctx context.Context, c *call, w cmdlog.Write, in identity.Login) (identity.Tokens, cmdlog.Result, error) {
				return id.Login(ctx, w, in, c.clientAddr())
			})},
		{method: "POST", pattern: "/v1/sessions/refresh", feature: "identity", maxBody: smallBody, handle: func(c *call) error {
			var in struct {
				RefreshToken string `json:"refresh_token"`
			}
			if err := c.decode(&in); err != nil {
				return err
			}
			if in.RefreshToken == "" {
				return apperr.Field("refresh_token", "refresh_token is required")
			}
			w, err := c.write()
			if err != nil {
				return err
			}
			ctx, cancel := c.writeCtx()
			defer cancel()
			t, res, err := id.Refresh(ctx, w, in.RefreshToken)
			if err != nil {
				return err
			}
			return c.written(http.StatusOK, res, t)
		}},
		{method: "GET", pattern: "/v1/sessions", feature: "identity", auth: true, handle: func(c *call) error {
			type view struct {
				identity.Session
				Current bool `json:"current"`
			}
			out := []view{}
			for _, ss := range id.State().Sessions(c.user.UserID, false) {
				out = append(out, view{Session: ss, Current: ss.ID == c.user.SessionID})
			}
			return c.json(http.StatusOK, map[string]any{"sessions": out})
		}},
		{method: "DELETE", pattern: "/v1/sessions/current", feature: "identity", auth: true, handle: func(c *call) error {
			return s.revoke(c, c.user.SessionID)
		}},
		{method: "DELETE", pattern: "/v1/sessions/{id}", feature: "identity", auth: true, handle: func(c *call) error {
			return s.revoke(c, c.r.PathValue("id"))
		}},
		{method: "GET", pattern: "/v1/me", feature: "identity", auth: true, handle: func(c *call) error {
			u, ok := id.State().User(c.user.UserID)
			if !ok {
				return apperr.New(apperr.UserNotFound, "no such user")
			}
			return c.json(http.StatusOK, u)
		}},
		{method: "PATCH", pattern: "/v1/me", feature: "identity", auth: true, maxBody: smallBody,
			handle: bodyWrite(http.StatusOK, func(ctx context.Context, c *call, w cmdlog.Write, in identity.ProfileUpdate) (identity.User, cmdlog.Result, error) {
				return id.UpdateProfile(ctx, w, c.user.UserID, in)
			})},
		{method: "GET", pattern: "/v1/users/lookup", feature: "identity", auth: true, handle: func(c *call) error {
			q := c.r.URL.Query()
			u, err := id.Lookup(c.user.UserID, q.Get("phone"), q.Get("email"))
			if err != nil {
				return err
			}
			// Someone who blocked you cannot be found by you.
			if s.cfg.Social.State().HasBlocked(u.ID, c.user.UserID) {
				return apperr.New(apperr.UserNotFound, "no such user")
			}
			return c.json(http.StatusOK, s.publicProfile(u.ID))
		}},
	}
}

func (s *Server) revoke(c *call, sessionID string) error {
	w, err := c.write()
	if err != nil {
		return err
	}
	ctx, cancel := c.writeCtx()
	defer cancel()
	ss, res, err := s.cfg.Identity.RevokeSession(ctx, w, c.user.UserID, sessionID)
	if err != nil {
		return err
	}
	return c.written(http.StatusOK, res, ss)
}

// profile is what other users may see of a user.
type profile struct {
	UserID string `json:"user_id"`
	Name   string `json:"name"`
	Status string `json:"status_message"`
}

func (s *Server) publicProfile(userID string) profile {
	u, _ := s.cfg.Identity.State().User(userID)
	return profile{UserID: userID, Name: u.Name, Status: u.Status}
}
