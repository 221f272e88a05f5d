package httpapi

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"

	"superapp/internal/apperr"
	"superapp/internal/cmdlog"
	"superapp/internal/oauth"
	"superapp/internal/oidcop"
)

// oauthRoutes are "Login with superapp": developers' mini-app
// registration, the consent API the web app's consent page calls, the
// user's grants, the resources a mini-app's token reaches, and the OpenID
// Provider's own endpoints under /oidc (each listed here, so that the
// library's unauthenticated /oidc/authorize/callback is never served).
func (s *Server) oauthRoutes() []route {
	oa := s.cfg.OAuth
	provider := func(c *call) error {
		s.cfg.OIDC.ServeHTTP(&recorder{ResponseWriter: c.w, c: c}, c.r)
		return nil
	}
	routes := []route{
		{method: "POST", pattern: "/v1/oauth/clients", feature: "oauth", auth: true, maxBody: smallBody,
			handle: bodyWrite(http.StatusCreated, func(ctx context.Context, c *call, w cmdlog.Write, in oauth.ClientInput) (oauth.Credentials, cmdlog.Result, error) {
				return oa.RegisterClient(ctx, w, c.user.UserID, in)
			})},
		{method: "GET", pattern: "/v1/oauth/clients", feature: "oauth", auth: true, handle: func(c *call) error {
			return c.json(http.StatusOK, map[string]any{"clients": oa.State().ClientsOf(c.user.UserID)})
		}},
		{method: "GET", pattern: "/v1/oauth/clients/{client_id}", feature: "oauth", auth: true, handle: func(c *call) error {
			cl, err := oa.OwnClient(c.ctx(), c.user.UserID, c.r.PathValue("client_id"))
			if err != nil {
				return err
			}
			return c.json(http.StatusOK, cl)
		}},
		{method: "POST", pattern: "/v1/oauth/clients/{client_id}/secret", feature: "oauth", auth: true, handle: func(c *call) error {
			w, err := c.write()
			if err != nil {
				return err
			}
			ctx, cancel := c.writeCtx()
			defer cancel()
			cr, res, err := oa.RotateSecret(ctx, w, c.user.UserID, c.r.PathValue("client_id"))
			if err != nil {
				return err
			}
			return c.written(http.StatusOK, res, cr)
		}},
		{method: "GET", pattern: "/v1/oauth/requests/{request_id}", feature: "oauth", auth: true, handle: func(c *call) error {
			r, err := oa.Request(c.ctx(), c.r.PathValue("request_id"))
			if err != nil {
				return err
			}
			return c.json(http.StatusOK, s.requestView(r))
		}},
		{method: "POST", pattern: "/v1/oauth/requests/{request_id}/approve", feature: "oauth", auth: true, handle: func(c *call) error {
			return s.decideRequest(c, s.cfg.OIDC.Approve)
		}},
		{method: "POST", pattern: "/v1/oauth/requests/{request_id}/deny", feature: "oauth", auth: true, handle: func(c *call) error {
			return s.decideRequest(c, s.cfg.OIDC.Deny)
		}},
		{method: "GET", pattern: "/v1/oauth/grants", feature: "oauth", auth: true, handle: func(c *call) error {
			out := []grantView{}
			for _, g := range oa.Grants(c.user.UserID) {
				out = append(out, s.grantView(g))
			}
			return c.json(http.StatusOK, map[string]any{"grants": out})
		}},
		{method: "DELETE", pattern: "/v1/oauth/grants/{grant_id}", feature: "oauth", auth: true, handle: func(c *call) error {
			w, err := c.write()
			if err != nil {
				return err
			}
			ctx, cancel := c.writeCtx()
			defer cancel()
			g, res, err := oa.RevokeGrant(ctx, w, c.user.UserID, c.r.PathValue("grant_id"))
			if err != nil {
				return err
			}
			return c.written(http.StatusOK, res, s.grantView(g))
		}},
		// Resources a mini-app reaches with its access token, each behind
		// one scope.
		{method: "GET", pattern: "/v1/miniapp/me", feature: "oauth", handle: func(c *call) error {
			a, err := s.miniappAccess(c, oauth.ScopeProfile)
			if err != nil {
				return err
			}
			return c.json(http.StatusOK, s.publicProfile(a.UserID))
		}},
		{method: "GET", pattern: "/v1/miniapp/friends", feature: "oauth", handle: func(c *call) error {
			a, err := s.miniappAccess(c, oauth.ScopeFriends)
			if err != nil {
				return err
			}
			out := []profile{}
			for _, f := range s.cfg.Social.State().Friends(a.UserID) {
				out = append(out, s.publicProfile(f.UserID))
			}
			return c.json(http.StatusOK, map[string]any{"friends": out})
		}},
	}
	// The provider's endpoints answer in OAuth's own error format.
	for _, p := range []struct{ method, path string }{
		{"GET", "/.well-known/openid-configuration"},
		{"GET", "/keys"},
		{"GET", "/authorize"},
		{"POST", "/oauth/token"},
		{"POST", "/oauth/introspect"},
		{"GET", "/userinfo"},
		{"POST", "/userinfo"},
		{"POST", "/revoke"},
	} {
		routes = append(routes, route{method: p.method, pattern: oidcop.Prefix + p.path, feature: "oauth", handle: provider})
	}
	return routes
}

// recorder notes that the provider wrote the answer, and its status.
type recorder struct {
	http.ResponseWriter
	c *call
}

func (r *recorder) WriteHeader(status int) {
	r.c.wrote, r.c.status = true, status
	r.ResponseWriter.WriteHeader(status)
}

func (r *recorder) Write(b []byte) (int, error) {
	if !r.c.wrote {
		r.c.wrote, r.c.status = true, http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

type decision func(ctx context.Context, w cmdlog.Write, user, session, requestID string) (string, cmdlog.Result, error)

func (s *Server) decideRequest(c *call, decide decision) error {
	w, err := c.write()
	if err != nil {
		return err
	}
	ctx, cancel := c.writeCtx()
	defer cancel()
	id := c.r.PathValue("request_id")
	to, res, err := decide(ctx, w, c.user.UserID, c.user.SessionID, id)
	if err != nil {
		return err
	}
	return c.written(http.StatusOK, res, map[string]string{"request_id": id, "redirect_to": to})
}

// grantsCurrent refuses mini-apps on a DC that may not have applied a
// revocation (cut off, or catching up): for third parties, "elsewhere".
func (s *Server) grantsCurrent() error {
	if s.isolated() {
		return &apperr.Error{Code: apperr.Isolated, Message: "this data center is cut off from the others; use another", RetryAfter: 1}
	}
	if m := s.cfg.Machines[oauth.Stream]; m != nil {
		if ok, _ := m.CaughtUp(); !ok {
			return &apperr.Error{Code: apperr.Unavailable, Message: "this data center is catching up; retry or use another", RetryAfter: 1}
		}
	}
	return nil
}

// miniappAccess authenticates a mini-app's access token and checks it
// carries scope.
func (s *Server) miniappAccess(c *call, scope string) (oauth.Access, error) {
	tok, ok := strings.CutPrefix(c.r.Header.Get("Authorization"), "Bearer ")
	if !ok || tok == "" {
		c.w.Header().Set("WWW-Authenticate", `Bearer realm="superapp"`)
		return oauth.Access{}, apperr.New(apperr.Unauthenticated, "Authorization: Bearer <mini-app access token> is required")
	}
	if err := s.grantsCurrent(); err != nil {
		return oauth.Access{}, err
	}
	a, err := s.cfg.OIDC.Authenticate(c.ctx(), tok)
	if err != nil {
		c.w.Header().Set("WWW-Authenticate", `Bearer realm="superapp", error="invalid_token"`)
		return oauth.Access{}, err
	}
	if !a.HasScope(scope) {
		c.w.Header().Set("WWW-Authenticate", `Bearer realm="superapp", error="insufficient_scope", scope="`+scope+`"`)
		return oauth.Access{}, apperr.New(oauth.InsufficientScope, "the user did not grant this mini-app the %s scope", scope)
	}
	return a, nil
}

type clientRef struct {
	ClientID string `json:"client_id"`
	Name     string `json:"name"`
	// OwnerName is who registered the app, as their profile names them:
	// the consent page shows it, so a person sees who stands behind it.
	OwnerName string `json:"owner_name"`
}

func (s *Server) clientRef(id string) clientRef {
	cl, _ := s.cfg.OAuth.State().Client(id)
	ref := clientRef{ClientID: id, Name: cl.Name}
	if cl.Owner != "" {
		ref.OwnerName = s.publicProfile(cl.Owner).Name
	}
	return ref
}

// requestView is what the consent page shows: who asks, for what, and
// where the answer goes.
type requestView struct {
	RequestID    string    `json:"request_id"`
	Client       clientRef `json:"client"`
	Scopes       []string  `json:"scopes"`
	RedirectURI  string    `json:"redirect_uri"`
	RedirectHost string    `json:"redirect_host"`
	Status       string    `json:"status"`
	ExpiresAt    time.Time `json:"expires_at"`
}

func (s *Server) requestView(r oauth.Request) requestView {
	host := ""
	if u, err := url.Parse(r.RedirectURI); err == nil {
		host = u.Host
	}
	return requestView{
		RequestID: r.ID, Client: s.clientRef(r.ClientID), Scopes: r.Scopes, RedirectURI: r.RedirectURI,
		RedirectHost: host, Status: r.Status(s.cfg.OAuth.Now()), ExpiresAt: r.ExpiresAt,
	}
}

type grantView struct {
	GrantID     string     `json:"grant_id"`
	Client      clientRef  `json:"client"`
	Scopes      []string   `json:"scopes"`
	CreatedAt   time.Time  `json:"created_at"`
	RefreshedAt time.Time  `json:"refreshed_at"`
	RevokedAt   *time.Time `json:"revoked_at,omitempty"`
}

func (s *Server) grantView(g oauth.Grant) grantView {
	return grantView{GrantID: g.ID, Client: s.clientRef(g.ClientID), Scopes: g.Scopes, CreatedAt: g.CreatedAt, RefreshedAt: g.RefreshedAt, RevokedAt: g.RevokedAt}
}
