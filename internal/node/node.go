// Package node wires one superapp node: the engine, every feature service,
// the stream followers that build the read models, and the HTTP gateway.
// It must never report ready before every read model has caught up with
// its stream, so a load balancer never sends traffic to a rebuilding DC.
package node

import (
	"context"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"superapp/api"
	"superapp/internal/chat"
	"superapp/internal/cmdlog"
	"superapp/internal/engine"
	"superapp/internal/food"
	"superapp/internal/httpapi"
	"superapp/internal/identity"
	"superapp/internal/miniapp"
	"superapp/internal/miniapp/webhookhttp"
	"superapp/internal/oauth"
	"superapp/internal/oidcop"
	"superapp/internal/pay"
	"superapp/internal/rides"
	"superapp/internal/social"
	"superapp/internal/store"
	"superapp/web"
)

// Config configures a node.
type Config struct {
	Engine   engine.Config
	HTTPAddr string
	// PublicURL is this DC's HTTP endpoint as clients reach it, announced
	// to every DC for GET /v1/endpoints ("" = http://<HTTPAddr>).
	PublicURL string
	OpsToken  string
	// OIDCIssuer is the OpenID Provider's issuer URL, the same on every DC
	// and ending in /oidc ("" = PublicURL + "/oidc", right for one node).
	OIDCIssuer string
	// OIDCConsentURL is the web app's consent page ("" = the issuer's
	// origin + /oauth/consent).
	OIDCConsentURL string
	// WriteTimeout bounds how long a write waits for a quorum (default 15s).
	WriteTimeout time.Duration
	// BankRail is the bank of top-ups and withdrawals (nil: the simulator).
	BankRail pay.BankRail
	// Webhooks is the mini-app webhook retry schedule (zero: the default).
	Webhooks miniapp.Retry
	// WebhookLoopback lets webhooks go to loopback URLs: for development
	// only (otherwise a mini-app could reach services of the node's host).
	WebhookLoopback bool
	// CacheSize bounds the state store's block cache in bytes (0: the
	// store's default).
	CacheSize int64
	// CheckpointInterval is how often the node writes a checkpoint of its
	// state store (0: DefaultCheckpointInterval; shorter with a log
	// retention).
	CheckpointInterval time.Duration
	Logger             *slog.Logger
	Now                func() time.Time
}

// Node is one running superapp node.
type Node struct {
	cfg Config
	log *slog.Logger

	eng      *engine.Engine
	db       *store.DB
	identity *identity.Service
	social   *social.Service
	chat     *chat.Service
	pay      *pay.Service
	rides    *rides.Service
	food     *food.Service
	oauth    *oauth.Service
	oidc     *oidcop.Provider
	miniapp  *miniapp.Service
	machines []*cmdlog.Machine
	api      *httpapi.Server
	httpSrv  *http.Server
	ln       net.Listener

	bg      context.Context // the followers' life: until Close
	stopBg  context.CancelFunc
	started atomic.Bool
	// restoredFrom is the checkpoint the store was loaded from at start,
	// restoreProblem why it could not be brought up to date (yet).
	restoredFrom   atomic.Pointer[engine.CheckpointInfo]
	restoreProblem atomic.Pointer[error]
	checkpointMu   sync.Mutex
	endpoints      atomic.Pointer[[]httpapi.Endpoint]
	evacuated      atomic.Pointer[map[string]bool]
	wg             sync.WaitGroup
}

// opsLoopback reports whether loopback callers may be operators without
// a token: only on a node on its own whose HTTP address is loopback alone.
func opsLoopback(cfg Config) bool {
	if cfg.OpsToken != "" || cfg.Engine.Clustered() || cfg.Engine.NATSURL != "" {
		return false
	}
	host, _, err := net.SplitHostPort(cfg.HTTPAddr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// New validates cfg, opens the engine and binds the HTTP address.
func New(cfg Config) (*Node, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.HTTPAddr == "" {
		cfg.HTTPAddr = ":8080"
	}
	if err := checkIssuer(cfg.OIDCIssuer); err != nil {
		return nil, err
	}
	if cfg.OpsToken == "" && !opsLoopback(cfg) {
		cfg.Logger.Warn("no --ops-token: /ops/*, /metrics and the detail of /readyz answer nobody on a clustered node or one listening beyond loopback; set --ops-token")
	}
	if cfg.OIDCIssuer == "" && cfg.Engine.Clustered() {
		cfg.Logger.Warn("no --oidc-issuer: Login with superapp names this DC as its issuer, so a mini-app's login cannot move between DCs; give every DC the same --oidc-issuer")
	}
	ec := &cfg.Engine
	if ec.DataDir == "" {
		ec.DataDir = "data"
	}
	ec.Logger = cfg.Logger
	if ec.ClusterSecret == "" {
		switch {
		case ec.Clustered():
			return nil, errors.New("--cluster-secret is required with --peers: the cluster ports accept only superapp nodes")
		case ec.NATSListen != "":
			return nil, errors.New("--cluster-secret is required with --nats-listen")
		case ec.NATSURL != "":
			return nil, errors.New("--cluster-secret is required with --nats-url")
		}
		secret, err := localSecret(ec.DataDir)
		if err != nil {
			return nil, err
		}
		ec.ClusterSecret = secret
	}
	n := &Node{cfg: cfg, log: cfg.Logger}
	n.bg, n.stopBg = context.WithCancel(context.Background())
	eng, err := engine.Open(*ec)
	if err != nil {
		return nil, err
	}
	n.eng = eng
	db, err := store.Open(filepath.Join(ec.DataDir, "state"), store.Options{CacheSize: cfg.CacheSize, Logger: cfg.Logger})
	if err != nil {
		eng.Close()
		return nil, err
	}
	n.db = db
	n.identity = identity.New(identity.Config{Log: eng, Store: db, Secret: []byte(ec.ClusterSecret), Now: cfg.Now, Logger: cfg.Logger})
	n.social = social.New(social.Config{Log: eng, Store: db, Now: cfg.Now, Logger: cfg.Logger, UserExists: func(id string) bool {
		_, ok := n.identity.State().User(id)
		return ok
	}})
	n.chat = chat.New(chat.Config{Log: eng, Store: db, Now: cfg.Now, Logger: cfg.Logger,
		UserExists: func(id string) bool {
			_, ok := n.identity.State().User(id)
			return ok
		},
		Blocked: n.social.State().Blocked,
		Blobs:   eng,
	})
	// The bank rail is the simulator until a real bank's adapter exists.
	rail := cfg.BankRail
	if rail == nil {
		rail = pay.NewSimulatedBank(100_000_000)
	}
	n.pay = pay.New(pay.Config{Log: eng, Store: db, Now: cfg.Now, Logger: cfg.Logger, Rail: rail, DC: ec.DC})
	n.rides = rides.New(rides.Config{Log: eng, Store: db, Pay: n.pay, DC: ec.DC, Secret: []byte(ec.ClusterSecret), Signals: eng, Now: cfg.Now, Logger: cfg.Logger})
	n.oauth = oauth.New(oauth.Config{Log: eng, Store: db, Secret: []byte(ec.ClusterSecret), Now: cfg.Now, Logger: cfg.Logger})
	n.machines = []*cmdlog.Machine{n.identity.Machine(), n.social.Machine(), n.chat.Machine(), n.pay.Machine()}
	byName := map[string]*cmdlog.Machine{}
	for _, m := range n.machines {
		byName[m.Name()] = m
	}
	fpKey, err := hkdf.Key(sha256.New, []byte(ec.ClusterSecret), nil, "superapp idempotency fingerprint v1", 32)
	if err != nil {
		eng.Close()
		_ = db.Close()
		return nil, err
	}
	n.machines = append(n.machines, n.oauth.Machine())
	byName[n.oauth.Machine().Name()] = n.oauth.Machine()
	n.machines = append(n.machines, n.rides.Machine())
	byName[n.rides.Machine().Name()] = n.rides.Machine()
	n.food = food.New(food.Config{Log: eng, Store: db, Pay: n.pay, DC: ec.DC, Secret: []byte(ec.ClusterSecret), Now: cfg.Now, Logger: cfg.Logger})
	n.machines = append(n.machines, n.food.Machine())
	byName[n.food.Machine().Name()] = n.food.Machine()
	n.miniapp = miniapp.New(miniapp.Config{Log: eng, Store: db, OAuth: n.oauth, Pay: n.pay, Chat: n.chat, DC: ec.DC, Now: cfg.Now,
		Logger: cfg.Logger, Retry: cfg.Webhooks, Sender: webhookhttp.New(cfg.Webhooks.WithDefaults().Timeout, cfg.WebhookLoopback)})
	n.machines = append(n.machines, n.miniapp.Machine())
	byName[n.miniapp.Machine().Name()] = n.miniapp.Machine()
	// Codes and mini-app access tokens are encrypted with this key: the
	// same on every DC, so any DC opens what another issued.
	oidcKey, err := hkdf.Key(sha256.New, []byte(ec.ClusterSecret), nil, "superapp oidc crypto v1", 32)
	if err == nil {
		n.oidc, err = oidcop.New(oidcop.Config{OAuth: n.oauth, Users: n.identity.State(), Issuer: n.OIDCIssuer,
			ConsentURL: cfg.OIDCConsentURL, CryptoKey: [32]byte(oidcKey), Logger: cfg.Logger})
	}
	if err != nil {
		eng.Close()
		_ = db.Close()
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	registerStoreMetrics(reg, db)
	reg.MustRegister(newLeaderChanges(eng))
	n.api = httpapi.New(httpapi.Config{
		DC: ec.DC, Identity: n.identity, Social: n.social, Chat: n.chat, Pay: n.pay, Machines: byName,
		OAuth: n.oauth, OIDC: n.oidc, MiniApp: n.miniapp,
		Rides: n.rides,
		Food:  n.food,
		Typing: func(conv, user string) {
			b, _ := json.Marshal(typing{ConversationID: conv, UserID: user})
			n.eng.Broadcast(typingSubject, b)
		},
		FingerprintKey: fpKey,
		Isolated:       eng.Isolated,
		WriteTimeout:   cfg.WriteTimeout,
		Ops:            n,
		Endpoints:      n.Endpoints,
		Ready:          n.Ready, OpenAPI: api.OpenAPI, OpsToken: cfg.OpsToken, OpsLoopback: opsLoopback(cfg), Logger: cfg.Logger, Registry: reg,
		// The web app may call every DC: it moves to another when its own fails.
		App: web.Handler(func() []string { return n.api.AppOrigins() }),
	})
	n.chat.State().Notify(n.api.Hub().Notify)
	eng.OnIsolation(n.api.Isolation)
	if err := eng.Listen(typingSubject, func(data []byte) {
		var t typing
		if json.Unmarshal(data, &t) == nil {
			n.api.DeliverTyping(t.ConversationID, t.UserID)
		}
	}); err != nil {
		eng.Close()
		_ = db.Close()
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		eng.Close()
		_ = db.Close()
		return nil, fmt.Errorf("listen %s: %w", cfg.HTTPAddr, err)
	}
	n.ln = ln
	n.httpSrv = &http.Server{
		Handler:           n.api,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second, // a hijacked WebSocket has its deadlines cleared
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
	}
	return n, nil
}

// typingSubject carries typing indicators between nodes: ephemeral, never
// stored.
const typingSubject = "superapp.ephemeral.typing"

type typing struct {
	ConversationID string `json:"conversation_id"`
	UserID         string `json:"user_id"`
}

// localSecret is the secret of a node that runs alone with NATS kept
// in-process: made once, kept in the data directory.
func localSecret(dir string) (string, error) {
	path := filepath.Join(dir, "node.secret")
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) >= 32 {
		return strings.TrimSpace(string(b)), nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("data dir: %w", err)
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	s := hex.EncodeToString(b)
	if err := os.WriteFile(path, []byte(s+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write node secret: %w", err)
	}
	return s, nil
}

// OIDCIssuer is the OpenID Provider's issuer URL.
func (n *Node) OIDCIssuer() string {
	if n.cfg.OIDCIssuer != "" {
		return strings.TrimRight(n.cfg.OIDCIssuer, "/")
	}
	return n.PublicURL() + oidcop.Prefix
}

// checkIssuer refuses an issuer the gateway cannot serve: the provider's
// endpoints are under /oidc, and discovery is at <issuer>/.well-known/.
func checkIssuer(issuer string) error {
	if issuer == "" {
		return nil
	}
	u, err := url.Parse(issuer)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" ||
		!strings.HasSuffix(strings.TrimRight(u.Path, "/"), oidcop.Prefix) {
		return fmt.Errorf("--oidc-issuer %q: want an http(s) URL whose path ends in %s, e.g. https://id.example.com%s", issuer, oidcop.Prefix, oidcop.Prefix)
	}
	return nil
}

// HTTPAddr is the bound HTTP address.
func (n *Node) HTTPAddr() string { return n.ln.Addr().String() }

// PublicURL is the endpoint this DC announces.
func (n *Node) PublicURL() string {
	if n.cfg.PublicURL != "" {
		return strings.TrimRight(n.cfg.PublicURL, "/")
	}
	host, port, _ := net.SplitHostPort(n.HTTPAddr())
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// Endpoints lists every DC's announced endpoint; until the list is read
// from the cluster, only this DC's.
func (n *Node) Endpoints() []httpapi.Endpoint {
	if eps := n.endpoints.Load(); eps != nil {
		return *eps
	}
	return []httpapi.Endpoint{{DC: n.cfg.Engine.DC, URL: n.PublicURL()}}
}

// API is the HTTP gateway.
func (n *Node) API() *httpapi.Server { return n.api }

// Engine is the node's engine.
func (n *Node) Engine() *engine.Engine { return n.eng }

// Rides is the taxi service (superapp bench rides drives it in-process).
func (n *Node) Rides() *rides.Service { return n.rides }

// Pay is the payments service (superapp bench rides funds its riders).
func (n *Node) Pay() *pay.Service { return n.pay }

// Run serves until ctx ends: HTTP at once (healthz answers while the node
// catches up), then streams, followers and token keys.
func (n *Node) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		if err := n.httpSrv.Serve(n.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- err
		}
	}()
	n.log.Info("http listening", "addr", n.HTTPAddr(), "replicas", n.eng.Replicas())
	if err := n.start(ctx); err != nil && ctx.Err() == nil {
		return err
	}
	select {
	case <-ctx.Done():
	case err := <-errc:
		return fmt.Errorf("http: %w", err)
	case why := <-n.eng.RebuildNeeded():
		return &RebuildError{Reason: why}
	}
	return nil
}

// RebuildError ends Run when this node's state can only be rebuilt by a
// start (which loads the newest checkpoint): the log no longer holds what
// it needs next. superapp serve then restarts the node in place.
type RebuildError struct{ Reason string }

func (e *RebuildError) Error() string { return "state must be rebuilt from a checkpoint: " + e.Reason }

func (n *Node) start(ctx context.Context) error {
	// The followers and watchers outlive ctx: on a graceful stop, requests
	// in flight still see their writes applied. Close stops them.
	bg := n.bg
	if err := n.eng.EnsureStreams(ctx); err != nil {
		return err
	}
	// The node is ready only once it knows the other DCs and whether it
	// is evacuated.
	endpointsKnown, evacuationKnown := make(chan struct{}), make(chan struct{})
	n.wg.Add(2)
	go func() {
		defer n.wg.Done()
		n.keepEvacuated(bg, sync.OnceFunc(func() { close(evacuationKnown) }))
	}()
	go func() {
		defer n.wg.Done()
		first := sync.OnceFunc(func() { close(endpointsKnown) })
		n.eng.AnnounceEndpoints(bg, engine.Endpoint{DC: n.cfg.Engine.DC, URL: n.PublicURL()}, func(all []engine.Endpoint) {
			eps := make([]httpapi.Endpoint, len(all))
			for i, ep := range all {
				eps[i] = httpapi.Endpoint(ep)
			}
			n.endpoints.Store(&eps)
			first()
		})
	}()
	for _, known := range []chan struct{}{endpointsKnown, evacuationKnown} {
		select {
		case <-known:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := n.restoreState(ctx); err != nil {
		return err
	}
	n.restoreProblem.Store(nil)
	for _, m := range n.machines {
		if err := m.Restore(); err != nil {
			return fmt.Errorf("restore %s: %w", m.Name(), err)
		}
		if m.Applied() > 0 {
			n.log.Info("read model restored from the state store", "stream", m.Name(), "applied", m.Applied())
		}
	}
	for _, m := range n.machines {
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			for bg.Err() == nil {
				if err := n.eng.Follow(bg, m); err != nil && bg.Err() == nil {
					n.log.Error("follow stopped; restarting", "stream", m.Name(), "err", err)
					select {
					case <-bg.Done():
					case <-time.After(time.Second):
					}
				}
			}
		}()
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		n.pay.Reconcile(bg, n.cfg.Engine.DC)
	}()
	if err := n.rides.Start(bg); err != nil {
		return err
	}
	if err := n.food.Start(bg); err != nil {
		return err
	}
	// Token keys come from the log: wait until identity has caught up.
	for {
		if ok, _ := n.identity.Machine().CaughtUp(); ok {
			kctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			err := n.identity.EnsureKeys(kctx)
			cancel()
			if err == nil {
				break
			}
			n.log.Warn("token keys not ready", "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	// So do the ID-token keys of Login with superapp.
	for {
		if ok, _ := n.oauth.Machine().CaughtUp(); ok {
			kctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			err := n.oauth.EnsureKeys(kctx)
			cancel()
			if err == nil {
				break
			}
			n.log.Warn("oauth keys not ready", "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	// Webhooks are delivered once every read model they read is current.
	n.miniapp.Start()
	n.started.Store(true)
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		n.keepCheckpointing(bg)
	}()
	n.log.Info("node started")
	return nil
}

// Ready reports whether this node can serve reads and writes with current data.
func (n *Node) Ready(ctx context.Context) httpapi.Readiness {
	var reasons []string
	if !n.started.Load() {
		reasons = append(reasons, "starting: streams, read models or token keys not ready")
	}
	if p := n.restoreProblem.Load(); p != nil {
		reasons = append(reasons, "state store: "+(*p).Error())
	}
	if err := n.db.Failed(); err != nil {
		reasons = append(reasons, "state store broken (rebuilt at the next start): "+err.Error())
	}
	if n.Evacuated(n.cfg.Engine.DC) {
		reasons = append(reasons, "evacuated by an operator: serving, but leading no stream; undo with superapp evacuate --undo")
	}
	if n.eng.Isolated() {
		reasons = append(reasons, fmt.Sprintf("isolated: this DC sees only %v of the other DCs and cannot commit writes", n.eng.PeersSeen()))
	} else if err := n.eng.Ready(ctx); err != nil {
		reasons = append(reasons, err.Error())
	}
	for _, m := range n.machines {
		if ok, why := m.CaughtUp(); !ok {
			reasons = append(reasons, "catching up: "+why)
		}
	}
	rd := httpapi.Readiness{Ready: len(reasons) == 0, Reasons: reasons, ReadModels: n.ReadModels()}
	if !n.eng.Isolated() {
		// Cut off, nobody can answer for the streams.
		rd.Streams = n.eng.Status(ctx)
	}
	return rd
}

// ReadModels reports each read model's position and state digest, so that
// operators and drills can compare DCs.
func (n *Node) ReadModels() []httpapi.ReadModel {
	out := make([]httpapi.ReadModel, 0, len(n.machines))
	for _, m := range n.machines {
		rm := httpapi.ReadModel{Stream: m.Name()}
		if m == n.pay.Machine() {
			// One lock for all three, so they describe the same position.
			n.pay.State().Inspect(func(applied uint64, digest, state string, check error) {
				rm.Applied, rm.Digest, rm.State, rm.Invariants = applied, digest, state, "ok"
				if check != nil {
					rm.Invariants = check.Error()
				}
			}, m.Digest)
		} else {
			rm.Applied, rm.Digest = m.Digest()
		}
		out = append(out, rm)
	}
	return out
}

// Close stops serving and shuts the engine down.
func (n *Node) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n.api.Close()
	_ = n.httpSrv.Shutdown(ctx)
	n.stopBg()
	n.miniapp.Close()
	n.identity.Close()
	n.social.Close()
	n.chat.Close()
	n.rides.Close()
	n.food.Close()
	n.pay.Close()
	n.oauth.Close()
	n.eng.Close()
	n.wg.Wait()
	if err := n.db.Close(); err != nil {
		n.log.Warn("close state store", "err", err)
	}
}
