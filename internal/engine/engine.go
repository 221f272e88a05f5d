// Package engine adapts NATS JetStream to superapp: it runs the embedded
// server (alone, or as one data center of a stretched three-DC cluster),
// declares the streams, appends commands with quorum acknowledgement, and
// feeds each stream in order to the node's state machines.
//
// It must never acknowledge a write that JetStream has not committed, and
// never let a client reach the NATS ports without the cluster secret.
package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"superapp/internal/cmdlog"
)

// User is the NATS user every superapp node authenticates as; its password
// is the cluster secret.
const User = "superapp"

const routeUser = "superapp-route"

// Config configures the engine. Tests build it directly; main fills it from flags.
type Config struct {
	DC            string // data center name, also the embedded server's name
	DataDir       string // JetStream file store lives under DataDir/jetstream
	NATSListen    string // client port of the embedded server; "" keeps it in-process
	ClusterListen string // route port; set together with Peers
	// ClusterAdvertise is the route address other servers are told to use
	// for this one ("" = the listen address).
	ClusterAdvertise string
	Peers            []string // other DCs' route addresses
	NATSURL          string   // use this external NATS instead of an embedded server
	ClusterSecret    string   // password of the NATS user and of routes
	FsyncInterval    bool     // fsync on an interval instead of every write
	TLSCert          string
	TLSKey           string
	TLSCA            string
	Replicas         int // 0: 3 when clustered or external, 1 alone
	// LogRetention trims every feature stream's entries older than it
	// (0: keep everything).
	LogRetention time.Duration
	Logger       *slog.Logger
}

// Clustered reports whether the config joins other data centers.
func (c *Config) Clustered() bool { return len(c.Peers) > 0 }

// Engine is a connection to JetStream, with the embedded server if any.
type Engine struct {
	cfg      Config
	log      *slog.Logger
	srv      *server.Server
	nc       *nats.Conn
	js       jetstream.JetStream
	replicas int

	mu      sync.Mutex
	streams map[string]jetstream.Stream
	objects map[string]jetstream.ObjectStore

	faults     map[string]string // stream → injected fault
	quorum     quorumWatch
	quorumStop chan struct{}
	quorumDone chan struct{}

	rebuild     chan string // RebuildNeeded
	rebuildOnce sync.Once
}

// RebuildNeeded is told, once, why this node's state can no longer be
// brought up to date from the log (the stream was trimmed past the
// entries it still needs): only a restart, which loads the newest
// checkpoint, can.
func (e *Engine) RebuildNeeded() <-chan string { return e.rebuild }

// needRebuild reports why the node must rebuild its state.
func (e *Engine) needRebuild(why string) {
	e.rebuildOnce.Do(func() { e.rebuild <- why })
}

// Open starts the embedded server (unless NATSURL is set) and connects to it.
func Open(cfg Config) (*Engine, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.DC == "" {
		cfg.DC = "dc1"
	}
	e := &Engine{cfg: cfg, log: cfg.Logger.With("component", "engine"), streams: map[string]jetstream.Stream{}, objects: map[string]jetstream.ObjectStore{},
		rebuild: make(chan string, 1)}
	e.replicas = cfg.Replicas
	if e.replicas == 0 {
		e.replicas = 1
		if cfg.Clustered() || cfg.NATSURL != "" {
			e.replicas = 3
		}
	}
	opts := []nats.Option{
		nats.Name("superapp-" + cfg.DC),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
	}
	url := cfg.NATSURL
	if url == "" {
		srv, err := e.startServer()
		if err != nil {
			return nil, err
		}
		e.srv = srv
		opts = append(opts, nats.InProcessServer(srv))
	}
	e.watchQuorum()
	if cfg.ClusterSecret != "" {
		opts = append(opts, nats.UserInfo(User, cfg.ClusterSecret))
	}
	if cfg.NATSURL != "" && cfg.TLSCA != "" {
		opts = append(opts, nats.RootCAs(cfg.TLSCA))
		if cfg.TLSCert != "" {
			opts = append(opts, nats.ClientCert(cfg.TLSCert, cfg.TLSKey))
		}
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		e.Close()
		return nil, fmt.Errorf("connect to nats: %w", err)
	}
	e.nc = nc
	js, err := jetstream.New(nc)
	if err != nil {
		e.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	if err := e.watchElections(); err != nil {
		e.Close()
		return nil, fmt.Errorf("leader advisories: %w", err)
	}
	e.js = js
	return e, nil
}

func (e *Engine) startServer() (*server.Server, error) {
	cfg := e.cfg
	if cfg.ClusterSecret == "" {
		return nil, errors.New("embedded server needs a cluster secret")
	}
	o := &server.Options{
		ServerName:         cfg.DC,
		JetStream:          true,
		StoreDir:           filepath.Join(cfg.DataDir, "jetstream"),
		Tags:               []string{"dc:" + cfg.DC},
		JetStreamUniqueTag: "dc",
		SyncAlways:         !cfg.FsyncInterval,
		Users:              []*server.User{{Username: User, Password: cfg.ClusterSecret}},
		NoSigs:             true,
		MaxPayload:         8 << 20,
	}
	if cfg.FsyncInterval {
		o.SyncInterval = time.Second
	}
	if cfg.NATSListen == "" {
		if cfg.Clustered() {
			// A server that does not listen cannot route; keep the client
			// port private on loopback.
			o.Host, o.Port = "127.0.0.1", server.RANDOM_PORT
		} else {
			o.DontListen = true
		}
	} else {
		host, port, err := splitHostPort(cfg.NATSListen)
		if err != nil {
			return nil, fmt.Errorf("--nats-listen: %w", err)
		}
		o.Host, o.Port = host, port
	}
	if cfg.TLSCert != "" {
		tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: cfg.TLSCert, KeyFile: cfg.TLSKey, CaFile: cfg.TLSCA})
		if err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
		o.TLSConfig = tc
		o.TLS = true
	}
	if cfg.Clustered() {
		if cfg.ClusterListen == "" {
			return nil, errors.New("--cluster-listen is required with --peers")
		}
		host, port, err := splitHostPort(cfg.ClusterListen)
		if err != nil {
			return nil, fmt.Errorf("--cluster-listen: %w", err)
		}
		o.Cluster.Name = "superapp"
		o.Cluster.Host, o.Cluster.Port = host, port
		o.Cluster.Username, o.Cluster.Password = routeUser, cfg.ClusterSecret
		o.Cluster.Advertise = cfg.ClusterAdvertise
		// A link whose packets vanish is noticed after two missed pings.
		o.Cluster.PingInterval = time.Second
		if cfg.TLSCert != "" {
			tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: cfg.TLSCert, KeyFile: cfg.TLSKey, CaFile: cfg.TLSCA, Verify: cfg.TLSCA != ""})
			if err != nil {
				return nil, fmt.Errorf("cluster tls: %w", err)
			}
			// A route is both client and server: trust the same CA both ways.
			tc.RootCAs = tc.ClientCAs
			o.Cluster.TLSConfig = tc
			o.Cluster.TLSTimeout = 2
		}
		for _, p := range cfg.Peers {
			u, err := url.Parse("nats-route://" + strings.TrimSpace(p))
			if err != nil {
				return nil, fmt.Errorf("--peers %q: %w", p, err)
			}
			u.User = url.UserPassword(routeUser, cfg.ClusterSecret)
			o.Routes = append(o.Routes, u)
		}
	}
	if err := os.MkdirAll(o.StoreDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	setRaftTiming()
	srv, err := server.NewServer(o)
	if err != nil {
		return nil, fmt.Errorf("nats server: %w", err)
	}
	srv.SetLoggerV2(&natsLogger{log: e.cfg.Logger.With("component", "nats")}, false, false, false)
	srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		return nil, errors.New("nats server did not start")
	}
	return srv, nil
}

func splitHostPort(addr string) (string, int, error) {
	host, ps, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(ps)
	if err != nil {
		return "", 0, fmt.Errorf("port %q: %w", ps, err)
	}
	if host == "" {
		host = "0.0.0.0"
	}
	if port == 0 {
		port = server.RANDOM_PORT // ":0" means any free port, as with net.Listen
	}
	return host, port, nil
}

// Close drops the connection and shuts the embedded server down.
func (e *Engine) Close() {
	if e.quorumStop != nil {
		close(e.quorumStop)
		<-e.quorumDone
		e.quorumStop = nil
	}
	if e.nc != nil {
		e.nc.Close()
	}
	if e.srv != nil {
		e.srv.Shutdown()
		e.srv.WaitForShutdown()
	}
}

// ClusterAddr is the embedded server's route address, "" when not clustered.
func (e *Engine) ClusterAddr() string {
	if e.srv == nil || e.srv.ClusterAddr() == nil {
		return ""
	}
	return e.srv.ClusterAddr().String()
}

// Replicas is the replica count of every stream.
func (e *Engine) Replicas() int { return e.replicas }

// NATSAddr is the embedded server's client address, "" when in-process only.
func (e *Engine) NATSAddr() string {
	if e.srv == nil || e.srv.Addr() == nil {
		return ""
	}
	return e.srv.Addr().String()
}

// EnsureStreams creates or updates every stream in Streams and every
// object store in ObjectStores, retrying until ctx ends: in a fresh
// cluster, R3 placement waits for all three DCs. They are declared at once:
// a new replicated stream takes seconds to elect its first leader.
func (e *Engine) EnsureStreams(ctx context.Context) error {
	// JetStream answers API requests only once its meta layer has a
	// leader; a request sent before that may get no answer at all.
	for {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := e.js.AccountInfo(actx)
		cancel()
		if err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("jetstream not available: %w", err)
		case <-time.After(200 * time.Millisecond):
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(Streams)+len(ObjectStores))
	declare := func(what string, create func(context.Context) error) {
		defer wg.Done()
		for attempt := 0; ; attempt++ {
			// A request the meta layer drops (it is still electing after a
			// restart) is asked again soon: start-up waits on this.
			actx, cancel := context.WithTimeout(ctx, min(time.Duration(attempt+1)*time.Second, 5*time.Second))
			err := create(actx)
			cancel()
			if err == nil {
				return
			}
			if attempt%10 == 0 {
				e.log.Info("waiting to declare "+what, "err", err)
			}
			select {
			case <-ctx.Done():
				errs <- fmt.Errorf("declare %s: %w", what, err)
				return
			case <-time.After(500 * time.Millisecond):
			}
		}
	}
	for _, spec := range Streams {
		wg.Add(1)
		go declare("stream "+spec.Name, func(ctx context.Context) error {
			s, err := e.js.CreateOrUpdateStream(ctx, spec.config(e.replicas, e.cfg.LogRetention))
			if err == nil {
				e.mu.Lock()
				e.streams[spec.Name] = s
				e.mu.Unlock()
			}
			return err
		})
	}
	for _, spec := range ObjectStores {
		wg.Add(1)
		go declare("object store "+spec.Bucket, func(ctx context.Context) error {
			o, err := e.js.CreateOrUpdateObjectStore(ctx, spec.config(e.replicas))
			if err == nil {
				e.mu.Lock()
				e.objects[spec.Bucket] = o
				e.mu.Unlock()
			}
			return err
		})
	}
	for name, create := range map[string]func(context.Context) (jetstream.KeyValue, error){endpointsBucket: e.endpointsKV, opsBucket: e.opsKV} {
		wg.Add(1)
		go declare("bucket "+name, func(ctx context.Context) error {
			_, err := create(ctx)
			return err
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func (e *Engine) objectStore(ctx context.Context, bucket string) (jetstream.ObjectStore, error) {
	e.mu.Lock()
	o, ok := e.objects[bucket]
	e.mu.Unlock()
	if ok {
		return o, nil
	}
	o, err := e.js.ObjectStore(ctx, bucket)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	e.objects[bucket] = o
	e.mu.Unlock()
	return o, nil
}

// PutObject stores r under name in bucket, replicated like every stream,
// and returns once every chunk is committed.
func (e *Engine) PutObject(ctx context.Context, bucket, name, contentType string, r io.Reader) error {
	o, err := e.objectStore(ctx, bucket)
	if err != nil {
		return err
	}
	_, err = o.Put(ctx, jetstream.ObjectMeta{Name: name, Headers: nats.Header{"Content-Type": {contentType}},
		Opts: &jetstream.ObjectMetaOptions{ChunkSize: objectChunkSize}}, r)
	return err
}

// objectChunkSize is the size of an object's chunks. nats.go sends up to
// 4,000 chunks before it waits for an answer; at its default 128 KiB that
// is 500 MiB, and a stream leader queues at most 128 MiB of incoming
// messages before it refuses them ("too many requests"): a checkpoint of
// 1.6 GiB failed so while a wiped DC caught up and slowed the leader. At
// 16 KiB at most 62.5 MiB are under way.
const objectChunkSize = 16 << 10

// GetObject opens the object stored under name in bucket.
func (e *Engine) GetObject(ctx context.Context, bucket, name string) (io.ReadCloser, error) {
	o, err := e.objectStore(ctx, bucket)
	if err != nil {
		return nil, err
	}
	return o.Get(ctx, name)
}

// Append publishes data to subject and returns its stream sequence once a
// quorum has stored it. It retries (same msgID) through leader elections
// until ctx ends.
func (e *Engine) Append(ctx context.Context, subject, msgID string, data []byte) (uint64, error) {
	if e.streamFault(subject) == FaultStall {
		<-ctx.Done()
		return 0, fmt.Errorf("append %s: %w (stream stalled by an injected fault)", subject, ctx.Err())
	}
	stream := streamOfSubject(subject)
	backoff := 50 * time.Millisecond
	for {
		if e.Isolated() {
			return 0, fmt.Errorf("append %s: %w", subject, e.isolationError())
		}
		// An attempt in flight ends at once when the node is cut off (its
		// outcome is unknown either way, and the client's retry with the
		// same id elsewhere settles it) or the stream elects a new leader
		// (the old one will not answer; the same message id is sent again,
		// at once: the new leader is there to take it).
		actx, cancel := context.WithTimeout(ctx, 3*time.Second)
		elected, isolation := e.electionOrIsolation(stream)
		go func() {
			select {
			case <-elected:
				cancel()
			case <-isolation:
				cancel()
			case <-actx.Done():
			}
		}()
		ack, err := e.js.Publish(actx, subject, data, jetstream.WithMsgID(msgID))
		cancel()
		if err == nil {
			return ack.Sequence, nil
		}
		if ctx.Err() != nil {
			return 0, fmt.Errorf("append %s: %w (last: %v)", subject, ctx.Err(), err)
		}
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamMessageExceedsMaximum ||
			errors.Is(err, nats.ErrMaxPayload) {
			return 0, fmt.Errorf("append %s: %w (%v)", subject, cmdlog.ErrTooLarge, err)
		}
		e.log.Debug("append retry", "subject", subject, "err", err)
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("append %s: %w (last: %v)", subject, ctx.Err(), err)
		case <-elected:
			// Elected during the attempt (the channel is closed already)
			// or during the wait: a leader to send to, at once.
			backoff = 50 * time.Millisecond
		case <-time.After(backoff):
			// Stay close behind a leader election: it ends at an unknown
			// moment.
			backoff = min(backoff*2, 200*time.Millisecond)
		}
	}
}

func (e *Engine) stream(ctx context.Context, name string) (jetstream.Stream, error) {
	e.mu.Lock()
	s, ok := e.streams[name]
	e.mu.Unlock()
	if ok {
		return s, nil
	}
	s, err := e.js.Stream(ctx, name)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	e.streams[name] = s
	e.mu.Unlock()
	return s, nil
}

// Broadcast publishes an ephemeral signal (typing, presence) to every
// node. It is not stored: a node that is down misses it.
func (e *Engine) Broadcast(subject string, data []byte) {
	_ = e.nc.Publish(subject, data)
}

// Listen calls fn with every ephemeral signal on subject, until Close.
func (e *Engine) Listen(subject string, fn func(data []byte)) error {
	_, err := e.nc.Subscribe(subject, func(m *nats.Msg) { fn(m.Data) })
	return err
}

// StreamStatus is what an operator needs to know of one stream.
type StreamStatus struct {
	Name     string   `json:"name"`
	Leader   string   `json:"leader"`
	Replicas []string `json:"replicas"`
	LastSeq  uint64   `json:"last_seq"`
	Error    string   `json:"error,omitempty"`
}

// Status asks the cluster for every stream's leader and replicas, all at
// once; a stream that does not answer within a second says so.
func (e *Engine) Status(ctx context.Context) []StreamStatus {
	out := make([]StreamStatus, len(Streams))
	var wg sync.WaitGroup
	for i, spec := range Streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := StreamStatus{Name: spec.Name}
			sctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			info, err := e.streamInfo(sctx, spec.Name)
			if err != nil {
				st.Error = err.Error()
			} else {
				st.LastSeq = info.State.LastSeq
				if info.Cluster != nil {
					st.Leader = info.Cluster.Leader
					for _, r := range info.Cluster.Replicas {
						st.Replicas = append(st.Replicas, r.Name)
					}
				}
			}
			out[i] = st
		}()
	}
	wg.Wait()
	return out
}

func (e *Engine) streamInfo(ctx context.Context, name string) (*jetstream.StreamInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	s, err := e.stream(ctx, name)
	if err != nil {
		return nil, err
	}
	return s.Info(ctx)
}

// Ready returns nil when this node can commit and serve: connected, every
// stream has a leader, and (embedded) this server's replica of every
// stream is healthy and not catching up.
func (e *Engine) Ready(ctx context.Context) error {
	if !e.nc.IsConnected() {
		return errors.New("not connected to nats")
	}
	if e.srv != nil {
		if hs := e.srv.Healthz(&server.HealthzOptions{}); hs.Status != "ok" {
			return fmt.Errorf("jetstream: %s", hs.Error)
		}
	}
	for _, spec := range Streams {
		info, err := e.streamInfo(ctx, spec.Name)
		if err != nil {
			return fmt.Errorf("stream %s: %w", spec.Name, err)
		}
		if e.replicas > 1 && (info.Cluster == nil || info.Cluster.Leader == "") {
			return fmt.Errorf("stream %s: no leader", spec.Name)
		}
		if e.srv != nil && info.Cluster != nil && info.Cluster.Leader != e.cfg.DC {
			found := false
			for _, r := range info.Cluster.Replicas {
				if r.Name == e.cfg.DC {
					found = true
					if !r.Current || r.Offline {
						return fmt.Errorf("stream %s: local replica not current (lag %d)", spec.Name, r.Lag)
					}
				}
			}
			if !found && e.replicas > 1 {
				return fmt.Errorf("stream %s: no local replica", spec.Name)
			}
		}
	}
	return nil
}

type natsLogger struct{ log *slog.Logger }

func (l *natsLogger) Noticef(f string, v ...any) { l.log.Info(fmt.Sprintf(f, v...)) }
func (l *natsLogger) Warnf(f string, v ...any)   { l.log.Warn(fmt.Sprintf(f, v...)) }
func (l *natsLogger) Fatalf(f string, v ...any)  { l.log.Error(fmt.Sprintf(f, v...)) }
func (l *natsLogger) Errorf(f string, v ...any) {
	msg := fmt.Sprintf(f, v...)
	if strings.Contains(msg, "Error trying to connect to route") {
		// A lost DC's route is retried every second; its loss is logged once already.
		l.log.Debug(msg)
		return
	}
	l.log.Error(msg)
}
func (l *natsLogger) Debugf(f string, v ...any) { l.log.Debug(fmt.Sprintf(f, v...)) }
func (l *natsLogger) Tracef(f string, v ...any) {}

var _ cmdlog.Appender = (*Engine)(nil)
