package httpapi

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"superapp/internal/apperr"
	"superapp/internal/cmdlog"
	"superapp/internal/identity"
)

// The web app's sessions. A browser must not hold its refresh token where
// a script can read it: the web app logs in through /v1/web/sessions,
// which answers the access token (kept in the page's memory only) and puts
// the refresh token in an HttpOnly, SameSite=Strict cookie scoped to
// /v1/web. /v1/web/refresh rotates it; /v1/web/logout revokes the session
// and clears it. Every /v1/web call must carry the X-Superapp-CSRF header,
// which no form and no cross-origin page can send without a CORS preflight
// that only the cluster's own origins pass; a browser Origin, when sent,
// must be one of them too.

const (
	refreshCookie = "superapp_refresh"
	// HeaderCSRF marks a request as sent by a script of an allowed origin.
	HeaderCSRF = "X-Superapp-CSRF"
	webPath    = "/v1/web"
	// refreshCookieAge is how long the browser keeps the cookie; the
	// session itself decides whether the token inside still works.
	refreshCookieAge = 90 * 24 * time.Hour
)

// webTokens is what the web app's session calls answer: no refresh token.
type webTokens struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int    `json:"expires_in"`
	UserID      string `json:"user_id"`
	SessionID   string `json:"session_id"`
}

func (s *Server) webSessionRoutes() []route {
	id := s.cfg.Identity
	return []route{
		{method: "POST", pattern: webPath + "/sessions", feature: "identity", maxBody: smallBody, handle: webOnly(bodyWriteAnswer(
			func(ctx context.Context, c *call, w cmdlog.Write, in identity.Login) (identity.Tokens, cmdlog.Result, error) {
				return id.Login(ctx, w, in, c.clientAddr())
			},
			func(c *call, res cmdlog.Result, t identity.Tokens) error {
				return c.webSession(http.StatusCreated, res, t)
			}))},
		{method: "POST", pattern: webPath + "/refresh", feature: "identity", handle: webOnly(func(c *call) error {
			ck, err := c.r.Cookie(refreshCookie)
			if err != nil || ck.Value == "" {
				return apperr.New(apperr.Unauthenticated, "no web session: log in")
			}
			w, err := c.write()
			if err != nil {
				return err
			}
			if w.ID != "" {
				// The token is the request: a key replayed with another
				// session's cookie must not answer that session's tokens.
				w.Hash = c.s.fingerprint(c.r.Method, c.r.URL.Path, ck.Value)
			}
			ctx, cancel := c.writeCtx()
			defer cancel()
			t, res, err := id.Refresh(ctx, w, ck.Value)
			if err != nil {
				if code := apperr.From(err).Code; code == apperr.Unauthenticated || code == apperr.SessionRevoked {
					c.clearRefreshCookie() // for good: the page logs in again
				}
				return err
			}
			return c.webSession(http.StatusOK, res, t)
		})},
		{method: "POST", pattern: webPath + "/logout", feature: "identity", auth: true, handle: webOnly(func(c *call) error {
			w, err := c.write()
			if err != nil {
				return err
			}
			ctx, cancel := c.writeCtx()
			defer cancel()
			ss, res, err := s.cfg.Identity.RevokeSession(ctx, w, c.user.UserID, c.user.SessionID)
			if err != nil && apperr.From(err).Code != apperr.SessionRevoked {
				return err
			}
			c.clearRefreshCookie()
			return c.written(http.StatusOK, res, ss)
		})},
	}
}

// webOnly runs handle for calls from the web app only (webCaller).
func webOnly(handle func(*call) error) func(*call) error {
	return func(c *call) error {
		if err := c.webCaller(); err != nil {
			return err
		}
		return handle(c)
	}
}

// webCaller checks that a /v1/web call comes from a script of one of the
// cluster's own origins.
func (c *call) webCaller() error {
	if c.r.Header.Get(HeaderCSRF) == "" {
		return apperr.New(apperr.Forbidden, "the %s header is required", HeaderCSRF)
	}
	if o := c.r.Header.Get("Origin"); o != "" && !c.s.originAllowed(c.r, o) {
		return apperr.New(apperr.Forbidden, "origin %s may not use web sessions here", o)
	}
	return nil
}

func (c *call) webSession(status int, res cmdlog.Result, t identity.Tokens) error {
	c.setRefreshCookie(t.RefreshToken, refreshCookieAge)
	c.w.Header().Set("Cache-Control", "no-store")
	return c.written(status, res, webTokens{AccessToken: t.AccessToken, TokenType: t.TokenType,
		ExpiresIn: t.ExpiresIn, UserID: t.UserID, SessionID: t.SessionID})
}

func (c *call) clearRefreshCookie() { c.setRefreshCookie("", -1) }

func (c *call) setRefreshCookie(v string, age time.Duration) {
	maxAge := int(age.Seconds())
	if age < 0 {
		maxAge = -1
	}
	http.SetCookie(c.w, &http.Cookie{Name: refreshCookie, Value: v, Path: webPath, MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: c.r.TLS != nil})
}

// originAllowed reports whether a browser origin is the node's own or one
// of the cluster's DC endpoints: the web app served by one DC calls the
// others when its own fails.
func (s *Server) originAllowed(r *http.Request, origin string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	return slices.Contains(s.AppOrigins(), strings.ToLower(u.Scheme+"://"+u.Host))
}

// AppOrigins are the origins of every DC's public endpoint: where the web
// app may be served from and what it may call.
func (s *Server) AppOrigins() []string {
	if s.cfg.Endpoints == nil {
		return nil
	}
	var out []string
	for _, e := range s.cfg.Endpoints() {
		u, err := url.Parse(e.URL)
		if err != nil || u.Host == "" {
			continue
		}
		out = append(out, strings.ToLower(u.Scheme+"://"+u.Host))
	}
	return out
}

// cors answers a preflight, and marks the answer to a cross-origin request
// from another DC's web app as readable by it. It reports whether the
// request has been answered.
func (s *Server) cors(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || !isAPIPath(r.URL.Path) || !s.originAllowed(r, origin) {
		return false
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Allow-Credentials", "true")
	h.Add("Vary", "Origin")
	h.Set("Access-Control-Expose-Headers", strings.Join([]string{HeaderPosition, HeaderReplayed, HeaderRequestID, "Retry-After"}, ", "))
	if r.Method != http.MethodOptions || r.Header.Get("Access-Control-Request-Method") == "" {
		return false
	}
	h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE")
	h.Set("Access-Control-Allow-Headers", strings.Join([]string{"Authorization", "Content-Type", HeaderIdempotency, HeaderPosition, HeaderCSRF, HeaderRequestID}, ", "))
	h.Set("Access-Control-Max-Age", "600")
	h.Set(HeaderRequestID, requestID(r))
	w.WriteHeader(http.StatusNoContent)
	return true
}

// isAPIPath reports whether path belongs to the API; every other path is
// the web app's.
func isAPIPath(path string) bool {
	for _, p := range []string{"/v1/", "/oidc/", "/ops/"} {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	switch path {
	case "/v1", "/oidc", "/ops", "/healthz", "/readyz", "/metrics":
		return true
	}
	return false
}
