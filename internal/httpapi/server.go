// Package httpapi is superapp's HTTP and WebSocket gateway: routing,
// authentication, strict decoding, idempotency keys, position tokens,
// per-feature admission control and the mapping of errors to responses.
//
// It must never let a panic, an internal error text or a 5xx for bad input
// reach a client, and never serve a route that api/openapi.yaml does not
// document.
package httpapi

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"superapp/internal/apperr"
	"superapp/internal/chat"
	"superapp/internal/cmdlog"
	"superapp/internal/food"
	"superapp/internal/identity"
	"superapp/internal/miniapp"
	"superapp/internal/oauth"
	"superapp/internal/oidcop"
	"superapp/internal/pay"
	"superapp/internal/rides"
	"superapp/internal/social"
)

// Header names that are part of the public contract.
const (
	HeaderPosition    = "X-Superapp-Position"
	HeaderRequestID   = "X-Request-Id"
	HeaderIdempotency = "Idempotency-Key"
	HeaderReplayed    = "Idempotent-Replayed"
	// HeaderStale marks a read served by a DC cut off from the others: it
	// may miss writes committed elsewhere.
	HeaderStale = "X-Superapp-Stale"
)

// Readiness is what /readyz reports.
type Readiness struct {
	Ready      bool
	Reasons    []string
	Streams    any         // the cluster's view of each stream
	ReadModels []ReadModel // this node's read models
}

// ReadModel is one read model's position and digest.
type ReadModel struct {
	Stream  string `json:"stream"`
	Applied uint64 `json:"applied"`
	Digest  string `json:"digest"`
	// State is a digest of the state itself and Invariants its checks,
	// where the feature has them (the ledger).
	State      string `json:"state,omitempty"`
	Invariants string `json:"invariants,omitempty"`
}

// Config configures the gateway.
type Config struct {
	DC       string
	Identity *identity.Service
	Social   *social.Service
	Chat     *chat.Service
	Pay      *pay.Service
	Rides    *rides.Service
	// Food is food and grocery delivery.
	Food *food.Service
	// OAuth and OIDC are "Login with superapp": mini-app registration,
	// consent, grants, and the OpenID Provider mounted under /oidc.
	OAuth *oauth.Service
	OIDC  *oidcop.Provider
	// MiniApp is the mini-app platform: pay requests, notifications, webhooks.
	MiniApp *miniapp.Service
	// Machines are the node's state machines by stream name, for position waits.
	Machines map[string]*cmdlog.Machine
	Ready    func(ctx context.Context) Readiness
	OpenAPI  []byte
	// Typing broadcasts a typing indicator to every node (nil: this node only).
	Typing func(convID, user string)
	// WSOrigins are the browser origins allowed to open the event stream
	// besides the API's own host.
	WSOrigins []string
	// FingerprintKey keys the request fingerprints of idempotency keys; it
	// must be the same on every node.
	FingerprintKey []byte
	// OpsToken, when set, is the bearer token /ops/*, /metrics and the
	// detail of /readyz require. Without it they are for loopback callers
	// only if OpsLoopback, else for nobody.
	OpsToken string
	// OpsLoopback lets loopback callers be operators when no OpsToken is
	// set: only for a node on its own that listens on loopback alone. A
	// clustered node, or one reachable from other hosts, may sit behind a
	// reverse proxy on its host, whose requests come from loopback too.
	OpsLoopback bool
	Logger      *slog.Logger
	Registry    *prometheus.Registry
	// PositionWait bounds how long a request waits for a position (default 5s).
	PositionWait time.Duration
	// WriteTimeout bounds how long a write waits for a quorum (default 15s).
	WriteTimeout time.Duration
	// Isolated reports whether this DC is cut off from the majority: it
	// then refuses writes and event streams at once and marks reads stale.
	Isolated func() bool
	// Endpoints lists every DC's public endpoint (GET /v1/endpoints).
	Endpoints func() []Endpoint
	// Ops serves the operator endpoints (status, evacuation).
	Ops Ops
	// App serves the web app: every path that is not the API's.
	App http.Handler
}

// Endpoint is one DC's public HTTP endpoint.
type Endpoint struct {
	DC  string `json:"dc"`
	URL string `json:"url"`
}

// Server is the gateway.
type Server struct {
	cfg     Config
	log     *slog.Logger
	mux     *http.ServeMux
	routes  []route
	metrics *metrics
	gates   map[string]chan struct{}
	hub     *Hub
	// faults are the panics injected per feature (POST /ops/faults).
	faultsMu sync.Mutex
	faults   map[string]string
	// closing ends every long-lived stream when the node shuts down.
	closing context.Context
	close   context.CancelFunc
}

// Close ends the event streams; http.Server.Shutdown does not see them.
func (s *Server) Close() { s.close() }

type route struct {
	method, pattern string
	feature         string // admission-control bulkhead and metrics label
	auth            bool
	long            bool // a long-lived stream: outside admission control; token also as a WebSocket subprotocol
	maxBody         int64
	handle          func(c *call) error
}

// New returns the gateway with every route registered.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.PositionWait == 0 {
		cfg.PositionWait = 5 * time.Second
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = 15 * time.Second
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	s := &Server{cfg: cfg, log: cfg.Logger.With("component", "http"), mux: http.NewServeMux(), gates: map[string]chan struct{}{}, hub: NewHub(), faults: map[string]string{}}
	s.closing, s.close = context.WithCancel(context.Background())
	go s.pings()
	s.metrics = newMetrics(cfg.Registry, cfg.Machines)
	s.routes = append(s.routes, s.opsRoutes()...)
	s.routes = append(s.routes, s.clusterOpsRoutes()...)
	s.routes = append(s.routes, s.identityRoutes()...)
	s.routes = append(s.routes, s.webSessionRoutes()...)
	s.routes = append(s.routes, s.socialRoutes()...)
	s.routes = append(s.routes, s.chatRoutes()...)
	s.routes = append(s.routes, s.payRoutes()...)
	s.routes = append(s.routes, s.merchantRoutes()...)
	s.routes = append(s.routes, s.rideRoutes()...)
	s.routes = append(s.routes, s.foodRoutes()...)
	s.routes = append(s.routes, s.oauthRoutes()...)
	s.routes = append(s.routes, s.miniappRoutes()...)
	for _, rt := range s.routes {
		if _, ok := s.gates[rt.feature]; !ok {
			s.gates[rt.feature] = make(chan struct{}, admissionLimit)
		}
		s.mux.Handle(rt.method+" "+rt.pattern, s.wrap(rt))
	}
	s.mux.Handle("/", http.HandlerFunc(s.notFound))
	return s
}

// admissionLimit is how many requests of one feature a node serves at once;
// beyond it the feature answers 503 at once instead of queueing, so one
// feature's overload cannot exhaust the node for the others.
const admissionLimit = 512

// Routes lists every served route as "METHOD /pattern".
func (s *Server) Routes() []string {
	out := make([]string, 0, len(s.routes))
	for _, rt := range s.routes {
		out = append(out, rt.method+" "+rt.pattern)
	}
	return out
}

func (s *Server) isolated() bool { return s.cfg.Isolated != nil && s.cfg.Isolated() }

// Isolation ends every event stream when the DC is cut off, so devices
// resume from their cursors on a DC that still receives events.
func (s *Server) Isolation(isolated bool) {
	if isolated {
		s.hub.each(func(c *eventConn) { c.drop() })
	}
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.cors(w, r) {
		return
	}
	s.mux.ServeHTTP(w, r)
}

var requestIDRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	c := &call{s: s, w: w, r: r, reqID: requestID(r)}
	w.Header().Set(HeaderRequestID, c.reqID)
	if s.cfg.App != nil && !isAPIPath(r.URL.Path) {
		s.cfg.App.ServeHTTP(w, r)
		return
	}
	// The mux answers a known path with the wrong method here too.
	for _, rt := range s.routes {
		if _, pat, _ := strings.Cut(rt.method+" "+rt.pattern, " "); pathMatches(pat, r.URL.Path) {
			w.Header().Set("Allow", rt.method)
			c.fail(apperr.New(apperr.MethodNotAllowed, "%s is not allowed here", r.Method))
			return
		}
	}
	c.fail(apperr.New(apperr.RouteNotFound, "no such endpoint: %s %s", r.Method, r.URL.Path))
}

func pathMatches(pattern, path string) bool {
	ps, xs := strings.Split(pattern, "/"), strings.Split(path, "/")
	if len(ps) != len(xs) {
		return false
	}
	for i := range ps {
		if !strings.HasPrefix(ps[i], "{") && ps[i] != xs[i] {
			return false
		}
	}
	return true
}

func requestID(r *http.Request) string {
	if id := r.Header.Get(HeaderRequestID); requestIDRE.MatchString(id) {
		return id
	}
	return cmdlog.NewID()
}

func (s *Server) wrap(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		c := &call{s: s, rt: rt, w: w, r: r, reqID: requestID(r)}
		w.Header().Set(HeaderRequestID, c.reqID)
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.log.Error("panic", "request_id", c.reqID, "route", rt.pattern, "panic", p, "stack", string(debug.Stack()))
				if !c.wrote {
					c.fail(apperr.New(apperr.Internal, "internal error"))
				}
			}
			s.metrics.observe(rt, c.status, time.Since(start))
		}()
		if err := c.run(); err != nil {
			c.fail(err)
		}
	})
}

// call is one request being served.
type call struct {
	s     *Server
	rt    route
	w     http.ResponseWriter
	r     *http.Request
	reqID string
	user  identity.Principal
	body  []byte

	wrote  bool
	status int
}

func (c *call) ctx() context.Context { return c.r.Context() }

func (c *call) run() error {
	if c.rt.auth {
		tok, ok := strings.CutPrefix(c.r.Header.Get("Authorization"), "Bearer ")
		if !ok && c.rt.long {
			// Browsers cannot set headers on a WebSocket; they offer the
			// token as a subprotocol (never in the URL, which logs keep).
			tok, ok = wsBearer(c.r)
		}
		if !ok || tok == "" {
			c.w.Header().Set("WWW-Authenticate", `Bearer realm="superapp"`)
			return apperr.New(apperr.Unauthenticated, "Authorization: Bearer <access token> is required")
		}
		p, err := c.s.cfg.Identity.Authenticate(c.ctx(), tok)
		if err != nil {
			c.w.Header().Set("WWW-Authenticate", `Bearer realm="superapp", error="invalid_token"`)
			return err
		}
		c.user = p
	}
	// Bodies are read only for callers who passed authentication.
	if c.rt.maxBody > 0 {
		b, err := io.ReadAll(http.MaxBytesReader(c.w, c.r.Body, c.rt.maxBody))
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return apperr.New(apperr.TooLarge, "request body exceeds %d bytes", c.rt.maxBody)
		}
		if err != nil {
			return apperr.New(apperr.Malformed, "cannot read request body")
		}
		c.body = b
	}
	if c.s.isolated() {
		if c.r.Method != http.MethodGet || c.rt.long {
			return &apperr.Error{Code: apperr.Isolated, Message: "this data center is cut off from the others and cannot commit writes; use another", RetryAfter: 1}
		}
		c.w.Header().Set(HeaderStale, "true")
	}
	if err := c.waitPosition(); err != nil {
		return err
	}
	// The feature's slots are taken only now: reading a slow body,
	// checking a token or waiting for a position holds none.
	if !c.rt.long {
		gate := c.s.gates[c.rt.feature]
		select {
		case gate <- struct{}{}:
			defer func() { <-gate }()
		default:
			return &apperr.Error{Code: apperr.Overloaded, Message: c.rt.feature + " is overloaded; retry shortly", RetryAfter: 1}
		}
	}
	c.s.injectedPanic(c.rt.feature)
	return c.rt.handle(c)
}

// waitPosition makes the request wait, bounded, until this node has applied
// every position the client presents: read-your-writes across DCs.
func (c *call) waitPosition() error {
	h := c.r.Header.Get(HeaderPosition)
	if h == "" {
		return nil
	}
	ps, err := cmdlog.ParsePositions(h)
	if err != nil {
		return &apperr.Error{Code: apperr.Invalid, Field: HeaderPosition, Message: err.Error()}
	}
	ctx, cancel := context.WithTimeout(c.ctx(), c.s.cfg.PositionWait)
	defer cancel()
	for stream, seq := range ps {
		m, ok := c.s.cfg.Machines[stream]
		if !ok {
			return &apperr.Error{Code: apperr.Invalid, Field: HeaderPosition, Message: fmt.Sprintf("unknown stream %q", stream)}
		}
		if err := m.WaitApplied(ctx, seq); err != nil {
			return &apperr.Error{Code: apperr.NotCaughtUp, Message: fmt.Sprintf("this data center has not yet applied %s:%d; retry or use another", stream, seq), RetryAfter: 1}
		}
	}
	return nil
}

// decode decodes the request body into v.
func (c *call) decode(v any) error {
	if err := decodeJSON(c.body, v); err != nil {
		return err
	}
	return nil
}

var idemKeyRE = regexp.MustCompile(`^[\x21-\x7e]{1,255}$`)

// write identifies this request for idempotency: the Idempotency-Key
// header, scoped to the caller, and a fingerprint of the request.
func (c *call) write() (cmdlog.Write, error) {
	key := c.r.Header.Get(HeaderIdempotency)
	if key == "" {
		return cmdlog.Write{}, nil
	}
	if !idemKeyRE.MatchString(key) {
		return cmdlog.Write{}, &apperr.Error{Code: apperr.Invalid, Field: HeaderIdempotency, Message: "Idempotency-Key must be 1-255 printable ASCII characters"}
	}
	scope := "anon"
	if c.user.UserID != "" {
		scope = c.user.UserID
	}
	return cmdlog.Write{
		ID:   scope + "/" + key,
		Hash: c.s.fingerprint(c.r.Method, c.r.URL.Path, c.user.SessionID, string(c.body)),
	}, nil
}

// fingerprint identifies a request for idempotency. It is keyed: the body
// may hold a password, and the fingerprint is kept in the log forever.
func (s *Server) fingerprint(parts ...string) string {
	m := hmac.New(sha256.New, s.cfg.FingerprintKey)
	for _, p := range parts {
		fmt.Fprintf(m, "%d:%s", len(p), p)
	}
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// written answers a write with its position token.
func (c *call) written(status int, res cmdlog.Result, body any) error {
	if res.Position.Stream != "" {
		ps := cmdlog.Positions{}
		ps.Add(res.Position)
		c.w.Header().Set(HeaderPosition, ps.String())
	}
	if res.Replayed {
		c.w.Header().Set(HeaderReplayed, "true")
	}
	return c.json(status, body)
}

func (c *call) json(status int, body any) error {
	buf, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("encode response: %w", err)
	}
	c.w.Header().Set("Content-Type", "application/json; charset=utf-8")
	c.w.WriteHeader(status)
	c.wrote, c.status = true, status
	_, _ = c.w.Write(append(buf, '\n'))
	return nil
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	Field     string `json:"field,omitempty"`
	RequestID string `json:"request_id"`
}

func (c *call) fail(err error) {
	if c.wrote {
		return
	}
	if errors.Is(err, context.Canceled) && c.r.Context().Err() != nil {
		c.status = 499 // client went away; nobody reads this answer
		return
	}
	e := apperr.From(err)
	if e.Code == apperr.Internal {
		c.s.log.Error("internal error", "request_id", c.reqID, "method", c.r.Method, "path", c.r.URL.Path, "err", err)
	}
	if e.RetryAfter > 0 {
		c.w.Header().Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	_ = c.json(apperr.Status(e.Code), errorBody{Error: errorDetail{Code: e.Code, Message: e.Message, Field: e.Field, RequestID: c.reqID}})
}

// clientAddr is the caller's address without port.
func (c *call) clientAddr() string {
	host, _, err := net.SplitHostPort(c.r.RemoteAddr)
	if err != nil {
		return c.r.RemoteAddr
	}
	return host
}

// opsAllowed reports whether the caller is an operator: it presents the
// ops token, or no token is configured, loopback callers may be operators
// (OpsLoopback) and it calls from loopback. Forwarding headers are never
// read for this.
func (c *call) opsAllowed() bool {
	if c.r.Header.Get("Superapp-Delivery-Id") != "" {
		// A webhook this node (or another) is delivering to a loopback
		// URL a developer registered: never an operator.
		return false
	}
	if c.s.cfg.OpsToken == "" {
		ip := net.ParseIP(c.clientAddr())
		return c.s.cfg.OpsLoopback && ip != nil && ip.IsLoopback()
	}
	tok, _ := strings.CutPrefix(c.r.Header.Get("Authorization"), "Bearer ")
	return subtle.ConstantTimeCompare([]byte(tok), []byte(c.s.cfg.OpsToken)) == 1
}

// opsTokenPresented reports whether the caller presents the configured ops
// token (never true when none is configured).
func (c *call) opsTokenPresented() bool {
	tok, _ := strings.CutPrefix(c.r.Header.Get("Authorization"), "Bearer ")
	return c.s.cfg.OpsToken != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(c.s.cfg.OpsToken)) == 1
}

// writeCtx bounds a write's wait for a quorum.
func (c *call) writeCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.ctx(), c.s.cfg.WriteTimeout)
}

func (s *Server) opsRoutes() []route {
	return []route{
		{method: "GET", pattern: "/healthz", feature: "ops", handle: func(c *call) error {
			return c.json(http.StatusOK, map[string]string{"status": "ok", "dc": s.cfg.DC})
		}},
		{method: "GET", pattern: "/readyz", feature: "ops", handle: func(c *call) error {
			ctx, cancel := context.WithTimeout(c.ctx(), 5*time.Second)
			defer cancel()
			rd := s.cfg.Ready(ctx)
			status, word := http.StatusOK, "ready"
			if !rd.Ready {
				status, word = http.StatusServiceUnavailable, "not_ready"
			}
			body := map[string]any{"status": word, "dc": s.cfg.DC}
			// A load balancer needs only the status; why, and where each
			// stream's leader is, is for operators.
			if c.opsAllowed() {
				body["reasons"], body["streams"], body["read_models"] = rd.Reasons, rd.Streams, rd.ReadModels
			}
			return c.json(status, body)
		}},
		{method: "GET", pattern: "/metrics", feature: "ops", handle: func(c *call) error {
			if !c.opsAllowed() {
				return apperr.New(apperr.Forbidden, "metrics are for operators: present the ops token")
			}
			promhttp.HandlerFor(s.cfg.Registry, promhttp.HandlerOpts{}).ServeHTTP(c.w, c.r)
			c.wrote, c.status = true, http.StatusOK
			return nil
		}},
		// Public, like DNS: clients need it before they log in.
		{method: "GET", pattern: "/v1/endpoints", feature: "ops", handle: func(c *call) error {
			var eps []Endpoint
			if s.cfg.Endpoints != nil {
				eps = s.cfg.Endpoints()
			}
			if eps == nil {
				eps = []Endpoint{}
			}
			return c.json(http.StatusOK, map[string]any{"dc": s.cfg.DC, "endpoints": eps})
		}},
		{method: "GET", pattern: "/v1/openapi.yaml", feature: "ops", handle: func(c *call) error {
			c.w.Header().Set("Content-Type", "application/yaml")
			c.w.WriteHeader(http.StatusOK)
			c.wrote, c.status = true, http.StatusOK
			_, _ = c.w.Write(s.cfg.OpenAPI)
			return nil
		}},
	}
}
