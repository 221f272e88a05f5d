package httpapi

import (
	"context"
	"net/http"
	"time"

	"superapp/internal/cmdlog"
	"superapp/internal/social"
)

type socialCommand func(ctx context.Context, w cmdlog.Write, actor, other string) (social.Change, cmdlog.Result, error)

func (s *Server) socialRoutes() []route {
	so := s.cfg.Social
	// byPath runs a command on the user named in the path.
	byPath := func(cmd socialCommand) func(c *call) error {
		return func(c *call) error { return s.socialChange(c, cmd, c.r.PathValue("user_id")) }
	}
	// byBody runs a command on the user named in the body.
	byBody := func(cmd socialCommand) func(c *call) error {
		return func(c *call) error {
			var in struct {
				UserID string `json:"user_id"`
			}
			if err := c.decode(&in); err != nil {
				return err
			}
			return s.socialChange(c, cmd, in.UserID)
		}
	}
	return []route{
		{method: "GET", pattern: "/v1/friends", feature: "social", auth: true, handle: func(c *call) error {
			type friend struct {
				profile
				Since time.Time `json:"since"`
			}
			out := []friend{}
			for _, f := range so.State().Friends(c.user.UserID) {
				out = append(out, friend{profile: s.publicProfile(f.UserID), Since: f.Since})
			}
			return c.json(http.StatusOK, map[string]any{"friends": out})
		}},
		{method: "DELETE", pattern: "/v1/friends/{user_id}", feature: "social", auth: true, handle: byPath(so.Remove)},
		{method: "GET", pattern: "/v1/friends/requests", feature: "social", auth: true, handle: func(c *call) error {
			type request struct {
				profile
				CreatedAt time.Time `json:"created_at"`
			}
			in, out := so.State().Requests(c.user.UserID)
			incoming, outgoing := []request{}, []request{}
			for _, r := range in {
				incoming = append(incoming, request{profile: s.publicProfile(r.From), CreatedAt: r.CreatedAt})
			}
			for _, r := range out {
				outgoing = append(outgoing, request{profile: s.publicProfile(r.To), CreatedAt: r.CreatedAt})
			}
			return c.json(http.StatusOK, map[string]any{"incoming": incoming, "outgoing": outgoing})
		}},
		{method: "POST", pattern: "/v1/friends/requests", feature: "social", auth: true, maxBody: smallBody, handle: byBody(so.SendRequest)},
		{method: "POST", pattern: "/v1/friends/requests/{user_id}/accept", feature: "social", auth: true, handle: byPath(so.Accept)},
		{method: "POST", pattern: "/v1/friends/requests/{user_id}/decline", feature: "social", auth: true, handle: byPath(so.Decline)},
		{method: "DELETE", pattern: "/v1/friends/requests/{user_id}", feature: "social", auth: true, handle: byPath(so.Cancel)},
		{method: "GET", pattern: "/v1/blocks", feature: "social", auth: true, handle: func(c *call) error {
			type blocked struct {
				profile
				Since time.Time `json:"since"`
			}
			out := []blocked{}
			for _, b := range so.State().Blocks(c.user.UserID) {
				out = append(out, blocked{profile: s.publicProfile(b.UserID), Since: b.Since})
			}
			return c.json(http.StatusOK, map[string]any{"blocks": out})
		}},
		{method: "POST", pattern: "/v1/blocks", feature: "social", auth: true, maxBody: smallBody, handle: byBody(so.Block)},
		{method: "DELETE", pattern: "/v1/blocks/{user_id}", feature: "social", auth: true, handle: byPath(so.Unblock)},
	}
}

func (s *Server) socialChange(c *call, cmd socialCommand, other string) error {
	w, err := c.write()
	if err != nil {
		return err
	}
	ctx, cancel := c.writeCtx()
	defer cancel()
	ch, res, err := cmd(ctx, w, c.user.UserID, other)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if ch.Status == "requested" {
		status = http.StatusCreated
	}
	return c.written(status, res, ch)
}
