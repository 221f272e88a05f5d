package miniapp

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"math/big"
	"strconv"
	"sync"
	"time"

	"superapp/internal/cmdlog"
)

// Webhook request headers, part of the public contract.
const (
	HeaderDeliveryID = "Superapp-Delivery-Id"
	HeaderEvent      = "Superapp-Event"
	HeaderTimestamp  = "Superapp-Timestamp"
	// HeaderSignature is "v1=" and the hex HMAC-SHA256, keyed with the
	// mini-app's webhook secret, of "<timestamp>.<body>".
	HeaderSignature = "Superapp-Signature"
)

// Sender posts one webhook to a mini-app's backend and returns the status
// code it answered. Its errors are short and safe to show the developer.
type Sender interface {
	Send(ctx context.Context, url string, header map[string]string, body []byte) (status int, err error)
}

// Retry is the webhook retry schedule and the delivery worker's pace.
type Retry struct {
	// Base is the wait after the first failed attempt; each next one
	// doubles, up to Max, with ±20% jitter.
	Base, Max time.Duration
	// Attempts is how many attempts are made before giving up.
	Attempts int
	// Lease is how long a node holds a delivery while attempting it; if
	// the node dies, another takes the delivery over after it.
	Lease time.Duration
	// Timeout bounds one attempt (shorter than Lease).
	Timeout time.Duration
	// Tick is how often a node looks for due deliveries (wall time).
	Tick time.Duration
	// Workers bounds the attempts one node makes at once.
	Workers int
}

// DefaultRetry retries for about an hour: 5 s, 10 s, 20 s … up to 15 min
// between attempts, 12 attempts.
var DefaultRetry = Retry{Base: 5 * time.Second, Max: 15 * time.Minute, Attempts: 12, Lease: 20 * time.Second,
	Timeout: 10 * time.Second, Tick: time.Second, Workers: 8}

// WithDefaults is r with DefaultRetry's value for every zero field.
func (r Retry) WithDefaults() Retry {
	d := DefaultRetry
	if r.Base > 0 {
		d.Base = r.Base
	}
	if r.Max > 0 {
		d.Max = r.Max
	}
	if r.Attempts > 0 {
		d.Attempts = r.Attempts
	}
	if r.Lease > 0 {
		d.Lease = r.Lease
	}
	if r.Timeout > 0 {
		d.Timeout = r.Timeout
	}
	if r.Tick > 0 {
		d.Tick = r.Tick
	}
	if r.Workers > 0 {
		d.Workers = r.Workers
	}
	if d.Timeout >= d.Lease {
		d.Timeout = d.Lease / 2
	}
	return d
}

// Backoff is the wait after the n-th failed attempt (n from 1), jittered.
func (r Retry) Backoff(n int) time.Duration {
	d := r.Base
	for i := 1; i < n && d < r.Max; i++ {
		d *= 2
	}
	d = min(d, r.Max)
	// ±20%: many deliveries failing together do not retry together.
	span := int64(d) * 2 / 5
	if span > 0 {
		j, _ := rand.Int(rand.Reader, big.NewInt(span))
		d += time.Duration(j.Int64() - span/2)
	}
	return d
}

// Sign is the signature header value of a webhook body sent at timestamp.
func Sign(secret, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(timestamp))
	m.Write([]byte("."))
	m.Write(body)
	return "v1=" + hex.EncodeToString(m.Sum(nil))
}

// worker delivers due webhooks from this node. Each attempt is preceded
// by a lease command (only one live node wins it) and followed by its
// outcome, both in the log: a node that dies mid-attempt leaves a lease
// that expires, and another node attempts the delivery again with the
// same delivery id.
type worker struct {
	s     *Service
	owner string // this process: a lease held by a dead process is never renewed
	ctx   context.Context
	stopf context.CancelFunc
	done  chan struct{}
	once  sync.Once
	wg    sync.WaitGroup
	sem   chan struct{}

	mu       sync.Mutex
	inflight map[string]bool
	// revokedSeen is how many revocations were announced (or needed none);
	// -1 until the worker read where the log says the last one checked
	// stopped.
	revokedSeen int
}

func newWorker(s *Service) *worker {
	ctx, cancel := context.WithCancel(context.Background())
	return &worker{s: s, owner: s.cfg.DC + "/" + cmdlog.NewID()[:12], ctx: ctx, stopf: cancel, revokedSeen: -1,
		sem: make(chan struct{}, s.cfg.Retry.Workers), inflight: map[string]bool{}}
}

func (w *worker) start() {
	if w.s.cfg.Sender == nil {
		return
	}
	w.once.Do(func() {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			t := time.NewTicker(w.s.cfg.Retry.Tick)
			defer t.Stop()
			for {
				select {
				case <-w.ctx.Done():
					return
				case <-t.C:
					w.round()
				}
			}
		}()
	})
}

func (w *worker) stop() {
	w.stopf()
	w.wg.Wait()
}

// round announces new revocations and starts the due deliveries.
func (w *worker) round() {
	defer func() {
		if p := recover(); p != nil {
			w.s.log.Error("webhook round panicked", "panic", p)
		}
	}()
	w.announceRevocations()
	for _, d := range w.s.state.due(w.s.now(), 4*w.s.cfg.Retry.Workers) {
		w.mu.Lock()
		busy := w.inflight[d.ID]
		w.mu.Unlock()
		if busy {
			continue
		}
		select {
		case w.sem <- struct{}{}:
		default:
			return
		}
		w.mu.Lock()
		w.inflight[d.ID] = true
		w.mu.Unlock()
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			defer func() {
				<-w.sem
				w.mu.Lock()
				delete(w.inflight, d.ID)
				w.mu.Unlock()
			}()
			defer func() {
				if p := recover(); p != nil {
					w.s.log.Error("webhook delivery panicked", "delivery", d.ID, "panic", p)
				}
			}()
			w.deliver(d)
		}()
	}
}

// announceRevocations turns revoked grants into grant.revoked deliveries,
// reading only the revocations since the last round. Every node may do it:
// the command's id follows from the grant.
func (w *worker) announceRevocations() {
	if w.revokedSeen < 0 {
		w.revokedSeen = w.s.state.revocationsChecked(w.s.state.space)
	}
	from := w.revokedSeen
	gs, next := w.s.cfg.OAuth.State().RevokedSince(from)
	for i, g := range gs {
		if !w.s.state.revokeAnnounced(g.ID) && w.s.hasWebhook(g.ClientID) {
			ctx, cancel := context.WithTimeout(w.ctx, 10*time.Second)
			_, err := w.s.sub.Submit(ctx, cmdlog.Write{ID: "grant-revoked/" + g.ID}, kindRevoked, "",
				revokedCmd{GrantID: g.ID, ClientID: g.ClientID, UserID: g.UserID, Reason: g.RevokeReason})
			cancel()
			if err != nil {
				// The log is busy or gone: the next round resumes here.
				w.revokedSeen = next - len(gs) + i
				w.recordChecked(from)
				return
			}
		}
	}
	w.revokedSeen = next
	w.recordChecked(from)
}

// recordChecked writes how far the revocations are checked when this
// round got further than from, so that a worker started later (on any
// node) begins there: start-up work does not grow with the revocations
// ever made. Every node may write it; the id makes it once per count.
func (w *worker) recordChecked(from int) {
	if w.revokedSeen <= from {
		return
	}
	ctx, cancel := context.WithTimeout(w.ctx, 10*time.Second)
	defer cancel()
	_, _ = w.s.sub.Submit(ctx, cmdlog.Write{ID: "revocations-checked/" + strconv.Itoa(w.revokedSeen)}, kindChecked, "", checkedCmd{UpTo: w.revokedSeen})
}

func (w *worker) deliver(d Delivery) {
	s, r := w.s, w.s.cfg.Retry
	now := s.now().UTC()
	lctx, cancel := context.WithTimeout(w.ctx, 10*time.Second)
	_, err := s.sub.Submit(lctx, cmdlog.Write{}, kindLease, "", leaseCmd{DeliveryID: d.ID, Owner: w.owner, DC: s.cfg.DC, Until: now.Add(r.Lease)})
	cancel()
	if err != nil {
		return // another node holds it, or it is not due: nothing to do
	}
	a := Attempt{At: now, DC: s.cfg.DC}
	ok := false
	cl, found := s.cfg.OAuth.State().Client(d.ClientID)
	secret, _, serr := s.WebhookSecret(d.ClientID)
	switch {
	case !found || cl.WebhookURL == "":
		a.Error = "no webhook URL registered"
	case serr != nil:
		return // keys not loaded: the lease expires and the delivery is tried again
	default:
		body := d.Body()
		ts := strconv.FormatInt(now.Unix(), 10)
		hdr := map[string]string{
			HeaderDeliveryID: d.ID, HeaderEvent: d.Event, HeaderTimestamp: ts, HeaderSignature: Sign(secret, ts, body),
		}
		actx, acancel := context.WithTimeout(w.ctx, r.Timeout)
		start := time.Now()
		status, err := s.cfg.Sender.Send(actx, cl.WebhookURL, hdr, body)
		acancel()
		a.DurationMS = time.Since(start).Milliseconds()
		if w.ctx.Err() != nil {
			return // shutting down: the lease expires and another node retries
		}
		a.StatusCode = status
		if err != nil {
			a.Error = err.Error()
		}
		ok = err == nil && status >= 200 && status < 300
	}
	c := attemptCmd{DeliveryID: d.ID, Owner: w.owner, Attempt: a, Delivered: ok}
	if n := len(d.Attempts) + 1; !ok && n < r.Attempts {
		next := s.now().UTC().Add(r.Backoff(n))
		c.NextAt = &next
	}
	rctx, rcancel := context.WithTimeout(w.ctx, 15*time.Second)
	defer rcancel()
	if _, err := s.sub.Submit(rctx, cmdlog.Write{}, kindAttempt, "", c); err != nil {
		s.log.Warn("record webhook attempt", "delivery", d.ID, "err", err)
	}
}
