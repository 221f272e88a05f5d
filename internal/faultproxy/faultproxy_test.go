package faultproxy_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"superapp/internal/faultproxy"
)

// quiet is how long a connection that should carry nothing is watched.
const quiet = 200 * time.Millisecond

// echo is a TCP server that writes its greeting, if any, to each connection
// and then echoes what it reads.
type echo struct {
	ln       net.Listener
	greeting string
	accepted atomic.Int64
	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	wg       sync.WaitGroup
}

func startEcho(tb testing.TB, greeting string) *echo {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	e := &echo{ln: ln, greeting: greeting, conns: map[net.Conn]struct{}{}}
	e.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			e.accepted.Add(1)
			e.mu.Lock()
			e.conns[c] = struct{}{}
			e.mu.Unlock()
			e.wg.Go(func() {
				defer c.Close()
				if _, err := io.WriteString(c, e.greeting); err != nil {
					return
				}
				io.Copy(c, c)
			})
		}
	})
	tb.Cleanup(func() {
		ln.Close()
		e.mu.Lock()
		for c := range e.conns {
			c.Close()
		}
		e.mu.Unlock()
		e.wg.Wait()
	})
	return e
}

func (e *echo) addr() string { return e.ln.Addr().String() }

func newProxy(tb testing.TB, target string) *faultproxy.Proxy {
	tb.Helper()
	p, err := faultproxy.New("127.0.0.1:0", target)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := p.Close(); err != nil {
			tb.Error(err)
		}
	})
	return p
}

func dial(tb testing.TB, addr string) net.Conn {
	tb.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

// readExactly reads len(want) bytes from c and fails unless they are want.
func readExactly(tb testing.TB, c net.Conn, want []byte) {
	tb.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil {
		tb.Fatalf("read: %v", err)
	}
	if !bytes.Equal(got, want) {
		tb.Fatalf("read %q, want %q", got, want)
	}
}

func roundTrip(tb testing.TB, c net.Conn, msg string) {
	tb.Helper()
	if _, err := io.WriteString(c, msg); err != nil {
		tb.Fatalf("write: %v", err)
	}
	readExactly(tb, c, []byte(msg))
}

// requireClosed fails unless the peer has closed c: a read ends in an
// error, not in the deadline.
func requireClosed(tb testing.TB, c net.Conn) {
	tb.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := c.Read(make([]byte, 1))
	if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		tb.Fatalf("read on a cut connection: %v, want it closed", err)
	}
}

// requireSilent fails unless c delivers nothing for a while.
func requireSilent(tb testing.TB, c net.Conn) {
	tb.Helper()
	c.SetReadDeadline(time.Now().Add(quiet))
	n, err := c.Read(make([]byte, 64))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		tb.Fatalf("read on a held connection: %d bytes, %v; want nothing", n, err)
	}
}

// eventually waits for cond, which counters updated just after a write make
// necessary; the limit is for a hung test, not a performance bound.
func eventually(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			tb.Fatalf("never: %s", what)
		}
	}
}

// proxyGoroutines returns the stacks of goroutines running the proxy's
// code. A goroutine that has just returned from it still names it on its
// "created by" line, so only frames count.
func proxyGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var left []string
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		for line := range strings.SplitSeq(g, "\n") {
			if strings.HasPrefix(line, "superapp/internal/faultproxy.") {
				left = append(left, g)
				break
			}
		}
	}
	return left
}

func TestForwardsBothWays(t *testing.T) {
	e := startEcho(t, "")
	p := newProxy(t, e.addr())
	c := dial(t, p.Addr())

	roundTrip(t, c, "hello")
	big := make([]byte, 1<<20)
	rand.Read(big)
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(big)
		errc <- err
	}()
	readExactly(t, c, big)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}

	want := int64(len("hello") + len(big))
	eventually(t, "bytes counted both ways", func() bool {
		s := p.Stats()
		return s.BytesToTarget == want && s.BytesFromTarget == want
	})
	if s := p.Stats(); s.Accepted != 1 || s.Held != 0 || s.Cut != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestCutAndHeal(t *testing.T) {
	e := startEcho(t, "")
	p := newProxy(t, e.addr())
	open := dial(t, p.Addr())
	roundTrip(t, open, "before")

	p.Cut()
	requireClosed(t, open)
	if s := p.Stats(); s.Cut != 1 {
		t.Fatalf("cut %d connections, want 1", s.Cut)
	}

	// While cut the dial succeeds, as the kernel accepts it, but nothing
	// reaches the target and nothing comes back.
	held := dial(t, p.Addr())
	if _, err := io.WriteString(held, "lost"); err != nil {
		t.Fatal(err)
	}
	requireSilent(t, held)
	if n := e.accepted.Load(); n != 1 {
		t.Fatalf("target accepted %d connections while cut, want 1 from before", n)
	}
	eventually(t, "held connection counted", func() bool { return p.Stats().Held == 1 })

	p.Heal()
	requireClosed(t, held)
	after := dial(t, p.Addr())
	roundTrip(t, after, "after")
	if n := e.accepted.Load(); n != 2 {
		t.Fatalf("target accepted %d connections, want 2", n)
	}
	// The held connection's bytes were discarded, never forwarded.
	eventually(t, "bytes to target counted", func() bool {
		return p.Stats().BytesToTarget == int64(len("before")+len("after"))
	})
}

// TestSilenceAndHeal: a blacked-out link keeps its connection open and
// carries nothing either way; Heal closes it (bytes were lost on it) and
// new connections flow again.
func TestSilenceAndHeal(t *testing.T) {
	e := startEcho(t, "")
	p := newProxy(t, e.addr())
	open := dial(t, p.Addr())
	roundTrip(t, open, "before")

	p.Silence()
	if _, err := io.WriteString(open, "lost"); err != nil {
		t.Fatal(err)
	}
	requireSilent(t, open) // neither closed nor answered
	if s := p.Stats(); s.Cut != 0 {
		t.Fatalf("silence closed %d connections, want 0", s.Cut)
	}
	held := dial(t, p.Addr())
	requireSilent(t, held)

	p.Heal()
	requireClosed(t, open)
	requireClosed(t, held)
	after := dial(t, p.Addr())
	roundTrip(t, after, "after")
}

func TestTargetDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := ln.Addr().String()
	ln.Close()
	p := newProxy(t, down)
	requireClosed(t, dial(t, p.Addr()))
}

func TestSetDelay(t *testing.T) {
	const d = 100 * time.Millisecond
	e := startEcho(t, "")
	p := newProxy(t, e.addr())
	c := dial(t, p.Addr())
	roundTrip(t, c, "warm")

	p.SetDelay(d)
	start := time.Now()
	roundTrip(t, c, "slow")
	// Once there, once back.
	if took := time.Since(start); took < 2*d {
		t.Fatalf("round trip took %v with a %v delay, want at least %v", took, d, 2*d)
	}

	p.SetDelay(0)
	roundTrip(t, c, "fast again")
}

func TestCloseLeavesNoGoroutines(t *testing.T) {
	// Registered first, so it runs after every other cleanup.
	t.Cleanup(func() { goleak.VerifyNone(t) })
	e := startEcho(t, "")
	p, err := faultproxy.New("127.0.0.1:0", e.addr())
	if err != nil {
		t.Fatal(err)
	}

	flowing := dial(t, p.Addr())
	roundTrip(t, flowing, "x")
	cut := dial(t, p.Addr())
	roundTrip(t, cut, "y")
	p.Cut()
	held := dial(t, p.Addr())
	eventually(t, "held connection counted", func() bool { return p.Stats().Held == 1 })
	p.Heal()
	// A chunk waiting out its delay when Close comes.
	p.SetDelay(time.Hour)
	delayed := dial(t, p.Addr())
	io.WriteString(delayed, "z")
	eventually(t, "delayed connection accepted", func() bool { return p.Stats().Accepted == 4 })

	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	// Close waits: none of its goroutines may be left even for a moment.
	if left := proxyGoroutines(); len(left) > 0 {
		t.Fatalf("goroutines running after Close:\n%s", strings.Join(left, "\n\n"))
	}
	requireClosed(t, delayed)
	requireClosed(t, held)
	if _, err := net.Dial("tcp", p.Addr()); err == nil {
		t.Fatal("dial after Close succeeded")
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestMeshIsolate(t *testing.T) {
	names := []string{"dc1", "dc2", "dc3"}
	targets := map[string]string{}
	for _, n := range names {
		targets[n] = startEcho(t, n).addr()
	}
	m, err := faultproxy.NewMesh(targets)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Error(err)
		}
	})

	// connectAll dials every link and checks it reaches the right name.
	connectAll := func() map[[2]string]net.Conn {
		conns := map[[2]string]net.Conn{}
		for _, from := range names {
			for _, to := range names {
				if from != to {
					c := dial(t, m.Addr(from, to))
					readExactly(t, c, []byte(to))
					conns[[2]string{from, to}] = c
				}
			}
		}
		return conns
	}
	conns := connectAll()

	m.Isolate("dc3")
	for k, c := range conns {
		msg := fmt.Sprintf("%s→%s", k[0], k[1])
		if k[0] == "dc3" || k[1] == "dc3" {
			requireClosed(t, c)
			fresh := dial(t, m.Addr(k[0], k[1]))
			requireSilent(t, fresh)
		} else {
			roundTrip(t, c, msg)
		}
	}
	for k := range conns {
		cut := int64(0)
		if k[0] == "dc3" || k[1] == "dc3" {
			cut = 1
		}
		if got := m.Proxy(k[0], k[1]).Stats().Cut; got != cut {
			t.Errorf("%s→%s: %d connections cut, want %d", k[0], k[1], got, cut)
		}
	}

	m.HealAll()
	for k, c := range connectAll() {
		roundTrip(t, c, fmt.Sprintf("%s→%s healed", k[0], k[1]))
	}
}

func TestMeshUnknownName(t *testing.T) {
	m, err := faultproxy.NewMesh(map[string]string{"dc1": "127.0.0.1:1", "dc2": "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	defer func() {
		if recover() == nil {
			t.Fatal("Isolate of a name not in the mesh did not panic")
		}
	}()
	m.Isolate("dc9")
}
