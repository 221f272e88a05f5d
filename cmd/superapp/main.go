// Command superapp runs a superapp node (serve).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/dustin/go-humanize"

	"superapp/internal/node"
)

const usage = `superapp: a super app platform that survives the loss of a data center.

Usage:
  superapp serve [flags]    run one node (alone, or as one of three DCs)
  superapp cluster [flags]  run three DCs on this machine, until Ctrl-C
  superapp status [flags]   each DC, every stream's leader and lag, each feature's health
  superapp evacuate --dc X  move every stream leader out of DC X before maintenance
  superapp drill [flags]    fire drill: three DCs, mixed load, faults, a report
  superapp bench chat|pay   measure chat or payments on three local DCs

Run "superapp serve -h" for the flags. Every flag may also be given as an
environment variable SUPERAPP_<NAME>, e.g. SUPERAPP_CLUSTER_SECRET.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
	case "cluster":
		err = clusterCmd(os.Args[2:])
	case "status":
		err = statusCmd(os.Args[2:])
	case "evacuate":
		err = evacuateCmd(os.Args[2:])
	case "drill":
		err = drillCmd(os.Args[2:])
	case "bench":
		err = benchCmd(os.Args[2:])
	case "-h", "--help", "help":
		fmt.Print(usage)
		return
	default:
		fmt.Fprintf(os.Stderr, "superapp: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "superapp:", err)
		os.Exit(1)
	}
}

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	var (
		cfg       node.Config
		peers     string
		fsync     string
		logLevel  string
		cacheSize string
	)
	ec := &cfg.Engine
	fs.StringVar(&ec.DC, "dc", "dc1", "name of this data center (dc1, dc2, dc3)")
	fs.StringVar(&cfg.HTTPAddr, "http", ":8080", "HTTP API listen address")
	fs.StringVar(&ec.DataDir, "data", "./data", "data directory (JetStream file store)")
	fs.StringVar(&ec.NATSListen, "nats-listen", "", "embedded NATS client port, e.g. 127.0.0.1:4222 (needed for clustering)")
	fs.StringVar(&ec.ClusterListen, "cluster-listen", "", "embedded NATS cluster (route) port, e.g. 0.0.0.0:6222")
	fs.StringVar(&ec.ClusterAdvertise, "cluster-advertise", "", "route address the other DCs are told to use for this one (default: --cluster-listen)")
	fs.StringVar(&cfg.PublicURL, "public-url", "", "this DC's HTTP endpoint as clients reach it, listed by GET /v1/endpoints (default: http://<--http>)")
	fs.BoolVar(&cfg.WebhookLoopback, "webhook-loopback", false, "let mini-app webhooks go to http://localhost URLs (development only)")
	fs.StringVar(&cfg.OIDCIssuer, "oidc-issuer", "", "OpenID Provider issuer for Login with superapp, the same on every DC, ending in /oidc (default: <--public-url>/oidc)")
	fs.StringVar(&cfg.OIDCConsentURL, "oidc-consent-url", "", "web app page where users approve a mini-app's login (default: the issuer's origin + /oauth/consent)")
	fs.StringVar(&peers, "peers", "", "the other DCs' cluster addresses, comma-separated")
	fs.StringVar(&ec.NATSURL, "nats-url", "", "use this external NATS cluster instead of the embedded server")
	fs.StringVar(&ec.ClusterSecret, "cluster-secret", "", "secret every node presents to the NATS client and cluster ports")
	fs.StringVar(&fsync, "fsync", "always", "JetStream fsync policy: always or interval")
	fs.StringVar(&ec.TLSCert, "tls-cert", "", "certificate for the NATS client and cluster ports")
	fs.StringVar(&ec.TLSKey, "tls-key", "", "key of --tls-cert")
	fs.StringVar(&ec.TLSCA, "tls-ca", "", "CA that signed the other nodes' certificates (enables mutual TLS on routes)")
	fs.IntVar(&ec.Replicas, "replicas", 0, "stream replicas (0: 3 with --peers or --nats-url, else 1)")
	fs.StringVar(&cfg.OpsToken, "ops-token", "", "bearer token for /ops/*, /metrics and /readyz details (without it: loopback callers only on a node on its own listening on loopback, else nobody)")
	fs.StringVar(&cacheSize, "cache-size", "256MiB", "memory for the state store's block cache, e.g. 256MiB or 1GiB")
	fs.DurationVar(&ec.LogRetention, "log-retention", 0, "drop stream entries older than this once a checkpoint holds them, e.g. 720h (0: keep everything); DCs rebuild from checkpoints")
	fs.DurationVar(&cfg.CheckpointInterval, "checkpoint-interval", node.DefaultCheckpointInterval, "how often this DC writes a checkpoint of its state store (at most a quarter of --log-retention)")
	debug := fs.String("debug-listen", "", "serve Go's pprof profiles on this address (keep it on loopback)")
	fs.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := fromEnv(fs); err != nil {
		return err
	}
	if peers != "" {
		for _, p := range strings.Split(peers, ",") {
			if p = strings.TrimSpace(p); p != "" {
				ec.Peers = append(ec.Peers, p)
			}
		}
	}
	size, err := humanize.ParseBytes(cacheSize)
	if err != nil || size < 8<<20 {
		return fmt.Errorf("--cache-size %q: want a size of at least 8MiB, e.g. 256MiB", cacheSize)
	}
	cfg.CacheSize = int64(size)
	if ec.LogRetention < 0 || (ec.LogRetention > 0 && ec.LogRetention < 10*time.Second) {
		return fmt.Errorf("--log-retention %v: want 0 (keep everything) or at least 10s", ec.LogRetention)
	}
	switch fsync {
	case "always":
	case "interval":
		ec.FsyncInterval = true
	default:
		return fmt.Errorf("--fsync must be always or interval, not %q", fsync)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	cfg.Logger = slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("dc", ec.DC)
	slog.SetDefault(cfg.Logger) // libraries that log only through slog's default (the OIDC provider)
	if (ec.TLSCert == "") != (ec.TLSKey == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}

	if *debug != "" {
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		go func() { _ = http.ListenAndServe(*debug, mux) }()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	n, err := node.New(cfg)
	if err != nil {
		return err
	}
	err = n.Run(ctx)
	n.Close()
	var rebuild *node.RebuildError
	if errors.As(err, &rebuild) {
		return restartToRebuild(cfg.Logger, rebuild)
	}
	return err
}

// restartedEnv marks a process that restarted itself to rebuild its
// state, with the time it did (Unix seconds).
const restartedEnv = "SUPERAPP_RESTARTED_TO_REBUILD"

// restartToRebuild starts this node again in the same process (same
// command line, same PID) once it has shut down: at start it loads the
// newest checkpoint. A node that needed that twice within rebuildGuard
// exits instead of restarting in a loop.
func restartToRebuild(log *slog.Logger, why *node.RebuildError) error {
	if at, err := strconv.ParseInt(os.Getenv(restartedEnv), 10, 64); err == nil && time.Since(time.Unix(at, 0)) < rebuildGuard {
		return fmt.Errorf("%w; it restarted for that less than %v ago, so it stops here instead", why, rebuildGuard)
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("%w; restart: %v", why, err)
	}
	log.Warn("restarting this node to rebuild its state from the newest checkpoint", "reason", why.Reason)
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, restartedEnv+"=") })
	env = append(env, restartedEnv+"="+strconv.FormatInt(time.Now().Unix(), 10))
	return syscall.Exec(exe, os.Args, env)
}

const rebuildGuard = 5 * time.Minute

// fromEnv sets every flag not given on the command line from
// SUPERAPP_<NAME>, the name upper-cased with dashes as underscores.
func fromEnv(fs *flag.FlagSet) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] || err != nil {
			return
		}
		env := "SUPERAPP_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s: %w", env, e)
			}
		}
	})
	return err
}
