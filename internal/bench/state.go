package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"superapp/client"
	"superapp/internal/cluster"
	"superapp/internal/engine"
	"superapp/internal/ledger"
)

// StateOptions configures the state benchmark.
type StateOptions struct {
	Binary   string
	Dir      string
	Messages int
	// Transfers is the ledger load written along with the messages.
	Transfers int
	// Retention, if set, is every DC's --log-retention: the run then also
	// waits until the streams are trimmed and rebuilds a wiped DC.
	Retention time.Duration
	// CacheSize is every DC's --cache-size ("" = the default).
	CacheSize string
	// HeapProfiles, if set, is a directory that receives each DC's Go
	// heap profile at every point memory is measured.
	HeapProfiles string
	Out          io.Writer
}

// State measures what keeping state on disk is for: the memory of each DC
// as history grows (after a quarter and after all of the messages), the
// time a DC SIGKILLed and restarted on its own disk needs to be ready, the
// time a wiped DC needs to be ready from a checkpoint, and (with a
// retention) the same once the streams have been trimmed. It then checks
// that every acknowledged message is readable on every DC.
//
// Messages are real chat commands in the log's own entry format, published
// straight to the stream (as group commit writes them); transfers go
// through the ledger's batch API.
func State(ctx context.Context, o StateOptions) error {
	out := o.Out
	var args []string
	if o.Retention > 0 {
		args = append(args, "--log-retention", o.Retention.String())
	}
	if o.CacheSize != "" {
		args = append(args, "--cache-size", o.CacheSize)
	}
	cl, err := startCluster(ctx, cluster.Options{Binary: o.Binary, Dir: o.Dir, Args: args, OpsToken: benchOpsToken, Debug: o.HeapProfiles != ""}, out)
	if err != nil {
		return err
	}
	defer cl.StopAll()
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	users, convs, tokens, err := chatPeople(ctx, cl, run, 100)
	if err != nil {
		return err
	}
	accounts := make([]ledger.Account, 1000)
	for i := range accounts {
		accounts[i] = ledger.Account{ID: ledger.IDFrom("state-" + run + "-" + strconv.Itoa(i)), Currency: "KRW"}
	}
	if b, err := ledger.EncodeBatch(accounts, nil); err != nil {
		return err
	} else if _, err := postBatch(ctx, cl.DCs[0].URL(), "application/octet-stream", b); err != nil {
		return err
	}
	nc, err := nats.Connect("nats://"+cl.DCs[0].NATSAddr, nats.UserInfo(engine.User, cl.Secret))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(publishWindow))
	if err != nil {
		return err
	}
	const perEntry = 512
	written, transfers := 0, 0
	// write brings the log to n messages and n/N of the transfers.
	write := func(n int) error {
		start := time.Now()
		from := written
		entries := (n - from + perEntry - 1) / perEntry
		bytes, err := publishEntries(ctx, js, "chat.batch", run+"-"+strconv.Itoa(from), entries, func(i int) []byte {
			return chatBatch(from+i*perEntry, min(from+(i+1)*perEntry, n), convs, users)
		})
		if err != nil {
			return err
		}
		want := int(int64(o.Transfers) * int64(n) / int64(max(o.Messages, 1)))
		for transfers < want {
			ts := make([]ledger.Transfer, 0, ledger.MaxBatch)
			for ; transfers < want && len(ts) < ledger.MaxBatch; transfers++ {
				dr := transfers % len(accounts)
				cr := (dr + 1 + transfers/len(accounts)%(len(accounts)-1)) % len(accounts)
				ts = append(ts, ledger.Transfer{ID: ledger.IDFrom("state-" + run + "-t" + strconv.Itoa(transfers)),
					DebitAccountID: accounts[dr].ID, CreditAccountID: accounts[cr].ID, Amount: 1, Currency: "KRW"})
			}
			b, err := ledger.EncodeBatch(nil, ts)
			if err != nil {
				return err
			}
			if _, err := postBatch(ctx, cl.DCs[transfers%3].URL(), "application/octet-stream", b); err != nil {
				return err
			}
		}
		written = n
		wctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
		defer cancel()
		if err := cl.WaitConverged(wctx); err != nil {
			return err
		}
		fmt.Fprintf(out, "log at %d messages (%d MiB of chat entries written now) and %d transfers; all three DCs applied and converged %v after this step began\n",
			n, bytes>>20, transfers, time.Since(start).Round(time.Millisecond))
		return nil
	}
	// The block cache fills up to --cache-size as the store grows past it;
	// what must not grow with history is everything else. Memory is read
	// twice at each point: at once, under the load's last buffers, and at
	// rest, once the load's buffers and caches had ten seconds to go.
	type mem struct{ rss, cache, goHeld, malloc uint64 }
	memory := func(label string) []mem {
		var ms []mem
		for _, d := range cl.DCs {
			pid := cl.PID(d.Name)
			r := residentBytes(pid)
			sp := splitResident(pid)
			m := metricValues(ctx, d.URL(), "go_memstats_heap_inuse_bytes", "superapp_state_store_cache_bytes", "superapp_state_store_memtable_bytes",
				"go_memstats_sys_bytes", "go_memstats_heap_released_bytes", "superapp_malloc_inuse_bytes", "superapp_malloc_free_bytes")
			// What the Go runtime holds from the OS and has not given
			// back (an upper bound of its resident part); the rest of the
			// anonymous memory is C malloc's.
			goHeld := m[3] - min(m[4], m[3])
			ms = append(ms, mem{rss: r, cache: m[1], goHeld: goHeld, malloc: sp.Anon - min(goHeld, sp.Anon)})
			fmt.Fprintf(out, "  %s %s: resident %d MiB: Go runtime at most %d MiB (heap in use %d MiB); malloc at least %d MiB (handed out %d MiB: state store block cache %d MiB, memtables %d MiB; kept free %d MiB); files %d MiB\n",
				label, d.Name, r>>20, goHeld>>20, m[0]>>20, ms[len(ms)-1].malloc>>20, m[5]>>20, m[1]>>20, m[2]>>20, m[6]>>20, sp.Files>>20)
			if o.HeapProfiles != "" {
				name := filepath.Join(o.HeapProfiles, strings.NewReplacer(" ", "-", ",", "").Replace(label)+"-"+d.Name+".pb.gz")
				if err := saveHeapProfile(ctx, d.DebugAddr, name); err != nil {
					fmt.Fprintf(out, "  %s: heap profile: %v\n", d.Name, err)
				}
			}
		}
		return ms
	}
	settle := func() {
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Second):
		}
	}
	growth := func(label string, quarter, full []mem) {
		pct := func(a, b uint64) float64 { return 100 * (float64(b)/float64(max(a, 1)) - 1) }
		for i := range full {
			q, f := quarter[i], full[i]
			if q.rss <= q.cache {
				continue
			}
			fmt.Fprintf(out, "  %s %s: resident memory grew %+.1f%% from N/4 to N; without the block cache (bounded by --cache-size) %+.1f%% (%d -> %d MiB); Go runtime %+.1f%%, malloc without the block cache %+.1f%%\n",
				label, cl.DCs[i].Name, pct(q.rss, f.rss), pct(q.rss-q.cache, f.rss-min(f.cache, f.rss)),
				(q.rss-q.cache)>>20, (f.rss-min(f.cache, f.rss))>>20,
				pct(q.goHeld, f.goHeld), pct(q.malloc-min(q.cache, q.malloc), f.malloc-min(f.cache, f.malloc)))
		}
	}
	elections := func() map[string]uint64 { return leaderChanges(ctx, cl.DCs[0].URL()) }
	before := elections()
	if err := write(o.Messages / 4); err != nil {
		return err
	}
	quarter := memory(fmt.Sprintf("after %d messages", o.Messages/4))
	settle()
	quarterRest := memory(fmt.Sprintf("after %d messages, at rest", o.Messages/4))
	if err := write(o.Messages); err != nil {
		return err
	}
	full := memory(fmt.Sprintf("after %d messages", o.Messages))
	settle()
	fullRest := memory(fmt.Sprintf("after %d messages, at rest", o.Messages))
	fmt.Fprintf(out, "leader changes while the DCs wrote and applied at full load: %s\n", changedLeaders(before, elections()))
	growth("at once", quarter, full)
	growth("at rest", quarterRest, fullRest)

	// The victim leads nothing the others need, so only its start is measured.
	victim := cl.DCs[2].Name
	if leader, err := cl.Leader(ctx, "CHAT"); err == nil && leader == victim {
		victim = cl.DCs[1].Name
	}
	restart := func(label string, wipe bool, expect string) error {
		if err := cl.Kill(victim); err != nil {
			return err
		}
		if !strings.Contains(label, "elections") {
			// Whatever the victim led has a new leader before it starts
			// again: the start is measured, not the election.
			if err := waitLeaders(ctx, js, victim); err != nil {
				return err
			}
		}
		if wipe {
			if err := cl.Wipe(victim); err != nil {
				return err
			}
		}
		logStart := logSize(cl.DC(victim).LogPath)
		t0 := time.Now()
		if err := cl.Start(victim); err != nil {
			return err
		}
		wctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
		defer cancel()
		if _, err := cl.WaitReady(wctx, victim); err != nil {
			return err
		}
		took := time.Since(t0)
		how := logLine(cl.DC(victim).LogPath, logStart, expect)
		if how == "" {
			return fmt.Errorf("%s: %s did not log %q: it did not start the way this step measures", label, victim, expect)
		}
		fmt.Fprintf(out, "%s: %s ready %v after its process started\n    %s\n", label, victim, took.Round(time.Millisecond), how)
		return cl.WaitConverged(wctx)
	}
	if err := restart("SIGKILL + restart at once on its own disk (raft elections of what it led included)", false, "resuming from the state store"); err != nil {
		return err
	}
	if err := restart("SIGKILL + restart on its own disk once the others lead", false, "resuming from the state store"); err != nil {
		return err
	}
	checkpoint := func() error {
		start := time.Now()
		var info struct {
			Size      uint64            `json:"size"`
			Positions map[string]uint64 `json:"positions"`
		}
		// A checkpoint that could not be written (503) is asked for
		// again: the next one replaces the DC's last one anyway.
		for attempt := 1; ; attempt++ {
			err := opsPost(ctx, cl.DCs[0].URL()+"/ops/checkpoint", &info)
			if err == nil {
				break
			}
			if attempt == 5 || !strings.Contains(err.Error(), ": 503 ") {
				return err
			}
			fmt.Fprintf(out, "checkpoint not written (%v); asking again\n", err)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(10 * time.Second):
			}
		}
		fmt.Fprintf(out, "checkpoint of %s written: %d MiB in %v (CHAT at %d, LEDGER at %d)\n", cl.DCs[0].Name, info.Size>>20,
			time.Since(start).Round(time.Millisecond), info.Positions["CHAT"], info.Positions["LEDGER"])
		return nil
	}
	if err := checkpoint(); err != nil {
		return err
	}
	if err := restart("disk wiped, started empty", true, "state store loaded from a checkpoint"); err != nil {
		return err
	}
	if o.Retention > 0 {
		fmt.Fprintf(out, "waiting for the streams to trim entries older than %v...\n", o.Retention)
		first, err := waitTrimmed(ctx, js, "CHAT")
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "CHAT now begins at entry %d\n", first)
		if err := checkpoint(); err != nil {
			return err
		}
		if err := restart("disk wiped after trimming, started empty", true, "state store loaded from a checkpoint"); err != nil {
			return err
		}
	}
	return checkMessages(ctx, cl, tokens, convs, o.Messages, out)
}

// chatPeople signs two users up (through the API) and has them share n
// group conversations; it returns the first user's tokens.
func chatPeople(ctx context.Context, cl *cluster.Cluster, run string, n int) (users, convs []string, tokens client.Tokens, err error) {
	a := client.New(cl.URLs())
	b := client.New(cl.URLs())
	for i, c := range []*client.Client{a, b} {
		login := fmt.Sprintf("state-%s-%d@example.com", run, i)
		acc, err := c.SignUp(ctx, login, "violet-harbor-tangent-91", "State "+strconv.Itoa(i))
		if err != nil {
			return nil, nil, tokens, err
		}
		users = append(users, acc.UserID)
		t, err := c.Login(ctx, login, "violet-harbor-tangent-91", "bench")
		if err != nil {
			return nil, nil, tokens, err
		}
		if i == 0 {
			tokens = t
		}
	}
	for i := 0; i < n; i++ {
		title := "state " + strconv.Itoa(i)
		cv, err := a.CreateConversation(ctx, []string{users[1]}, &title)
		if err != nil {
			return nil, nil, tokens, err
		}
		convs = append(convs, cv.ConversationID)
	}
	return users, convs, tokens, nil
}

// checkMessages asks every DC for every conversation's last sequence and
// its newest messages: all of them must hold every message written.
func checkMessages(ctx context.Context, cl *cluster.Cluster, tokens client.Tokens, convs []string, n int, out io.Writer) error {
	// A long run outlives the access token it began with.
	rc := client.New(cl.URLs())
	rc.UseTokens(tokens)
	tokens, err := rc.Refresh(ctx)
	if err != nil {
		return fmt.Errorf("refresh the reader's token: %w", err)
	}
	for _, d := range cl.DCs {
		c := client.New([]string{d.URL()})
		c.UseTokens(tokens)
		total := 0
		for i, conv := range convs {
			cv, err := c.Conversation(ctx, conv)
			if err != nil {
				return fmt.Errorf("%s: conversation %s: %w", d.Name, conv, err)
			}
			want := n / len(convs)
			if i < n%len(convs) {
				want++
			}
			// The group's own "created" system message comes first.
			if got := int(cv.LastSeq) - 1; got != want {
				return fmt.Errorf("%s: conversation %d holds %d messages, want %d: messages lost", d.Name, i, got, want)
			}
			total += want
		}
		fmt.Fprintf(out, "%s holds every one of the %d messages (per-conversation counts checked)\n", d.Name, total)
	}
	return nil
}

func opsPost(ctx context.Context, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, "POST", url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+benchOpsToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %d %.300s", url, resp.StatusCode, raw)
	}
	return json.Unmarshal(raw, v)
}

// residentBytes is a process's resident set size (Linux), 0 if unknown.
func residentBytes(pid int) uint64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// metricsLines reads a DC's /metrics, one line each (none if it cannot).
func metricsLines(ctx context.Context, url string) []string {
	req, err := http.NewRequestWithContext(ctx, "GET", url+"/metrics", nil)
	if err != nil {
		return nil
	}
	req.Header.Set("Authorization", "Bearer "+benchOpsToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var lines []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines
}

// metricValues reads the named gauges from a DC's /metrics (0 for one it
// does not find).
func metricValues(ctx context.Context, url string, names ...string) []uint64 {
	out := make([]uint64, len(names))
	for _, line := range metricsLines(ctx, url) {
		for i, name := range names {
			if rest, ok := strings.CutPrefix(line, name+" "); ok {
				v, _ := strconv.ParseFloat(strings.TrimSpace(rest), 64)
				out[i] = uint64(v)
			}
		}
	}
	return out
}

// changedLeaders says which streams elected a leader between two
// readings of leaderChanges.
func changedLeaders(before, after map[string]uint64) string {
	var changed []string
	for stream, n := range after {
		if n != before[stream] {
			changed = append(changed, fmt.Sprintf("%s %d", stream, n-before[stream]))
		}
	}
	slices.Sort(changed)
	if len(changed) == 0 {
		return "none"
	}
	return strings.Join(changed, ", ")
}

// leaderChanges reads superapp_stream_leader_changes_total per stream
// from a DC's /metrics.
func leaderChanges(ctx context.Context, url string) map[string]uint64 {
	out := map[string]uint64{}
	const prefix = `superapp_stream_leader_changes_total{stream="`
	for _, line := range metricsLines(ctx, url) {
		if rest, ok := strings.CutPrefix(line, prefix); ok {
			stream, val, _ := strings.Cut(rest, `"} `)
			v, _ := strconv.ParseFloat(val, 64)
			out[stream] = uint64(v)
		}
	}
	return out
}

func logSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

// logLine returns the first line after offset in a DC's log that holds
// want.
func logLine(path string, offset int64, want string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return ""
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if strings.Contains(sc.Text(), want) {
			return sc.Text()
		}
	}
	return ""
}

// waitLeaders waits until every stream has a leader other than dc.
func waitLeaders(ctx context.Context, js jetstream.JetStream, dc string) error {
	for {
		ok := true
		names := js.StreamNames(ctx)
		for name := range names.Name() {
			s, err := js.Stream(ctx, name)
			if err != nil {
				ok = false
				break
			}
			info, err := s.Info(ctx)
			if err != nil || info.Cluster == nil || info.Cluster.Leader == "" || info.Cluster.Leader == dc {
				ok = false
				break
			}
		}
		if ok && names.Err() == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// waitTrimmed waits until a stream no longer holds its first entry.
func waitTrimmed(ctx context.Context, js jetstream.JetStream, stream string) (uint64, error) {
	for {
		s, err := js.Stream(ctx, stream)
		if err == nil {
			if info, err := s.Info(ctx); err == nil && info.State.FirstSeq > 1 {
				return info.State.FirstSeq, nil
			}
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// saveHeapProfile writes the Go heap profile served on addr to file.
func saveHeapProfile(ctx context.Context, addr, file string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/debug/pprof/heap", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s", resp.Status)
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
