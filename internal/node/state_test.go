package node_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"superapp/client"
	"superapp/internal/engine"
	"superapp/internal/node"
	"superapp/internal/store/storetest"
)

// logBuffer collects a node's log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// run starts a node on dir and waits until it is ready; stop stops it.
func run(t *testing.T, dir string) (n *node.Node, logs *logBuffer, stop func()) {
	t.Helper()
	logs = &logBuffer{}
	n, err := node.New(node.Config{Engine: engine.Config{DC: "dc1", DataDir: dir}, HTTPAddr: "127.0.0.1:0",
		Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := n.Run(ctx); err != nil {
			t.Errorf("node: %v", err)
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			<-done
			n.Close()
		})
	}
	t.Cleanup(stop)
	for deadline := time.Now().Add(30 * time.Second); ; {
		resp, err := http.Get("http://" + n.HTTPAddr() + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return n, logs, stop
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("node not ready after 30s; log:\n%s", logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRestartResumesFromTheStore: a node stopped and started on its own
// disk resumes every stream where its store is; with its store wiped or
// corrupted it rebuilds from its checkpoint (or, with none, from the
// log); every time, what was written is there.
func TestRestartResumesFromTheStore(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	n, _, stop := run(t, dir)
	c := client.New([]string{"http://" + n.HTTPAddr()})
	a, err := c.SignUp(ctx, "kim@example.com", "violet-harbor-tangent-91", "Kim")
	if err != nil {
		t.Fatal(err)
	}
	b, err := client.New([]string{"http://" + n.HTTPAddr()}).SignUp(ctx, "lee@example.com", "violet-harbor-tangent-91", "Lee")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Login(ctx, "kim@example.com", "violet-harbor-tangent-91", "phone"); err != nil {
		t.Fatal(err)
	}
	cv, err := c.CreateConversation(ctx, []string{b.UserID}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 30; i++ {
		if _, err := c.Send(ctx, cv.ConversationID, fmt.Sprintf("m%d", i), fmt.Sprintf("hello %d", i), 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.TopUp(ctx, "t1", 50_000, "KRW"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Pay(ctx, "p1", b.UserID, 1_234, "KRW"); err != nil {
		t.Fatal(err)
	}
	tokens := client.Tokens{AccessToken: c.AccessToken(), UserID: a.UserID}
	want := 30
	check := func(n *node.Node, label string) {
		t.Helper()
		r := client.New([]string{"http://" + n.HTTPAddr()})
		r.UseTokens(tokens)
		msgs, _, err := r.Messages(ctx, cv.ConversationID, 0, 0, 100)
		if err != nil || len(msgs) != want || msgs[29].Text != "hello 29" {
			t.Fatalf("%s: messages %d, want %d, %v", label, len(msgs), want, err)
		}
		w, err := r.Wallet(ctx)
		if err != nil || len(w) != 1 || w[0].Available != 50_000-1_234 {
			t.Fatalf("%s: wallet %+v %v", label, w, err)
		}
		// The same client id again: the original outcome, not a second message.
		m, err := r.Send(ctx, cv.ConversationID, "m3", "hello 3", 0)
		if err != nil || m.Seq != 4 {
			t.Fatalf("%s: retried send: %+v %v", label, m, err)
		}
	}
	check(n, "before the restart")
	if _, err := n.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	// More after the checkpoint: a node rebuilt from it applies them from the log.
	if _, err := c.Send(ctx, cv.ConversationID, "late", "after the checkpoint", 0); err != nil {
		t.Fatal(err)
	}
	want = 31
	stop()

	n, logs, stop := run(t, dir)
	if !strings.Contains(logs.String(), "resuming from the state store") {
		t.Fatalf("restart on its own disk: not resumed:\n%s", logs)
	}
	for _, stream := range []string{"IDENTITY", "CHAT", "LEDGER"} {
		if !strings.Contains(logs.String(), `"msg":"read model restored from the state store","stream":"`+stream+`"`) {
			t.Fatalf("restart on its own disk: %s not restored:\n%s", stream, logs)
		}
	}
	check(n, "restarted on its own disk")
	stop()

	// Corrupted: rebuilt from the checkpoint and the log after it.
	storetest.Corrupt(t, filepath.Join(dir, "state"))
	n, logs, stop = run(t, dir)
	for _, want := range []string{"rebuilding the state store", "state store loaded from a checkpoint"} {
		if !strings.Contains(logs.String(), want) {
			t.Fatalf("corrupted store: no %q in the log:\n%s", want, logs)
		}
	}
	check(n, "rebuilt from the checkpoint")
	r := client.New([]string{"http://" + n.HTTPAddr()})
	r.UseTokens(tokens)
	if last, _, err := r.Messages(ctx, cv.ConversationID, 0, 0, 100); err != nil || len(last) != 31 || last[30].ID != "late" {
		t.Fatalf("the entry after the checkpoint: %d messages, %v", len(last), err)
	}
	stop()

	// Wiped, and no checkpoint reaches... there is one; without it too:
	// the whole log is still there.
	if err := os.RemoveAll(filepath.Join(dir, "state")); err != nil {
		t.Fatal(err)
	}
	n, logs, _ = run(t, dir)
	if !strings.Contains(logs.String(), "state store loaded from a checkpoint") {
		t.Fatalf("wiped store: not loaded from the checkpoint:\n%s", logs)
	}
	check(n, "wiped")
}
