package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"superapp/client"
	"superapp/internal/cluster"
	"superapp/internal/engine"
	"superapp/internal/ledger"
)

// PayOptions configures the payments benchmark.
type PayOptions struct {
	Binary   string
	Dir      string
	Accounts int           // accounts for the batch run
	Batches  int           // concurrent batch senders
	Senders  int           // concurrent HTTP payers
	Duration time.Duration // length of each run
	Rate     int           // payments/s of the latency run
	Postgres string        // baseline database address; empty skips the baseline
	PGConns  int           // connections of the baseline run
	Out      io.Writer
}

const benchOpsToken = "bench-ops-token"

// Pay runs the payments benchmark on a fresh three-DC cluster.
func Pay(ctx context.Context, o PayOptions) error {
	out := o.Out
	// The baseline runs first, alone on the machine, as the ledger does.
	var pgRate float64
	if o.Postgres != "" {
		var err error
		if pgRate, err = pgBaseline(ctx, o.Postgres, o, out); err != nil {
			return fmt.Errorf("postgres baseline: %w", err)
		}
	}
	cl, err := startCluster(ctx, cluster.Options{Binary: o.Binary, Dir: o.Dir, OpsToken: benchOpsToken}, out)
	if err != nil {
		return err
	}
	defer cl.StopAll()
	body, rate, err := batchRun(ctx, cl, o, out)
	if err != nil {
		return fmt.Errorf("batch run: %w", err)
	}
	if pgRate > 0 {
		fmt.Fprintf(out, "ledger batch API vs PostgreSQL baseline: %.1f×\n", rate/pgRate)
	}
	if err := rawBytes(ctx, cl, body, o, out); err != nil {
		return fmt.Errorf("raw publish: %w", err)
	}
	return httpPayments(ctx, cl, o, out)
}

func postBatch(ctx context.Context, url, contentType string, body []byte) (pay struct {
	Accounts  []string `json:"accounts"`
	Transfers []string `json:"transfers"`
}, err error) {
	req, err := http.NewRequestWithContext(ctx, "POST", url+"/v1/ledger/batches", bytes.NewReader(body))
	if err != nil {
		return pay, err
	}
	req.Header.Set("Authorization", "Bearer "+benchOpsToken)
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return pay, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return pay, fmt.Errorf("batch: %d %.200s", resp.StatusCode, raw)
	}
	err = json.Unmarshal(raw, &pay)
	return pay, err
}

// batchRun creates accounts, then sends full batches of transfers for the
// run's duration, in the API's binary form (128-byte records, as
// TigerBeetle's clients send), and returns one batch's bytes for the raw
// comparison.
func batchRun(ctx context.Context, cl *cluster.Cluster, o PayOptions, out io.Writer) ([]byte, float64, error) {
	const binaryBody = "application/octet-stream"
	accs := make([]ledger.Account, o.Accounts)
	for i := range accs {
		accs[i] = ledger.Account{ID: ledger.IDFrom("bench-account-" + strconv.Itoa(i)), Currency: "KRW"}
	}
	for i := 0; i < len(accs); i += ledger.MaxBatch {
		b, err := ledger.EncodeBatch(accs[i:min(i+ledger.MaxBatch, len(accs))], nil)
		if err != nil {
			return nil, 0, err
		}
		if _, err := postBatch(ctx, cl.DCs[i/ledger.MaxBatch%3].URL(), binaryBody, b); err != nil {
			return nil, 0, err
		}
	}
	var okCount, failed, batches atomic.Int64
	var seq atomic.Int64
	var sample []byte
	var sampleOnce sync.Once
	stop := time.Now().Add(o.Duration)
	start := time.Now()
	var wg sync.WaitGroup
	for g := 0; g < o.Batches; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 1))
			ts := make([]ledger.Transfer, ledger.MaxBatch)
			for time.Now().Before(stop) {
				for i := range ts {
					n := seq.Add(1)
					var id ledger.ID
					for k := 0; k < 8; k++ {
						id[15-k] = byte(n >> (8 * k))
					}
					id[0] = 0xbe
					dr := r.IntN(len(accs))
					cr := (dr + 1 + r.IntN(len(accs)-1)) % len(accs)
					ts[i] = ledger.Transfer{ID: id, DebitAccountID: accs[dr].ID, CreditAccountID: accs[cr].ID, Amount: 1, Currency: "KRW"}
				}
				b, err := ledger.EncodeBatch(nil, ts)
				if err != nil {
					failed.Add(1)
					continue
				}
				sampleOnce.Do(func() { sample = b })
				res, err := postBatch(ctx, cl.DCs[g%3].URL(), binaryBody, b)
				if err != nil {
					failed.Add(1)
					continue
				}
				batches.Add(1)
				for _, rc := range res.Transfers {
					if rc == ledger.OK {
						okCount.Add(1)
					}
				}
			}
		}()
	}
	wg.Wait()
	rate := float64(okCount.Load()) / time.Since(start).Seconds()
	fmt.Fprintf(out, "ledger batch API, %d senders of %d-transfer batches over %d accounts, %v: %d batches, %d transfers ok = %.0f transfers/s (%d batches failed)\n",
		o.Batches, ledger.MaxBatch, len(accs), o.Duration, batches.Load(), okCount.Load(), rate, failed.Load())
	return sample, rate, nil
}

// rawBytes publishes the batch API's own bytes (the binary body batchRun
// sends) to an R3 stream.
func rawBytes(ctx context.Context, cl *cluster.Cluster, body []byte, o PayOptions, out io.Writer) error {
	nc, err := nats.Connect("nats://"+cl.DCs[0].NATSAddr, nats.UserInfo(engine.User, cl.Secret))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(64))
	if err != nil {
		return err
	}
	cfg := jetstream.StreamConfig{Name: "BENCH_RAW_LEDGER", Subjects: []string{"benchrawledger.>"}, Replicas: 3,
		Storage: jetstream.FileStorage, MaxMsgSize: 8 << 20}
	if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
		return err
	}
	defer js.DeleteStream(context.Background(), cfg.Name)
	n := 0
	start := time.Now()
	for time.Since(start) < o.Duration/2 {
		// Windows of 16 in flight: each entry is over a megabyte.
		for i := 0; i < 16; i++ {
			if _, err := js.PublishAsync("benchrawledger.x", body); err != nil {
				return err
			}
			n++
		}
		<-js.PublishAsyncComplete()
	}
	el := time.Since(start)
	fmt.Fprintf(out, "raw JetStream async publish of the same batch bytes (%d KiB each), R3: %.0f batches/s = %.0f transfers/s equivalent\n",
		len(body)>>10, float64(n)/el.Seconds(), float64(n*ledger.MaxBatch)/el.Seconds())
	return nil
}

// httpPayments measures single payments through the public API.
func httpPayments(ctx context.Context, cl *cluster.Cluster, o PayOptions, out io.Writer) error {
	const users = 30 // sign-ups are rate limited per address
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	var cs []*client.Client
	for i := 0; i < users; i++ {
		urls := cl.URLs()
		c := client.New(append(urls[i%3:], urls[:i%3]...))
		login := fmt.Sprintf("paybench-%s-%d@example.com", run, i)
		if _, err := c.SignUp(ctx, login, "violet-harbor-tangent-91", "Payer "+strconv.Itoa(i)); err != nil {
			return err
		}
		if _, err := c.Login(ctx, login, "violet-harbor-tangent-91", "bench"); err != nil {
			return err
		}
		if _, err := c.TopUp(ctx, "fund", 1_000_000, "KRW"); err != nil {
			return err
		}
		cs = append(cs, c)
	}
	var seq atomic.Int64
	pay := func(r *rand.Rand, i int) error {
		to := (i + 1 + r.IntN(users-1)) % users
		_, err := cs[i%users].Pay(ctx, "b-"+strconv.FormatInt(seq.Add(1), 10), cs[to].UserID(), 1, "KRW")
		return err
	}
	// Throughput: as fast as the senders go.
	var okN, failN atomic.Int64
	stop := time.Now().Add(o.Duration)
	start := time.Now()
	var wg sync.WaitGroup
	for g := 0; g < o.Senders; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 2))
			for time.Now().Before(stop) {
				if pay(r, g) != nil {
					failN.Add(1)
				} else {
					okN.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	fmt.Fprintf(out, "single payments over HTTP, %d senders, %v: %d ok = %.0f payments/s (%d failed)\n",
		o.Senders, o.Duration, okN.Load(), float64(okN.Load())/time.Since(start).Seconds(), failN.Load())
	// Latency at a fixed rate: request to acknowledged (applied) answer.
	var mu sync.Mutex
	var lat []time.Duration
	work := make(chan int, o.Rate)
	for g := 0; g < 256; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 3))
			for n := range work {
				t0 := time.Now()
				if pay(r, n) == nil {
					d := time.Since(t0)
					mu.Lock()
					lat = append(lat, d)
					mu.Unlock()
				}
			}
		}()
	}
	tick := time.NewTicker(time.Millisecond)
	begin := time.Now()
	n, dropped := 0, 0
	for time.Since(begin) < o.Duration {
		<-tick.C
		for due := int(time.Since(begin).Seconds() * float64(o.Rate)); n < due; n++ {
			select {
			case work <- n:
			default:
				dropped++
			}
		}
	}
	tick.Stop()
	close(work)
	wg.Wait()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(q float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(q*float64(len(lat))))]
	}
	fmt.Fprintf(out, "single payments at %d/s offered for %v: %d acknowledged, %d not offered (senders busy); p50 %v p99 %v max %v\n",
		o.Rate, o.Duration, len(lat), dropped, pct(0.5).Round(10*time.Microsecond), pct(0.99).Round(10*time.Microsecond), pct(1).Round(10*time.Microsecond))
	return nil
}
