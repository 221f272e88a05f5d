// Package cluster runs three superapp data centers as three OS processes
// on one machine: loopback ports, a data directory each, one cluster
// secret. `superapp cluster`, `superapp bench` and the DC-loss tests use
// it. Kill is SIGKILL — a fire, not a shutdown.
package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Names of the three DCs.
var Names = []string{"dc1", "dc2", "dc3"}

// Options configures a cluster.
type Options struct {
	// Binary is the superapp executable to run.
	Binary string
	// Dir holds each DC's data directory and log.
	Dir string
	// Secret is the cluster secret (random if empty).
	Secret string
	// HTTPPorts, if set, are the DCs' HTTP ports (else free ports).
	HTTPPorts []int
	// Args are extra flags for every DC.
	Args []string
	// Stdout, if set, receives every DC's output as well as its log file.
	Stdout func(dc string) *os.File
	// OpsToken is every DC's ops token, sent when asking DCs for their
	// detail (random if empty: a clustered node has operators' endpoints
	// only with a token).
	OpsToken string
	// RouteVia, if set, is the address DC from dials to reach DC to's
	// route port, e.g. a fault-injecting proxy between them.
	RouteVia func(from, to *DC) string
	// Debug gives every DC a --debug-listen address of its own (DC.DebugAddr).
	Debug bool
}

// DC is one data center: one superapp process.
type DC struct {
	Name        string
	HTTPAddr    string
	NATSAddr    string
	ClusterAddr string
	// DebugAddr serves the DC's pprof profiles (Options.Debug).
	DebugAddr string
	DataDir   string
	LogPath   string

	cmd  *exec.Cmd
	done chan struct{}
}

// OpsToken is the DCs' ops token.
func (c *Cluster) OpsToken() string { return c.opts.OpsToken }

// URL is the DC's HTTP base URL.
func (d *DC) URL() string { return "http://" + d.HTTPAddr }

// PID is the DC's process id while it runs, else 0.
func (c *Cluster) PID(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if d := c.DC(name); d != nil && d.cmd != nil && d.cmd.Process != nil {
		return d.cmd.Process.Pid
	}
	return 0
}

// Cluster is three DCs.
type Cluster struct {
	opts   Options
	Secret string
	DCs    []*DC
	mu     sync.Mutex
}

// New lays out three DCs: addresses, directories. It starts nothing.
func New(opts Options) (*Cluster, error) {
	if opts.Secret == "" {
		b := make([]byte, 24)
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
		opts.Secret = hex.EncodeToString(b)
	}
	if opts.OpsToken == "" {
		b := make([]byte, 16)
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
		opts.OpsToken = "ops-" + hex.EncodeToString(b)
	}
	c := &Cluster{opts: opts, Secret: opts.Secret}
	for i, name := range Names {
		d := &DC{Name: name, DataDir: filepath.Join(opts.Dir, name, "data"), LogPath: filepath.Join(opts.Dir, name+".log")}
		var err error
		if len(opts.HTTPPorts) == len(Names) {
			d.HTTPAddr = fmt.Sprintf("127.0.0.1:%d", opts.HTTPPorts[i])
		} else if d.HTTPAddr, err = FreeAddr(); err != nil {
			return nil, err
		}
		if d.NATSAddr, err = FreeAddr(); err != nil {
			return nil, err
		}
		if d.ClusterAddr, err = FreeAddr(); err != nil {
			return nil, err
		}
		if opts.Debug {
			if d.DebugAddr, err = FreeAddr(); err != nil {
				return nil, err
			}
		}
		c.DCs = append(c.DCs, d)
	}
	return c, nil
}

// FreeAddr returns a loopback address with a port free right now, chosen
// below the kernel's range of ephemeral ports. A DC binds its ports only
// when its process starts, and binds them again at every restart: a port
// from the ephemeral range (what listening on port 0 gives) is taken
// meanwhile, now and then, by some process's outgoing connection, and the
// DC then fails to start ("address already in use").
func FreeAddr() (string, error) {
	lo, hi := 10000, ephemeralStart()
	for range 100 {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", lo+mrand.IntN(hi-lo)))
		if err == nil {
			defer l.Close()
			return l.Addr().String(), nil
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// ephemeralStart is the first port the kernel hands out to outgoing
// connections (Linux: net.ipv4.ip_local_port_range; 32768 elsewhere).
func ephemeralStart() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > 11000 {
				return n
			}
		}
	}
	return 32768
}

// DC returns the DC with name, or nil.
func (c *Cluster) DC(name string) *DC {
	for _, d := range c.DCs {
		if d.Name == name {
			return d
		}
	}
	return nil
}

// URLs lists every DC's HTTP base URL, in DC order.
func (c *Cluster) URLs() []string {
	var out []string
	for _, d := range c.DCs {
		out = append(out, d.URL())
	}
	return out
}

// Args returns the command line of a DC's process.
func (c *Cluster) Args(d *DC) []string {
	var peers []string
	for _, o := range c.DCs {
		if o != d {
			if c.opts.RouteVia != nil {
				peers = append(peers, c.opts.RouteVia(d, o))
			} else {
				peers = append(peers, o.ClusterAddr)
			}
		}
	}
	var extra []string
	if c.opts.RouteVia != nil {
		// Servers tell each other their route addresses and dial those
		// they miss: that would route around the proxies. The port 1 of
		// loopback refuses, so only the configured links carry routes.
		extra = append(extra, "--cluster-advertise", "127.0.0.1:1")
	}
	extra = append(extra, "--ops-token", c.opts.OpsToken)
	if d.DebugAddr != "" {
		extra = append(extra, "--debug-listen", d.DebugAddr)
	}
	// One issuer for "Login with superapp" on every DC (a login begun on
	// one DC finishes on any other), unless the caller names one.
	if os.Getenv("SUPERAPP_OIDC_ISSUER") == "" && !slices.Contains(c.opts.Args, "--oidc-issuer") {
		extra = append(extra, "--oidc-issuer", c.DCs[0].URL()+"/oidc")
	}
	args := append([]string{"serve",
		"--dc", d.Name,
		"--http", d.HTTPAddr,
		"--data", d.DataDir,
		"--nats-listen", d.NATSAddr,
		"--cluster-listen", d.ClusterAddr,
		"--peers", strings.Join(peers, ","),
		"--cluster-secret", c.Secret,
	}, extra...)
	return append(args, c.opts.Args...)
}

// Start starts a DC's process (it must not be running).
func (c *Cluster) Start(name string) error {
	d := c.DC(name)
	if d == nil {
		return fmt.Errorf("no DC %q", name)
	}
	if c.Running(name) {
		return fmt.Errorf("%s is running", name)
	}
	if err := os.MkdirAll(filepath.Dir(d.LogPath), 0o755); err != nil {
		return err
	}
	logf, err := os.OpenFile(d.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(c.opts.Binary, c.Args(d)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", name, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(done)
	}()
	c.mu.Lock()
	d.cmd, d.done = cmd, done
	c.mu.Unlock()
	return nil
}

// StartAll starts every DC.
func (c *Cluster) StartAll() error {
	for _, d := range c.DCs {
		if err := c.Start(d.Name); err != nil {
			return err
		}
	}
	return nil
}

// Running reports whether a DC's process is running.
func (c *Cluster) Running(name string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	d := c.DC(name)
	if d == nil || d.cmd == nil {
		return false
	}
	select {
	case <-d.done:
		return false
	default:
		return true
	}
}

// Kill SIGKILLs a DC's process: no shutdown, no flush, like a fire.
func (c *Cluster) Kill(name string) error {
	return c.signal(name, syscall.SIGKILL, 0)
}

// Freeze stops a DC's process where it stands (SIGSTOP): its sockets stay
// open and nothing answers, as when a DC loses power or its links go
// dark. Kill ends it; Thaw lets it go on.
func (c *Cluster) Freeze(name string) error { return c.pause(name, syscall.SIGSTOP) }

// Thaw resumes a frozen DC's process (SIGCONT).
func (c *Cluster) Thaw(name string) error { return c.pause(name, syscall.SIGCONT) }

func (c *Cluster) pause(name string, sig syscall.Signal) error {
	pid := c.PID(name)
	if pid == 0 {
		return fmt.Errorf("%s is not running", name)
	}
	return syscall.Kill(pid, sig)
}

// Stop stops a DC gracefully (SIGTERM, then SIGKILL after 10 s).
func (c *Cluster) Stop(name string) error {
	return c.signal(name, syscall.SIGTERM, 10*time.Second)
}

func (c *Cluster) signal(name string, sig syscall.Signal, grace time.Duration) error {
	d := c.DC(name)
	if d == nil {
		return fmt.Errorf("no DC %q", name)
	}
	c.mu.Lock()
	cmd, done := d.cmd, d.done
	d.cmd = nil
	c.mu.Unlock()
	if cmd == nil {
		return nil
	}
	_ = cmd.Process.Signal(sig)
	if grace > 0 {
		select {
		case <-done:
			return nil
		case <-time.After(grace):
			_ = cmd.Process.Signal(syscall.SIGKILL)
		}
	}
	<-done
	return nil
}

// StopAll stops every DC gracefully.
func (c *Cluster) StopAll() {
	var wg sync.WaitGroup
	for _, d := range c.DCs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = c.Stop(d.Name)
		}()
	}
	wg.Wait()
}

// Wipe deletes a stopped DC's data directory.
func (c *Cluster) Wipe(name string) error {
	d := c.DC(name)
	if d == nil {
		return fmt.Errorf("no DC %q", name)
	}
	if c.Running(name) {
		return fmt.Errorf("wipe %s: still running", name)
	}
	return os.RemoveAll(d.DataDir)
}

// Ready reports whether a DC's /readyz answers 200.
func (c *Cluster) Ready(name string) bool {
	d := c.DC(name)
	if d == nil {
		return false
	}
	resp, err := http.Get(d.URL() + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// ErrNotReady is returned when a DC did not become ready in time.
var ErrNotReady = errors.New("not ready")

// WaitReady waits until a DC is ready and returns how long that took.
func (c *Cluster) WaitReady(ctx context.Context, name string) (time.Duration, error) {
	start := time.Now()
	for {
		if c.Ready(name) {
			return time.Since(start), nil
		}
		if !c.Running(name) {
			return 0, fmt.Errorf("%s exited; see %s", name, c.DC(name).LogPath)
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("%s: %w after %v", name, ErrNotReady, time.Since(start).Round(time.Millisecond))
		case <-time.After(100 * time.Millisecond):
		}
	}
}
