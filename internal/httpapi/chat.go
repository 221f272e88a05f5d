package httpapi

import (
	"io"
	"mime"
	"net/http"
	"strconv"

	"superapp/internal/apperr"
	"superapp/internal/chat"
	"superapp/internal/cmdlog"
)

const (
	defaultPage = 50
	maxPage     = 200
	maxSyncPage = 500
)

// uintParam parses an optional non-negative integer query parameter.
func uintParam(c *call, name string, def uint64) (uint64, error) {
	v := c.r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, apperr.Field(name, "%s must be a non-negative integer", name)
	}
	return n, nil
}

func limitParam(c *call, def, most int) (int, error) {
	n, err := uintParam(c, "limit", uint64(def))
	if err != nil {
		return 0, err
	}
	if n == 0 || n > uint64(most) {
		return 0, apperr.Field("limit", "limit must be 1 to %d", most)
	}
	return int(n), nil
}

func (s *Server) chatRoutes() []route {
	ch := s.cfg.Chat
	// convWrite runs a write on the conversation in the path and answers
	// 200 with its outcome.
	convWrite := func(fn func(c *call, w cmdlog.Write, conv string) (any, cmdlog.Result, error)) func(c *call) error {
		return func(c *call) error {
			w, err := c.write()
			if err != nil {
				return err
			}
			ctx, cancel := c.writeCtx()
			defer cancel()
			c.r = c.r.WithContext(ctx)
			v, res, err := fn(c, w, c.r.PathValue("id"))
			if err != nil {
				return err
			}
			return c.written(http.StatusOK, res, v)
		}
	}
	seqBody := func(c *call) (uint64, error) {
		var in struct {
			Seq uint64 `json:"seq"`
		}
		err := c.decode(&in)
		return in.Seq, err
	}
	return []route{
		{method: "POST", pattern: "/v1/conversations", feature: "chat", auth: true, maxBody: 64 << 10, handle: func(c *call) error {
			var in chat.CreateInput
			if err := c.decode(&in); err != nil {
				return err
			}
			w, err := c.write()
			if err != nil {
				return err
			}
			ctx, cancel := c.writeCtx()
			defer cancel()
			out, res, err := ch.Create(ctx, w, c.user.UserID, in)
			if err != nil {
				return err
			}
			status := http.StatusCreated
			if out.Existed {
				status = http.StatusOK
			}
			return c.written(status, res, out)
		}},
		{method: "GET", pattern: "/v1/conversations", feature: "chat", auth: true, handle: func(c *call) error {
			cs, cursor := ch.State().ConversationsAt(c.user.UserID)
			out := make([]convView, len(cs))
			for i, v := range cs {
				out[i] = s.convView(v)
			}
			return c.json(http.StatusOK, map[string]any{"conversations": out, "cursor": cursor})
		}},
		{method: "GET", pattern: "/v1/conversations/{id}", feature: "chat", auth: true, handle: func(c *call) error {
			v, err := ch.State().Conversation(c.r.PathValue("id"), c.user.UserID)
			if err != nil {
				return err
			}
			return c.json(http.StatusOK, s.convView(v))
		}},
		{method: "PATCH", pattern: "/v1/conversations/{id}", feature: "chat", auth: true, maxBody: smallBody,
			handle: convWrite(func(c *call, w cmdlog.Write, conv string) (any, cmdlog.Result, error) {
				var in struct {
					Title string `json:"title"`
				}
				if err := c.decode(&in); err != nil {
					return nil, cmdlog.Result{}, err
				}
				return ch.Rename(c.ctx(), w, c.user.UserID, conv, in.Title)
			})},
		{method: "POST", pattern: "/v1/conversations/{id}/members", feature: "chat", auth: true, maxBody: 64 << 10,
			handle: convWrite(func(c *call, w cmdlog.Write, conv string) (any, cmdlog.Result, error) {
				var in struct {
					Users []string `json:"users"`
				}
				if err := c.decode(&in); err != nil {
					return nil, cmdlog.Result{}, err
				}
				return ch.AddMembers(c.ctx(), w, c.user.UserID, conv, in.Users)
			})},
		{method: "DELETE", pattern: "/v1/conversations/{id}/members/{user_id}", feature: "chat", auth: true,
			handle: convWrite(func(c *call, w cmdlog.Write, conv string) (any, cmdlog.Result, error) {
				return ch.RemoveMember(c.ctx(), w, c.user.UserID, conv, c.r.PathValue("user_id"))
			})},
		{method: "PUT", pattern: "/v1/conversations/{id}/admins/{user_id}", feature: "chat", auth: true,
			handle: convWrite(func(c *call, w cmdlog.Write, conv string) (any, cmdlog.Result, error) {
				return ch.SetAdmin(c.ctx(), w, c.user.UserID, conv, c.r.PathValue("user_id"), true)
			})},
		{method: "DELETE", pattern: "/v1/conversations/{id}/admins/{user_id}", feature: "chat", auth: true,
			handle: convWrite(func(c *call, w cmdlog.Write, conv string) (any, cmdlog.Result, error) {
				return ch.SetAdmin(c.ctx(), w, c.user.UserID, conv, c.r.PathValue("user_id"), false)
			})},
		{method: "POST", pattern: "/v1/conversations/{id}/messages", feature: "chat", auth: true, maxBody: 32 << 10, handle: func(c *call) error {
			var in chat.SendInput
			if err := c.decode(&in); err != nil {
				return err
			}
			ctx, cancel := c.writeCtx()
			defer cancel()
			m, res, err := ch.Send(ctx, c.user.UserID, c.r.PathValue("id"), in)
			if err != nil {
				return err
			}
			status := http.StatusCreated
			if res.Replayed {
				status = http.StatusOK
			}
			return c.written(status, res, m)
		}},
		{method: "GET", pattern: "/v1/conversations/{id}/messages", feature: "chat", auth: true, handle: func(c *call) error {
			after, err := uintParam(c, "after", 0)
			if err != nil {
				return err
			}
			before, err := uintParam(c, "before", 0)
			if err != nil {
				return err
			}
			if after > 0 && before > 0 {
				return apperr.Field("before", "give after or before, not both")
			}
			limit, err := limitParam(c, defaultPage, maxPage)
			if err != nil {
				return err
			}
			ms, more, err := ch.State().Messages(c.r.PathValue("id"), c.user.UserID, chat.Page{After: after, Before: before, Limit: limit})
			if err != nil {
				return err
			}
			return c.json(http.StatusOK, map[string]any{"messages": ms, "more": more})
		}},
		{method: "DELETE", pattern: "/v1/conversations/{id}/messages/{seq}", feature: "chat", auth: true,
			handle: convWrite(func(c *call, w cmdlog.Write, conv string) (any, cmdlog.Result, error) {
				seq, err := strconv.ParseUint(c.r.PathValue("seq"), 10, 64)
				if err != nil {
					return nil, cmdlog.Result{}, apperr.Field("seq", "seq must be a message sequence")
				}
				return ch.Delete(c.ctx(), w, c.user.UserID, conv, seq)
			})},
		{method: "POST", pattern: "/v1/conversations/{id}/read", feature: "chat", auth: true, maxBody: smallBody,
			handle: convWrite(func(c *call, w cmdlog.Write, conv string) (any, cmdlog.Result, error) {
				seq, err := seqBody(c)
				if err != nil {
					return nil, cmdlog.Result{}, err
				}
				return ch.Read(c.ctx(), w, c.user.UserID, conv, seq)
			})},
		{method: "POST", pattern: "/v1/conversations/{id}/delivered", feature: "chat", auth: true, maxBody: smallBody,
			handle: convWrite(func(c *call, w cmdlog.Write, conv string) (any, cmdlog.Result, error) {
				seq, err := seqBody(c)
				if err != nil {
					return nil, cmdlog.Result{}, err
				}
				return ch.Delivered(c.ctx(), w, c.user.UserID, conv, seq)
			})},
		{method: "POST", pattern: "/v1/conversations/{id}/attachments", feature: "chat", auth: true, maxBody: chat.MaxAttachment + 1, handle: func(c *call) error {
			w, err := c.write()
			if err != nil {
				return err
			}
			ctx, cancel := c.writeCtx()
			defer cancel()
			a, res, err := ch.Upload(ctx, w, c.user.UserID, c.r.PathValue("id"), c.r.URL.Query().Get("name"), c.r.Header.Get("Content-Type"), c.body)
			if err != nil {
				return err
			}
			return c.written(http.StatusCreated, res, a)
		}},
		{method: "GET", pattern: "/v1/conversations/{id}/attachments/{attachment_id}", feature: "chat", auth: true, handle: func(c *call) error {
			a, rc, err := ch.Open(c.ctx(), c.user.UserID, c.r.PathValue("id"), c.r.PathValue("attachment_id"))
			if err != nil {
				return err
			}
			defer rc.Close()
			h := c.w.Header()
			h.Set("Content-Type", a.ContentType)
			h.Set("Content-Length", strconv.FormatInt(a.Size, 10))
			h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": a.Name}))
			h.Set("X-Content-Type-Options", "nosniff")
			h.Set("Cache-Control", "private, max-age=86400")
			h.Set("ETag", `"`+a.SHA256+`"`)
			c.w.WriteHeader(http.StatusOK)
			c.wrote, c.status = true, http.StatusOK
			_, _ = io.Copy(c.w, rc)
			return nil
		}},
		{method: "GET", pattern: "/v1/events", feature: "events", auth: true, long: true, handle: s.events},
		{method: "POST", pattern: "/v1/conversations/{id}/typing", feature: "chat", auth: true, handle: func(c *call) error {
			conv := c.r.PathValue("id")
			if _, err := ch.State().Conversation(conv, c.user.UserID); err != nil {
				return err
			}
			if s.cfg.Typing != nil {
				s.cfg.Typing(conv, c.user.UserID)
			}
			c.w.WriteHeader(http.StatusNoContent)
			c.wrote, c.status = true, http.StatusNoContent
			return nil
		}},
		{method: "GET", pattern: "/v1/sync", feature: "chat", auth: true, handle: func(c *call) error {
			cursor, err := uintParam(c, "cursor", 0)
			if err != nil {
				return err
			}
			limit, err := limitParam(c, 100, maxSyncPage)
			if err != nil {
				return err
			}
			evs, next, more := ch.State().Sync(c.user.UserID, cursor, limit)
			return c.json(http.StatusOK, map[string]any{"events": evs, "cursor": next, "more": more})
		}},
	}
}

// convView is a conversation as the API shows it: every member with the
// name their profile has now, so that an app can name the people of a
// group who are not the caller's friends.
type convView struct {
	chat.View
	Members []memberView `json:"members"`
}

type memberView struct {
	chat.Member
	Name string `json:"name"`
}

func (s *Server) convView(v chat.View) convView {
	out := convView{View: v, Members: make([]memberView, len(v.Members))}
	for i, m := range v.Members {
		out.Members[i] = memberView{Member: m, Name: s.publicProfile(m.UserID).Name}
	}
	return out
}
