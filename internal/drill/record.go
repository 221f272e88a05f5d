package drill

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Features the drill drives and reports on ("oauth" is Login with
// superapp: see oauth.go for why it has a key of its own).
var Features = []string{"identity", "chat", "pay", "rides", "food", "oauth", "miniapp"}

// featureOf names the feature a request path belongs to.
func featureOf(path string) string {
	switch {
	case strings.HasPrefix(path, "/v1/conversations"), strings.HasPrefix(path, "/v1/sync"), strings.HasPrefix(path, "/v1/events"):
		return "chat"
	case strings.HasPrefix(path, "/v1/wallet"), strings.HasPrefix(path, "/v1/merchants"):
		return "pay"
	case strings.HasPrefix(path, "/v1/rides"):
		return "rides"
	case strings.HasPrefix(path, "/v1/food"):
		return "food"
	case strings.HasPrefix(path, "/v1/oauth"), strings.HasPrefix(path, "/oidc"):
		return "oauth"
	case strings.HasPrefix(path, "/v1/miniapp"), strings.HasPrefix(path, "/v1/pay-requests"), strings.HasPrefix(path, "/v1/apps"):
		return "miniapp"
	default:
		return "identity"
	}
}

// recorder counts every HTTP attempt per feature per second, and every
// operation's client-visible outage.
type recorder struct {
	start time.Time

	mu      sync.Mutex
	seconds map[string][]Second // per feature, index = second since start
	feats   map[string]*featureCounts
	waits   []wait // writes a user waited for noticeably, to blame on faults
}

// wait is one write a user waited for at least waitNoticed: when the
// wait ended, how long it was and the requests it took.
type wait struct {
	feature  string
	user     int
	end      time.Time
	d        time.Duration
	attempts []Attempt
}

// Attempt is one HTTP request made for a write: where it went, when, and
// what came back.
type Attempt struct {
	DC     string `json:"dc"` // the DC's name, or its host:port
	Method string `json:"method"`
	Path   string `json:"path"`
	AtMS   int64  `json:"at_ms"` // when it was sent, since the write was first sent
	MS     int64  `json:"ms"`    // until its answer's headers or its failure
	Status int    `json:"status,omitempty"`
	Error  string `json:"error,omitempty"`
}

// trace collects the attempts of one write, from its first send to its
// acknowledgement (retries included). The transport finds it in the
// request's context.
type trace struct {
	start    time.Time
	mu       sync.Mutex
	attempts []*traced
}

// traced is an attempt, recorded when it is sent and completed when it
// ends.
type traced struct {
	Attempt
	sent time.Time
	done bool
}

type traceKey struct{}

func withTrace(ctx context.Context, t *trace) context.Context {
	if t == nil {
		return ctx
	}
	return context.WithValue(ctx, traceKey{}, t)
}

// maxTraced bounds a trace: a write retried for a minute makes hundreds of
// attempts, and the first and last ones tell the story.
const maxTraced = 64

// send records an attempt as it is sent.
func (t *trace) send(a Attempt) *traced {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	a.AtMS = now.Sub(t.start).Milliseconds()
	at := &traced{Attempt: a, sent: now}
	if len(t.attempts) == maxTraced {
		t.attempts = slices.Delete(t.attempts, maxTraced/2, maxTraced/2+1)
	}
	t.attempts = append(t.attempts, at)
	return at
}

// end completes an attempt with its answer or failure.
func (t *trace) end(at *traced, status int, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	at.MS, at.Status, at.done = time.Since(at.sent).Milliseconds(), status, true
	if err != nil {
		at.Error = err.Error()
	}
}

// list is the attempts so far; one still under way shows how long it has
// waited, and the error "unanswered".
func (t *trace) list() []Attempt {
	if t == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]Attempt, 0, len(t.attempts))
	for _, at := range t.attempts {
		a := at.Attempt
		if !at.done {
			a.MS, a.Error = time.Since(at.sent).Milliseconds(), "unanswered"
		}
		out = append(out, a)
	}
	return out
}

// waitNoticed is the shortest wait worth keeping: a fault's outage is
// the longest wait that overlapped it.
const waitNoticed = 100 * time.Millisecond

// Second is one second of one feature's attempts.
type Second struct {
	OK     int `json:"ok"`
	Failed int `json:"failed"`
}

type featureCounts struct {
	requests, failedAttempts int64
	acked, failedOps         int64
	writeOutage, readOutage  map[int]time.Duration // per user: the longest
}

func newRecorder() *recorder {
	r := &recorder{start: time.Now(), seconds: map[string][]Second{}, feats: map[string]*featureCounts{}}
	for _, f := range Features {
		r.feats[f] = &featureCounts{writeOutage: map[int]time.Duration{}, readOutage: map[int]time.Duration{}}
	}
	return r
}

func (r *recorder) attempt(feature string, ok bool) {
	sec := int(time.Since(r.start) / time.Second)
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.seconds[feature]
	for len(s) <= sec {
		s = append(s, Second{})
	}
	if ok {
		s[sec].OK++
	} else {
		s[sec].Failed++
	}
	r.seconds[feature] = s
	fc := r.feats[feature]
	fc.requests++
	if !ok {
		fc.failedAttempts++
	}
}

// outage records one finished operation of a user: how long the user
// waited, counting from the first attempt of the first operation that
// did not succeed before it.
func (r *recorder) outage(feature string, user int, write bool, d time.Duration, tr *trace) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fc := r.feats[feature]
	m := fc.readOutage
	if write {
		m = fc.writeOutage
		fc.acked++
		if d >= waitNoticed {
			r.waits = append(r.waits, wait{feature: feature, user: user, end: time.Now(), d: d, attempts: tr.list()})
		}
	}
	m[user] = max(m[user], d)
}

// faultOutage is, per feature, the longest write wait that overlapped the
// window from from to to (seconds since the load began).
func (r *recorder) faultOutage(from, to float64) map[string]int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int64{}
	for _, f := range Features {
		out[f] = 0
	}
	lo, hi := r.start.Add(time.Duration(from*float64(time.Second))), r.start.Add(time.Duration(to*float64(time.Second)))
	for _, w := range r.waits {
		if w.end.After(lo) && w.end.Add(-w.d).Before(hi) {
			out[w.feature] = max(out[w.feature], w.d.Milliseconds())
		}
	}
	return out
}

func (r *recorder) failedOp(feature string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.feats[feature].failedOps++
}

// rate is a feature's success rate over the last n seconds (-1: no attempts).
func (r *recorder) rate(feature string, n int) float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.seconds[feature]
	ok, all := 0, 0
	for i := max(0, len(s)-n); i < len(s); i++ {
		ok += s[i].OK
		all += s[i].OK + s[i].Failed
	}
	if all == 0 {
		return -1
	}
	return float64(ok) / float64(all)
}

// longest, p99 and p50 of the per-user longest outages.
func outageStats(m map[int]time.Duration) (longest, p99, p50 time.Duration) {
	var ds []time.Duration
	for _, d := range m {
		ds = append(ds, d)
	}
	if len(ds) == 0 {
		return 0, 0, 0
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	at := func(q float64) time.Duration { return ds[min(len(ds)-1, int(q*float64(len(ds))))] }
	return ds[len(ds)-1], at(0.99), at(0.5)
}

// transport records every attempt the clients make: a 5xx, a 429 or a
// network error is a failed attempt, anything else an answer. A write's
// attempts also go to its trace.
type transport struct {
	rec  *recorder
	next http.RoundTripper
	// names maps a DC's host:port to its name (else the host is shown).
	names map[string]string
}

// dcNames maps each endpoint's host:port to the name of the DC at the
// same index.
func dcNames(endpoints, names []string) map[string]string {
	out := map[string]string{}
	for i, e := range endpoints {
		if u, err := url.Parse(e); err == nil && i < len(names) {
			out[u.Host] = names[i]
		}
	}
	return out
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	tr, _ := req.Context().Value(traceKey{}).(*trace)
	var at *traced
	if tr != nil {
		a := Attempt{DC: req.URL.Host, Method: req.Method, Path: req.URL.Path}
		if n, ok := t.names[req.URL.Host]; ok {
			a.DC = n
		}
		at = tr.send(a)
	}
	resp, err := t.next.RoundTrip(req)
	ok := err == nil && resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests
	if req.Context().Err() == nil || ok {
		t.rec.attempt(featureOf(req.URL.Path), ok)
	}
	if at != nil {
		status := 0
		if err == nil {
			status = resp.StatusCode
		}
		tr.end(at, status, err)
	}
	return resp, err
}
