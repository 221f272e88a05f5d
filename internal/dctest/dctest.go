// Package dctest burns data centers for real: it builds the superapp
// binary once, starts three DC processes with their own data directories
// and loopback ports, and can SIGKILL a DC, wipe its disk and restart it.
// Every DC-loss test uses it. It must never stand in for a fire with a
// graceful in-process shutdown.
package dctest

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"superapp/internal/cluster"
	"superapp/internal/engine"
	"superapp/internal/faultproxy"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Binary builds ./cmd/superapp once per test process and returns its path.
func Binary(tb testing.TB) string {
	tb.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "superapp-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "superapp")
		out, err := exec.Command("go", "build", "-o", binPath, "superapp/cmd/superapp").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		tb.Fatal(buildErr)
	}
	return binPath
}

// DC is one data center: one superapp process.
type DC = cluster.DC

// Cluster is three DCs on this machine, failing the test on any error.
type Cluster struct {
	*cluster.Cluster
	tb testing.TB
}

// Names of the three DCs.
var Names = cluster.Names

// Start starts three DCs and waits until every one is ready.
func Start(tb testing.TB) *Cluster {
	tb.Helper()
	return start(tb, cluster.Options{}, nil)
}

// StartWith starts three DCs given extra flags and waits until every one
// is ready.
func StartWith(tb testing.TB, args ...string) *Cluster {
	tb.Helper()
	return start(tb, cluster.Options{Args: args}, nil)
}

// StartMeshed starts three DCs whose links to each other run through fault
// proxies, so a test can cut a DC off while its process keeps running.
func StartMeshed(tb testing.TB) (*Cluster, *faultproxy.Mesh) {
	tb.Helper()
	var mesh *faultproxy.Mesh
	c := start(tb, cluster.Options{RouteVia: func(from, to *cluster.DC) string { return mesh.Addr(from.Name, to.Name) }}, func(cl *cluster.Cluster) {
		targets := map[string]string{}
		for _, d := range cl.DCs {
			targets[d.Name] = d.ClusterAddr
		}
		var err error
		if mesh, err = faultproxy.NewMesh(targets); err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { mesh.Close() })
	})
	return c, mesh
}

// start lays the DCs out, lets before see them, then starts them.
func start(tb testing.TB, opts cluster.Options, before func(*cluster.Cluster)) *Cluster {
	tb.Helper()
	opts.Binary, opts.Dir, opts.Secret = Binary(tb), tb.TempDir(), "test-secret-"+tb.Name()
	cl, err := cluster.New(opts)
	if err != nil {
		tb.Fatal(err)
	}
	if before != nil {
		before(cl)
	}
	c := &Cluster{Cluster: cl, tb: tb}
	tb.Cleanup(c.stopAll)
	if err := cl.StartAll(); err != nil {
		tb.Fatal(err)
	}
	for _, d := range c.DCs {
		c.WaitReady(d.Name, 3*time.Minute)
	}
	return c
}

// DC returns the DC with name.
func (c *Cluster) DC(name string) *DC {
	d := c.Cluster.DC(name)
	if d == nil {
		c.tb.Fatalf("no DC %q", name)
	}
	return d
}

// Kill SIGKILLs a DC's process: no shutdown, no flush, like a fire.
func (c *Cluster) Kill(name string) {
	c.tb.Helper()
	if err := c.Cluster.Kill(name); err != nil {
		c.tb.Fatal(err)
	}
}

// Freeze SIGSTOPs a DC's process: silent, its connections open (a
// blackout). Kill it afterwards to end it.
func (c *Cluster) Freeze(name string) {
	c.tb.Helper()
	if err := c.Cluster.Freeze(name); err != nil {
		c.tb.Fatal(err)
	}
}

// Thaw resumes a frozen DC's process (SIGCONT).
func (c *Cluster) Thaw(name string) {
	c.tb.Helper()
	if err := c.Cluster.Thaw(name); err != nil {
		c.tb.Fatal(err)
	}
}

// Wipe deletes a (killed) DC's data directory.
func (c *Cluster) Wipe(name string) {
	c.tb.Helper()
	if err := c.Cluster.Wipe(name); err != nil {
		c.tb.Fatal(err)
	}
}

// Restart starts a killed DC again with the same ports and data directory.
func (c *Cluster) Restart(name string) {
	c.tb.Helper()
	if err := c.Cluster.Start(name); err != nil {
		c.tb.Fatal(err)
	}
}

// WaitReady waits until a DC is ready and returns how long that took.
func (c *Cluster) WaitReady(name string, timeout time.Duration) time.Duration {
	c.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	took, err := c.Cluster.WaitReady(ctx, name)
	if err != nil {
		c.tb.Fatalf("%v; log tail:\n%s", err, tail(c.DC(name).LogPath, 30))
	}
	return took
}

// JetStream connects to a live DC's embedded NATS with the cluster secret,
// as an operator would, for inspecting streams.
func (c *Cluster) JetStream(ctx context.Context) (jetstream.JetStream, func()) {
	c.tb.Helper()
	var urls []string
	for _, d := range c.DCs {
		if c.Running(d.Name) {
			urls = append(urls, "nats://"+d.NATSAddr)
		}
	}
	nc, err := nats.Connect(strings.Join(urls, ","), nats.UserInfo(engine.User, c.Secret))
	if err != nil {
		c.tb.Fatalf("connect to nats: %v", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		c.tb.Fatal(err)
	}
	return js, nc.Close
}

// StreamInfo returns a stream's info as the cluster reports it.
func (c *Cluster) StreamInfo(ctx context.Context, stream string) *jetstream.StreamInfo {
	c.tb.Helper()
	js, done := c.JetStream(ctx)
	defer done()
	for {
		s, err := js.Stream(ctx, stream)
		if err == nil {
			var info *jetstream.StreamInfo
			if info, err = s.Info(ctx); err == nil && info.Cluster != nil && info.Cluster.Leader != "" {
				return info
			}
		}
		select {
		case <-ctx.Done():
			c.tb.Fatalf("stream info %s: %v", stream, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Leader returns the DC whose server leads stream.
func (c *Cluster) Leader(ctx context.Context, stream string) string {
	return c.StreamInfo(ctx, stream).Cluster.Leader
}

func (c *Cluster) stopAll() {
	c.StopAll()
	if c.tb.Failed() {
		for _, d := range c.DCs {
			c.tb.Logf("---- %s log tail ----\n%s", d.Name, tail(d.LogPath, 40))
		}
	}
}

func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

// ReadModel is one read model as a DC reports it on /readyz.
type ReadModel = cluster.ReadModel

// ReadModels asks a DC for its read models' positions and digests.
func (c *Cluster) ReadModels(name string) ([]ReadModel, error) {
	rd, err := c.Readiness(context.Background(), name)
	return rd.ReadModels, err
}

// WaitConverged waits until every running DC reports the same position and
// digest for every read model, and fails the test if they differ at the
// same position or do not meet before ctx ends.
func (c *Cluster) WaitConverged(ctx context.Context) {
	c.tb.Helper()
	if err := c.Cluster.WaitConverged(ctx); err != nil {
		c.tb.Fatal(err)
	}
}
