// Package client is the Go client of superapp's HTTP API. It knows every
// data center's endpoint and fails over to a live one; it sends every write
// with an Idempotency-Key that it keeps across retries, so a retried write
// never applies twice; and it carries the position token of its writes to
// its reads, so it reads its own writes on whichever DC answers.
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

// Do sends req and decodes the JSON answer into out (if not nil). It fails
// over between endpoints on network errors and 502/503/504 until ctx ends,
// reusing the same idempotency key, and returns *Error for other non-2xx.
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
	backoff := 50 * time.Millisecond
	var last error
	for attempt := 0; ; attempt++ {
		c.mu.Lock()
		idx := c.preferred
		c.mu.Unlock()
		status, err := c.try(ctx, c.endpoints[idx], req, body, out)
		if err == nil {
			return nil
		}
		last = err
		var apiErr *Error
		if errors.As(err, &apiErr) && !retryable(status) {
			return err
		}
		// The endpoint failed: move to the next one, unless another caller did.
		c.mu.Lock()
		if c.preferred == idx {
			c.preferred = (idx + 1) % len(c.endpoints)
		}
		c.mu.Unlock()
		if (attempt+1)%len(c.endpoints) == 0 {
			select {
			case <-ctx.Done():
				return fmt.Errorf("%s %s: %w (last: %v)", req.Method, req.Path, ctx.Err(), last)
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, time.Second)
		} else if ctx.Err() != nil {
			return fmt.Errorf("%s %s: %w (last: %v)", req.Method, req.Path, ctx.Err(), last)
		}
	}
}

func (c *Client) try(ctx context.Context, base string, req Request, body []byte, out any) (int, error) {
	actx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	hr, err := http.NewRequestWithContext(actx, req.Method, base+req.Path, rd)
	if err != nil {
		return 0, err
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
	c.mu.Lock()
	if tok := c.access; tok != "" && !req.NoAuth {
		hr.Header.Set("Authorization", "Bearer "+tok)
	}
	if pos := c.positionLocked(); pos != "" {
		hr.Header.Set("X-Superapp-Position", pos)
	}
	c.mu.Unlock()
	resp, err := c.hc.Do(hr)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return resp.StatusCode, err
	}
	c.notePosition(resp.Header.Get("X-Superapp-Position"))
	if resp.Header.Get("X-Superapp-Stale") == "true" {
		// The DC is cut off from the others: this answer is the best it
		// has, but the next request goes to another DC.
		c.moveFrom(base)
	}
	if resp.StatusCode >= 300 {
		var eb struct {
			Error Error `json:"error"`
		}
		if json.Unmarshal(raw, &eb) != nil || eb.Error.Code == "" {
			eb.Error = Error{Code: "http_" + strconv.Itoa(resp.StatusCode), Message: strings.TrimSpace(string(raw))}
		}
		eb.Error.Status = resp.StatusCode
		return resp.StatusCode, &eb.Error
	}
	if b, ok := out.(*[]byte); ok {
		*b = raw // the caller wants the bytes as they are
		return resp.StatusCode, nil
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return resp.StatusCode, fmt.Errorf("decode %s %s: %w", req.Method, req.Path, err)
		}
	}
	return resp.StatusCode, nil
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
