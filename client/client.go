// Package client is the Go client of superapp's HTTP API. It knows every
// data center's endpoint and fails over to a live one; it sends every write
// with an Idempotency-Key that it keeps across retries, so a retried write
// never applies twice; and it carries the position token of its writes to
// its reads, so it reads its own writes on whichever DC answers.
//
// # Failover strategy
//
// A DC that burns closes its connections, and the client moves on at
// once. A DC that goes silent (frozen, powered off, its fibre cut) answers
// nothing and closes nothing, so the client never waits on one DC alone:
//
//   - Hedged requests. A request goes to the preferred DC. If it has no
//     answer within a hedge delay, the same request, with the same
//     Idempotency-Key, goes to the next DC as well, and so on; the first
//     answer that is not a failure wins and the others are cancelled. The
//     delay follows each DC's observed latency (three times its moving
//     average plus 100 ms, between 250 ms and 1 s), so a healthy DC is
//     rarely hedged and a silent one costs well under a second. Reads are
//     hedged the same way. A write answered twice applied once: the log
//     deduplicates the key and every DC answers it with the same outcome.
//   - Failures move on at once: a network error or a 502/503/504 sends the
//     request to the next DC without waiting for the hedge, also while
//     another DC's attempt is still unanswered (it may be silent); after
//     every DC failed once, it backs off (50 ms doubling to 1 s) until ctx
//     ends.
//   - The DC that answered becomes the preferred one.
//   - The event stream pings its DC every second and moves to the next DC
//     when two seconds pass without an answer, resuming after the last
//     cursor it delivered.
//
// The web app follows the same strategy.
//
// Tests, the fire drill and load tools use it; it shows app and mini-app
// developers how to talk to superapp.
package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Error is an error answered by superapp.
type Error struct {
	Status    int    `json:"-"`
	Code      string `json:"code"`
	Message   string `json:"message"`
	Field     string `json:"field,omitempty"`
	RequestID string `json:"request_id,omitempty"`
}

func (e *Error) Error() string {
	s := fmt.Sprintf("superapp: %d %s: %s", e.Status, e.Code, e.Message)
	if e.Field != "" {
		s += " (field " + e.Field + ")"
	}
	return s
}

// Code returns the error code of err if it is an *Error, else "".
func Code(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// Client talks to one superapp cluster. It is safe for concurrent use.
type Client struct {
	endpoints []string
	hc        *http.Client

	mu        sync.Mutex
	preferred int
	latency   map[string]time.Duration // moving average of each endpoint's answers
	access    string
	refresh   string
	userID    string
	positions map[string]uint64
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sets the HTTP client used for requests.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// New returns a client of the cluster reachable at endpoints (one base URL
// per DC, e.g. "http://127.0.0.1:8080"); the first is tried first.
func New(endpoints []string, opts ...Option) *Client {
	c := &Client{
		endpoints: append([]string(nil), endpoints...),
		hc:        &http.Client{Timeout: 20 * time.Second},
		positions: map[string]uint64{},
		latency:   map[string]time.Duration{},
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Endpoint returns the endpoint the client prefers now.
func (c *Client) Endpoint() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.endpoints[c.preferred]
}

// UserID is the user the client is logged in as.
func (c *Client) UserID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.userID
}

// AccessToken is the current access token.
func (c *Client) AccessToken() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.access
}

// Request is one API call.
type Request struct {
	Method string
	Path   string
	Body   any
	// IdempotencyKey is sent with a write; Do makes one if empty.
	IdempotencyKey string
	// NoAuth leaves the Authorization header out.
	NoAuth bool
	// Raw, if set, is sent as the body instead of Body, as ContentType.
	Raw         []byte
	ContentType string
	// Header holds extra request headers. An Authorization header in it
	// (say, a mini-app's client credentials) replaces the bearer token.
	Header http.Header
	// Location, if set, makes a redirect (3xx) the answer instead of
	// something to follow: it receives where the redirect points.
	Location *string
}

// NewKey returns a random idempotency key.
func NewKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func retryable(status int) bool {
	return status == http.StatusBadGateway || status == http.StatusServiceUnavailable || status == http.StatusGatewayTimeout
}

// Hedging bounds: see the package doc.
const (
	hedgeMin       = 250 * time.Millisecond
	hedgeMax       = time.Second
	hedgeBodyLimit = 256 << 10 // a larger body (an upload) is not sent twice at once
	attemptTimeout = 10 * time.Second
)

// hedgeDelay is how long a request to base may go unanswered before it is
// also sent to the next DC.
func (c *Client) hedgeDelay(base string) time.Duration {
	c.mu.Lock()
	l := c.latency[base]
	c.mu.Unlock()
	if l == 0 {
		return hedgeMin * 2
	}
	return min(max(3*l+100*time.Millisecond, hedgeMin), hedgeMax)
}

// noteLatency folds one answer's time into base's moving average. An
// answer slower than a third of the longest hedge delay counts as that: it
// waited out something (a leader election after a fire), and one such wait
// must not keep the next requests from hedging for a second.
func (c *Client) noteLatency(base string, d time.Duration) {
	d = min(d, hedgeMax/3)
	c.mu.Lock()
	defer c.mu.Unlock()
	if l := c.latency[base]; l > 0 {
		d = (4*l + d) / 5
	}
	c.latency[base] = d
}

// answer is one attempt's result.
type answer struct {
	base   string
	status int
	raw    []byte
	err    error
	stale  bool   // the DC answered while cut off from the others
	loc    string // a redirect's Location, when the request asked for it
}

// final reports whether the answer ends the request: a success, or an
// error another DC would answer the same way.
func (a answer) final() bool {
	var apiErr *Error
	return a.err == nil || (errors.As(a.err, &apiErr) && !retryable(a.status))
}

// Do sends req and decodes the JSON answer into out (if not nil). It hedges
// and fails over between endpoints (see the package doc) until ctx ends,
// always with the same idempotency key, and returns *Error for a non-2xx
// answer other than 502/503/504.
func (c *Client) Do(ctx context.Context, req Request, out any) error {
	body := req.Raw
	if req.Raw == nil && req.Body != nil {
		var err error
		if body, err = json.Marshal(req.Body); err != nil {
			return fmt.Errorf("encode %s %s: %w", req.Method, req.Path, err)
		}
	}
	if req.Method != http.MethodGet && req.IdempotencyKey == "" {
		req.IdempotencyKey = NewKey()
	}
	actx, cancel := context.WithCancel(ctx)
	defer cancel() // the attempts still running lost
	answers := make(chan answer)
	c.mu.Lock()
	n, next := len(c.endpoints), c.preferred
	c.mu.Unlock()
	inflight, failed := 0, 0
	busy := map[string]bool{} // endpoints with an attempt under way
	// launch sends an attempt to the next endpoint that has none under
	// way (false: every one has).
	launch := func() bool {
		c.mu.Lock()
		base := ""
		for i := 0; i < n && base == ""; i++ {
			if b := c.endpoints[(next+i)%len(c.endpoints)]; !busy[b] {
				base, next = b, next+i+1
			}
		}
		c.mu.Unlock()
		if base == "" {
			return false
		}
		busy[base] = true
		inflight++
		go func() {
			start := time.Now()
			a := c.try(actx, base, req, body)
			if a.final() {
				c.noteLatency(base, time.Since(start))
			}
			select {
			case answers <- a:
			case <-actx.Done():
			}
		}()
		return true
	}
	launch()
	hedge := time.NewTimer(c.hedgeDelay(c.Endpoint()))
	defer hedge.Stop()
	backoff := 50 * time.Millisecond
	var last error
	for {
		select {
		case a := <-answers:
			inflight--
			busy[a.base] = false
			if a.final() {
				if !a.stale {
					c.prefer(a.base)
				}
				return decodeAnswer(req, a, out)
			}
			last = a.err
			c.moveFrom(a.base)
			failed++
			if inflight > 0 {
				// Another attempt may still answer, but this failure
				// does not wait for the hedge: a DC not yet asked is
				// asked now (the one still waited on may be silent).
				if len(body) <= hedgeBodyLimit && failed%n != 0 {
					launch()
				}
				continue
			}
			if failed%n == 0 {
				// Every DC failed once: wait before the next round.
				select {
				case <-ctx.Done():
					return fmt.Errorf("%s %s: %w (last: %v)", req.Method, req.Path, ctx.Err(), last)
				case <-time.After(backoff):
				}
				backoff = min(backoff*2, time.Second)
			}
			launch()
			hedge.Reset(c.hedgeDelay(c.Endpoint()))
		case <-hedge.C:
			if len(body) <= hedgeBodyLimit {
				launch()
			}
			hedge.Reset(hedgeMax)
		case <-ctx.Done():
			if last == nil {
				last = errors.New("no answer")
			}
			return fmt.Errorf("%s %s: %w (last: %v)", req.Method, req.Path, ctx.Err(), last)
		}
	}
}

// decodeAnswer decodes a final answer into out.
func decodeAnswer(req Request, a answer, out any) error {
	if a.err != nil {
		return a.err
	}
	if req.Location != nil {
		*req.Location = a.loc
	}
	if b, ok := out.(*[]byte); ok {
		*b = a.raw // the caller wants the bytes as they are
		return nil
	}
	if out != nil && len(a.raw) > 0 {
		if err := json.Unmarshal(a.raw, out); err != nil {
			return fmt.Errorf("decode %s %s: %w", req.Method, req.Path, err)
		}
	}
	return nil
}

func (c *Client) try(ctx context.Context, base string, req Request, body []byte) answer {
	a := answer{base: base}
	actx, cancel := context.WithTimeout(ctx, attemptTimeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	hr, err := http.NewRequestWithContext(actx, req.Method, base+req.Path, rd)
	if err != nil {
		a.err = err
		return a
	}
	switch {
	case req.Raw != nil:
		hr.Header.Set("Content-Type", req.ContentType)
	case body != nil:
		hr.Header.Set("Content-Type", "application/json")
	}
	if req.IdempotencyKey != "" {
		hr.Header.Set("Idempotency-Key", req.IdempotencyKey)
	}
	for k, vs := range req.Header {
		hr.Header[http.CanonicalHeaderKey(k)] = vs
	}
	c.mu.Lock()
	if tok := c.access; tok != "" && !req.NoAuth && hr.Header.Get("Authorization") == "" {
		hr.Header.Set("Authorization", "Bearer "+tok)
	}
	if pos := c.positionLocked(); pos != "" {
		hr.Header.Set("X-Superapp-Position", pos)
	}
	c.mu.Unlock()
	hc := c.hc
	if req.Location != nil {
		noFollow := *c.hc
		noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		hc = &noFollow
	}
	resp, err := hc.Do(hr)
	if err != nil {
		a.err = err
		return a
	}
	defer resp.Body.Close()
	a.status = resp.StatusCode
	if a.raw, a.err = io.ReadAll(io.LimitReader(resp.Body, 64<<20)); a.err != nil {
		return a
	}
	c.notePosition(resp.Header.Get("X-Superapp-Position"))
	if resp.Header.Get("X-Superapp-Stale") == "true" {
		// The DC is cut off from the others: this answer is the best it
		// has, but the next request goes to another DC.
		a.stale = true
		c.moveFrom(base)
	}
	if req.Location != nil && resp.StatusCode >= 300 && resp.StatusCode < 400 {
		a.loc = resp.Header.Get("Location")
		return a
	}
	if resp.StatusCode >= 300 {
		var eb struct {
			Error Error `json:"error"`
		}
		if json.Unmarshal(a.raw, &eb) != nil || eb.Error.Code == "" {
			eb.Error = Error{Code: "http_" + strconv.Itoa(resp.StatusCode), Message: strings.TrimSpace(string(a.raw))}
		}
		eb.Error.Status = resp.StatusCode
		a.err = &eb.Error
	}
	return a
}

// prefer makes base the preferred endpoint.
func (c *Client) prefer(base string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if i := slices.Index(c.endpoints, base); i >= 0 {
		c.preferred = i
	}
}

// Position returns the position token of every write this client made.
func (c *Client) Position() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.positionLocked()
}

func (c *Client) positionLocked() string {
	names := make([]string, 0, len(c.positions))
	for n := range c.positions {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, 0, len(names))
	for _, n := range names {
		parts = append(parts, n+":"+strconv.FormatUint(c.positions[n], 10))
	}
	return strings.Join(parts, ",")
}

func (c *Client) notePosition(h string) {
	if h == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, part := range strings.Split(h, ",") {
		name, num, ok := strings.Cut(part, ":")
		seq, err := strconv.ParseUint(num, 10, 64)
		if ok && err == nil && seq > c.positions[name] {
			c.positions[name] = seq
		}
	}
}

// Observe merges a position token (e.g. another client's Position) into
// this client's, so its next requests see at least those writes.
func (c *Client) Observe(position string) { c.notePosition(position) }

// moveFrom makes the next endpoint preferred if base is preferred now.
func (c *Client) moveFrom(base string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.endpoints[c.preferred] == base && len(c.endpoints) > 1 {
		c.preferred = (c.preferred + 1) % len(c.endpoints)
	}
}

// Endpoint is one DC's public endpoint.
type Endpoint struct {
	DC  string `json:"dc"`
	URL string `json:"url"`
}

// Discover asks the cluster for every DC's endpoint (GET /v1/endpoints)
// and adds those the client did not know, so that a client given one DC
// can fail over to the others. The preferred endpoint does not change.
func (c *Client) Discover(ctx context.Context) ([]Endpoint, error) {
	var out struct {
		Endpoints []Endpoint `json:"endpoints"`
	}
	if err := c.Do(ctx, Request{Method: http.MethodGet, Path: "/v1/endpoints", NoAuth: true}, &out); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ep := range out.Endpoints {
		u := strings.TrimRight(ep.URL, "/")
		if u != "" && !slices.Contains(c.endpoints, u) {
			c.endpoints = append(c.endpoints, u)
		}
	}
	return out.Endpoints, nil
}

// Endpoints lists the endpoints the client knows, the preferred one first.
func (c *Client) Endpoints() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append(slices.Clone(c.endpoints[c.preferred:]), c.endpoints[:c.preferred]...)
}
