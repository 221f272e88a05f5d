// Package bench measures superapp on three local DCs through its public
// API: chat throughput and latency, the raw JetStream publish rate of the
// same machine for comparison, and WebSocket connections per node. It
// prints figures; it asserts nothing (targets are judged by people).
package bench

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"superapp/client"
	"superapp/internal/cluster"
	"superapp/internal/engine"
)

// ChatOptions configures the chat benchmark.
type ChatOptions struct {
	Binary   string
	Dir      string
	Users    int           // users, in one-to-one pairs
	Senders  int           // concurrent senders in the throughput run
	Duration time.Duration // length of each run
	Rate     int           // messages/s of the latency run
	Conns    int           // idle WebSocket connections opened to dc1
	Out      io.Writer
}

// Chat runs the chat benchmark on a fresh three-DC cluster.
func Chat(ctx context.Context, o ChatOptions) error {
	out := o.Out
	cl, err := startCluster(ctx, cluster.Options{Binary: o.Binary, Dir: o.Dir, OpsToken: benchOpsToken}, out)
	if err != nil {
		return err
	}
	defer cl.StopAll()
	if err := rawPublish(ctx, cl, out); err != nil {
		return fmt.Errorf("raw publish: %w", err)
	}
	pairs, err := setup(ctx, cl, o.Users)
	if err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	before := leaderChanges(ctx, cl.DCs[0].URL())
	if err := throughput(ctx, pairs, o, out); err != nil {
		return err
	}
	fmt.Fprintf(out, "leader changes during the throughput run (every core busy): %s\n", changedLeaders(before, leaderChanges(ctx, cl.DCs[0].URL())))
	if err := latency(ctx, pairs, o, out); err != nil {
		return err
	}
	return idleConns(ctx, cl, pairs[0].a, o.Conns, out)
}

// startCluster starts three DCs, waits until they are ready and says on
// what machine the figures are taken.
func startCluster(ctx context.Context, opts cluster.Options, out io.Writer) (*cluster.Cluster, error) {
	cl, err := cluster.New(opts)
	if err != nil {
		return nil, err
	}
	if err := cl.StartAll(); err != nil {
		cl.StopAll()
		return nil, err
	}
	for _, d := range cl.DCs {
		wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		_, err := cl.WaitReady(wctx, d.Name)
		cancel()
		if err != nil {
			cl.StopAll()
			return nil, err
		}
	}
	fmt.Fprintf(out, "machine: %d CPUs (%s/%s), three DCs as three processes on loopback, every stream R3, fsync always\n",
		runtime.NumCPU(), runtime.GOOS, runtime.GOARCH)
	return cl, nil
}

// rawPublish measures async publishes of small messages to an R3 stream.
func rawPublish(ctx context.Context, cl *cluster.Cluster, out io.Writer) error {
	nc, err := nats.Connect("nats://"+cl.DCs[0].NATSAddr, nats.UserInfo(engine.User, cl.Secret))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		return err
	}
	// A stream of the benchmark's own, deleted afterwards: not one of the
	// project's streams.
	cfg := jetstream.StreamConfig{Name: "BENCH_RAW", Subjects: []string{"benchraw.>"}, Replicas: 3, Storage: jetstream.FileStorage}
	if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
		return err
	}
	defer js.DeleteStream(context.Background(), cfg.Name)
	const n = 200_000
	payload := make([]byte, 200)
	start := time.Now()
	for i := 0; i < n; i++ {
		if _, err := js.PublishAsync("benchraw.x", payload); err != nil {
			return err
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(2 * time.Minute):
		return fmt.Errorf("acks did not complete")
	}
	el := time.Since(start)
	fmt.Fprintf(out, "raw JetStream async publish, 200 B, R3: %d msgs in %v = %.0f msgs/s\n", n, el.Round(time.Millisecond), float64(n)/el.Seconds())
	return nil
}

type pair struct {
	a, b *client.Client
	conv string
}

// setup signs up users in pairs, spread over the DCs, each pair sharing a
// one-to-one conversation.
func setup(ctx context.Context, cl *cluster.Cluster, users int) ([]*pair, error) {
	var pairs []*pair
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	for i := 0; i+1 < users; i += 2 {
		p := &pair{}
		for j, cp := range []**client.Client{&p.a, &p.b} {
			k := i + j
			urls := cl.URLs()
			c := client.New(append(urls[k%3:], urls[:k%3]...))
			login := fmt.Sprintf("bench-%s-%d@example.com", run, k)
			if _, err := c.SignUp(ctx, login, "violet-harbor-tangent-91", "Bench "+strconv.Itoa(k)); err != nil {
				return nil, err
			}
			if _, err := c.Login(ctx, login, "violet-harbor-tangent-91", "bench"); err != nil {
				return nil, err
			}
			*cp = c
		}
		conv, err := p.a.CreateConversation(ctx, []string{p.b.UserID()}, nil)
		if err != nil {
			return nil, err
		}
		p.conv = conv.ConversationID
		pairs = append(pairs, p)
	}
	return pairs, nil
}

// receiver counts message deliveries on b's event stream and records the
// latency of messages whose text carries their send time.
type receiver struct {
	delivered atomic.Int64
	mu        sync.Mutex
	lat       []time.Duration
}

func (r *receiver) listen(ctx context.Context, c *client.Client, ready *sync.WaitGroup) {
	live := false
	for f := range c.Stream(ctx, 0) {
		if f.Type == "sync.done" && !live {
			live = true
			ready.Done()
		}
		if !live {
			continue // what an earlier run sent
		}
		for _, ev := range f.Events {
			if ev.Type != "message" || ev.Message == nil {
				continue
			}
			r.delivered.Add(1)
			if ns, ok := strings.CutPrefix(ev.Message.Text, "t="); ok {
				if t, err := strconv.ParseInt(ns, 10, 64); err == nil {
					r.mu.Lock()
					r.lat = append(r.lat, time.Since(time.Unix(0, t)))
					r.mu.Unlock()
				}
			}
		}
	}
}

func listenAll(ctx context.Context, pairs []*pair) *receiver {
	r := &receiver{}
	var ready sync.WaitGroup
	for _, p := range pairs {
		ready.Add(1)
		go r.listen(ctx, p.b, &ready)
	}
	ready.Wait()
	return r
}

func throughput(ctx context.Context, pairs []*pair, o ChatOptions, out io.Writer) error {
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r := listenAll(rctx, pairs)
	var accepted, failed atomic.Int64
	var seq atomic.Int64
	stop := time.Now().Add(o.Duration)
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < o.Senders; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := pairs[i%len(pairs)]
			for time.Now().Before(stop) {
				id := "tp-" + strconv.FormatInt(seq.Add(1), 10)
				if _, err := p.a.Send(ctx, p.conv, id, "throughput", 0); err != nil {
					failed.Add(1)
					continue
				}
				accepted.Add(1)
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	// Let deliveries drain.
	for deadline := time.Now().Add(10 * time.Second); r.delivered.Load() < accepted.Load() && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	all := time.Since(start)
	fmt.Fprintf(out, "chat throughput, %d senders over %d conversations, %v: accepted %d (%.0f msgs/s), delivered %d (%.0f msgs/s end to end), failed %d\n",
		o.Senders, len(pairs), o.Duration, accepted.Load(), float64(accepted.Load())/el.Seconds(),
		r.delivered.Load(), float64(r.delivered.Load())/all.Seconds(), failed.Load())
	return nil
}

func latency(ctx context.Context, pairs []*pair, o ChatOptions, out io.Writer) error {
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r := listenAll(rctx, pairs)
	var sent, failed atomic.Int64
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	stop := time.After(o.Duration)
	work := make(chan int, o.Rate)
	for i := 0; i < 256; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range work {
				p := pairs[n%len(pairs)]
				text := "t=" + strconv.FormatInt(time.Now().UnixNano(), 10)
				if _, err := p.a.Send(ctx, p.conv, "lat-"+strconv.Itoa(n)+"-"+strconv.Itoa(rand.IntN(1<<30)), text, 0); err != nil {
					failed.Add(1)
					continue
				}
				sent.Add(1)
			}
		}()
	}
	// Offer messages at the rate by the clock, not by ticks: a ticker
	// drops ticks when the machine is busy.
	n, dropped := 0, 0
	begin := time.Now()
loop:
	for {
		select {
		case <-stop:
			break loop
		case <-tick.C:
		}
		due := int(time.Since(begin).Seconds() * float64(o.Rate))
		for ; n < due; n++ {
			select {
			case work <- n:
			default:
				dropped++ // the senders are all busy: the offered rate is not met
			}
		}
	}
	offered := time.Since(begin)
	close(work)
	wg.Wait()
	for deadline := time.Now().Add(10 * time.Second); r.delivered.Load() < sent.Load() && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	r.mu.Lock()
	lat := append([]time.Duration(nil), r.lat...)
	r.mu.Unlock()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(q float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(q*float64(len(lat))))]
	}
	fmt.Fprintf(out, "chat latency at %d msgs/s offered for %v: sent %d (%.0f msgs/s), not offered (senders busy) %d, failed %d, delivered %d; send-to-delivered p50 %v p99 %v max %v\n",
		o.Rate, o.Duration, sent.Load(), float64(sent.Load())/offered.Seconds(), dropped, failed.Load(), len(lat),
		pct(0.50).Round(10*time.Microsecond), pct(0.99).Round(10*time.Microsecond), pct(1).Round(10*time.Microsecond))
	return nil
}

// idleConns opens n idle event streams to dc1 and reports the node's
// resident memory per connection.
func idleConns(ctx context.Context, cl *cluster.Cluster, c *client.Client, n int, out io.Writer) error {
	if n <= 0 {
		return nil
	}
	pid, err := pidOf(cl.DCs[0].URL())
	if err != nil {
		return err
	}
	before, err := rss(pid)
	if err != nil {
		return err
	}
	goBefore, err := goMemory(ctx, cl.DCs[0].URL())
	if err != nil {
		return err
	}
	url := "ws" + strings.TrimPrefix(cl.DCs[0].URL(), "http") + "/v1/events?cursor=" + strconv.FormatUint(1<<62, 10)
	h := http.Header{"Authorization": {"Bearer " + c.AccessToken()}}
	var conns []*websocket.Conn
	defer func() {
		for _, ws := range conns {
			ws.CloseNow()
		}
	}()
	start := time.Now()
	for i := 0; i < n; i++ {
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		ws, _, err := websocket.Dial(dctx, url, &websocket.DialOptions{HTTPHeader: h})
		cancel()
		if err != nil {
			fmt.Fprintf(out, "websocket %d: %v (stopping there)\n", i, err)
			break
		}
		conns = append(conns, ws)
	}
	time.Sleep(2 * time.Second) // let the node settle
	after, err := rss(pid)
	if err != nil {
		return err
	}
	goAfter, err := goMemory(ctx, cl.DCs[0].URL())
	if err != nil {
		return err
	}
	n64 := float64(max(1, len(conns)))
	fmt.Fprintf(out, "idle WebSocket event streams held by dc1: %d (opened in %v); Go heap+stacks in use %.1f KiB per connection (%d -> %d MiB); process RSS %d -> %d MiB (%.1f KiB per connection, includes garbage not yet returned)\n",
		len(conns), time.Since(start).Round(time.Millisecond), float64(goAfter-goBefore)/n64/1024, goBefore>>20, goAfter>>20,
		before>>20, after>>20, float64(after-before)/n64/1024)
	return nil
}

// goMemory reads a node's Go heap and stack bytes in use from /metrics.
func goMemory(ctx context.Context, base string) (int64, error) {
	m := metricValues(ctx, base, "go_memstats_heap_inuse_bytes", "go_memstats_stack_inuse_bytes")
	if m[0]+m[1] == 0 {
		return 0, fmt.Errorf("no Go memory figures in %s/metrics", base)
	}
	return int64(m[0] + m[1]), nil
}

// pidOf finds the process listening on a DC's HTTP address through /proc.
func pidOf(url string) (int, error) {
	port := url[strings.LastIndex(url, ":")+1:]
	p, _ := strconv.Atoi(port)
	inodes := map[string]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fs := strings.Fields(line)
			if len(fs) < 10 || fs[3] != "0A" { // LISTEN
				continue
			}
			if _, hexPort, ok := strings.Cut(fs[1], ":"); ok {
				if v, _ := strconv.ParseInt(hexPort, 16, 32); int(v) == p {
					inodes[fs[9]] = true
				}
			}
		}
	}
	procs, _ := os.ReadDir("/proc")
	for _, pr := range procs {
		pid, err := strconv.Atoi(pr.Name())
		if err != nil {
			continue
		}
		fds, _ := os.ReadDir("/proc/" + pr.Name() + "/fd")
		for _, fd := range fds {
			l, _ := os.Readlink("/proc/" + pr.Name() + "/fd/" + fd.Name())
			if strings.HasPrefix(l, "socket:[") && inodes[strings.Trim(l[7:], "[]")] {
				return pid, nil
			}
		}
	}
	return 0, fmt.Errorf("no process listens on %s", url)
}

// rss returns a process's resident memory in bytes.
func rss(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS for %d", pid)
}
