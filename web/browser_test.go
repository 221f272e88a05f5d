package web_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"superapp/internal/dctest"
)

// TestBrowser runs the web app's browser tests (web/tests, playwright-core
// driving Debian's chromium) against three real DC processes. The tests
// reach the cluster through environment variables:
//
//	SUPERAPP_ENDPOINTS  dc1=http://…,dc2=http://…,dc3=http://…
//	SUPERAPP_CONTROL    a loopback URL: POST /kill?dc=dc1 SIGKILLs a DC,
//	                    POST /restart?dc=dc1 starts it again on its disk
//	SUPERAPP_SHOTS      where to save screenshots (git-ignored)
//
// Without chromium or web/node_modules the test is skipped, unless
// SUPERAPP_BROWSER_TESTS=1 (as CI sets it), where that is a failure.
func TestBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser tests start three DCs and a browser")
	}
	must := os.Getenv("SUPERAPP_BROWSER_TESTS") == "1"
	for _, need := range []string{chromium(), "node_modules/playwright-core", "node_modules/axe-core"} {
		if _, err := os.Stat(need); err != nil {
			if must {
				t.Fatalf("browser tests need %s: %v", need, err)
			}
			t.Skipf("browser tests need %s (npm ci in web/, apt-get install chromium)", need)
		}
	}
	node, err := exec.LookPath("node")
	if err != nil {
		if must {
			t.Fatal("browser tests need node")
		}
		t.Skip("browser tests need node")
	}
	c := dctest.Start(t)
	var eps []string
	for _, d := range c.DCs {
		eps = append(eps, d.Name+"="+d.URL())
	}
	control := controlServer(t, c)
	shots, _ := filepath.Abs("screenshots")
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	args := []string{"--test", "--test-concurrency=1", "--test-reporter=spec"}
	if run := os.Getenv("SUPERAPP_BROWSER_RUN"); run != "" {
		args = append(args, "--test-name-pattern="+run)
	}
	files, _ := filepath.Glob("tests/*.test.mjs")
	cmd := exec.CommandContext(ctx, node, append(args, files...)...)
	cmd.Env = append(os.Environ(),
		"SUPERAPP_ENDPOINTS="+strings.Join(eps, ","),
		"SUPERAPP_CONTROL="+control,
		"SUPERAPP_SHOTS="+shots,
		"SUPERAPP_CHROMIUM="+chromium(),
	)
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		t.Log(sc.Text())
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("browser tests failed: %v", err)
	}
}

func chromium() string {
	if p := os.Getenv("SUPERAPP_CHROMIUM"); p != "" {
		return p
	}
	return "/usr/bin/chromium"
}

// controlServer lets the browser tests kill and restart DCs: the processes
// are this test's.
func controlServer(t *testing.T, c *dctest.Cluster) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /kill", func(w http.ResponseWriter, r *http.Request) {
		dc := r.URL.Query().Get("dc")
		if c.DC(dc) == nil {
			http.Error(w, "no such dc", http.StatusBadRequest)
			return
		}
		c.Kill(dc)
		t.Logf("control: %s SIGKILLed", dc)
		fmt.Fprintln(w, "killed")
	})
	mux.HandleFunc("POST /restart", func(w http.ResponseWriter, r *http.Request) {
		dc := r.URL.Query().Get("dc")
		if c.DC(dc) == nil {
			http.Error(w, "no such dc", http.StatusBadRequest)
			return
		}
		c.Restart(dc)
		d := c.WaitReady(dc, 2*time.Minute)
		t.Logf("control: %s restarted, ready in %v", dc, d)
		fmt.Fprintln(w, "ready")
	})
	mux.HandleFunc("POST /lead", func(w http.ResponseWriter, r *http.Request) {
		stream, dc := r.URL.Query().Get("stream"), r.URL.Query().Get("dc")
		if err := lead(r.Context(), c, stream, dc); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		t.Logf("control: %s leads %s", dc, stream)
		fmt.Fprintln(w, "leads")
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// lead moves a stream's leadership to dc (a graceful raft hand-over), so a
// test can burn the DC that leads what its page writes.
func lead(ctx context.Context, c *dctest.Cluster, stream, dc string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		if c.Leader(ctx, stream) == dc {
			return nil
		}
		js, done := c.JetStream(ctx)
		req, _ := json.Marshal(map[string]any{"placement": map[string]string{"preferred": dc}})
		_, err := js.Conn().RequestWithContext(ctx, "$JS.API.STREAM.LEADER.STEPDOWN."+stream, req)
		done()
		if err != nil && ctx.Err() != nil {
			return fmt.Errorf("move %s to %s: %w", stream, dc, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s still not led by %s", stream, dc)
		case <-time.After(500 * time.Millisecond):
		}
	}
}
