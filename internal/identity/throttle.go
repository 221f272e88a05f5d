package identity

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Throttle is a token bucket per key (an account, a client address). It is
// local to a node: an attacker spread over three DCs gets three buckets,
// which still bounds guessing to a few attempts a minute.
type Throttle struct {
	every time.Duration
	burst int
	now   func() time.Time

	mu      sync.Mutex
	buckets map[string]*rate.Limiter
	sweep   time.Time
}

// NewThrottle allows burst events at once, then one per every.
func NewThrottle(every time.Duration, burst int, now func() time.Time) *Throttle {
	return &Throttle{every: every, burst: burst, now: now, buckets: map[string]*rate.Limiter{}}
}

func (t *Throttle) bucket(key string, now time.Time) *rate.Limiter {
	if now.Sub(t.sweep) > time.Minute {
		// Forget buckets that have refilled: they hold no information.
		for k, l := range t.buckets {
			if l.TokensAt(now) >= float64(t.burst) {
				delete(t.buckets, k)
			}
		}
		t.sweep = now
	}
	l, ok := t.buckets[key]
	if !ok {
		l = rate.NewLimiter(rate.Every(t.every), t.burst)
		t.buckets[key] = l
	}
	return l
}

// Wait reports how long key must wait before its next event; 0 means now.
func (t *Throttle) Wait(key string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	tokens := t.bucket(key, now).TokensAt(now)
	if tokens >= 1 {
		return 0
	}
	return time.Duration(math.Ceil((1 - tokens) * float64(t.every)))
}

// Reserve spends one event of key's budget now, if there is one, and
// returns a function that gives it back (for an attempt that turned out
// not to count, like a login with the right password); otherwise it
// reports how long to wait. Spending before the slow work it guards means
// concurrent attempts cannot all pass one check.
func (t *Throttle) Reserve(key string) (refund func(), wait time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	l := t.bucket(key, now)
	r := l.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return nil, d
	}
	return func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		r.CancelAt(t.now())
	}, 0
}

// Allow spends one event if the budget has one and reports how long to wait
// otherwise.
func (t *Throttle) Allow(key string) (bool, time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	l := t.bucket(key, now)
	if l.AllowN(now, 1) {
		return true, 0
	}
	return false, time.Duration(math.Ceil((1 - l.TokensAt(now)) * float64(t.every)))
}
