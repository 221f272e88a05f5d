// Package saga settles items whose state lives in one stream and whose
// money lives in another: from an item's state alone follows the next
// money step, and a Runner takes those steps until none is left, retrying
// with backoff and taking over items whose owning DC went quiet.
//
// It never decides what a step is (the feature's Next does) and never
// acts for another DC's item before TakeoverAfter unless asked inline:
// steps must be idempotent, because two nodes may still race to take one.
package saga

import (
	"context"
	"hash/fnv"
	"sync"
	"time"
)

// Step is one money step an item's state asks for.
type Step func(ctx context.Context) error

// Config configures a Runner; every func must be set.
type Config[T any] struct {
	// Get returns the item with id, false if there is none (yet).
	Get func(id string) (T, bool)
	// Next is the step the item's state asks for; a nil step and nil
	// error mean it is settled. An error counts as a failed step.
	Next func(T) (Step, error)
	// Owner is the DC that settles the item at once.
	Owner func(T) string
	// Ended reports whether the item's state will not change again, and
	// when it ended.
	Ended func(T) (ended bool, at *time.Time)
	// CaughtUp reports whether this node has applied the item's streams
	// as far as the cluster has; the scan acts only then.
	CaughtUp func() bool
	// RecheckCaughtUp makes the workers check CaughtUp again before each
	// item, needed when Track queues items at once, bypassing the scan.
	RecheckCaughtUp bool
	// Now is the clock, injected so tests need not sleep.
	Now func() time.Time
	// DC is this node's data center.
	DC string
	// Workers is how many items settle at once.
	Workers int
	// ScanInterval is how often the pending items are scanned for due ones.
	ScanInterval time.Duration
	// TakeoverAfter is how long a node other than the owner waits, from
	// an item's last Track, before it acts.
	TakeoverAfter time.Duration
	// Quiet is how long after an item ended it is checked again before it
	// is forgotten: a step another node had in flight when it died is
	// committed (or not) by then.
	Quiet time.Duration
	// Rounds is at most how many steps one Run1 takes.
	Rounds int
}

// Runner takes the money steps of the items it tracks.
type Runner[T any] struct {
	cfg   Config[T]
	queue chan string
	locks [64]sync.Mutex // one item settles one step at a time on this node

	mu sync.Mutex
	// pending is the items tracked and not yet forgotten: bounded by the
	// items under way, those whose step keeps failing, and those that
	// ended within Quiet. It is this node's schedule, not state of the
	// log: after a restart the feature tracks again what may need a step.
	pending map[string]*unsettled
}

type unsettled struct {
	since time.Time // when the item last changed, as told by Track
	next  time.Time // when to look again
	fails int
}

// New returns a Runner; call Run to settle in the background.
func New[T any](cfg Config[T]) *Runner[T] {
	return &Runner[T]{cfg: cfg, queue: make(chan string, 4096), pending: map[string]*unsettled{}}
}

// Track notes that the item id changed and may need a money step after
// the given while; with none it is queued at once if the queue has room.
func (r *Runner[T]) Track(id string, after time.Duration) {
	now := r.cfg.Now()
	r.mu.Lock()
	u := r.pending[id]
	if u == nil {
		u = &unsettled{}
		r.pending[id] = u
	}
	// The item changed: its owner has TakeoverAfter from now.
	u.since, u.next = now, now.Add(after)
	r.mu.Unlock()
	if after > 0 {
		return // the scan finds it
	}
	select {
	case r.queue <- id:
	default:
	}
}

// Run settles queued and due items until ctx ends.
func (r *Runner[T]) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for range r.cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case id := <-r.queue:
					if !r.cfg.RecheckCaughtUp || r.cfg.CaughtUp() {
						_ = r.Run1(ctx, id, false)
					}
				}
			}
		}()
	}
	t := time.NewTicker(r.cfg.ScanInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-t.C:
			if !r.cfg.CaughtUp() {
				continue
			}
			for _, id := range r.due() {
				select {
				case r.queue <- id:
				case <-ctx.Done():
				}
			}
		}
	}
}

// due returns the items to look at now.
func (r *Runner[T]) due() []string {
	now := r.cfg.Now()
	var due []string
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, u := range r.pending {
		if !u.next.After(now) {
			due = append(due, id)
			u.next = now.Add(time.Second) // not again while queued
		}
	}
	return due
}

// Run1 takes the item's money steps until none is left or one fails, at
// most Rounds of them. inline: the caller served the item's change just
// now, so this node acts whoever owns it.
func (r *Runner[T]) Run1(ctx context.Context, id string, inline bool) error {
	h := fnv.New32a()
	h.Write([]byte(id))
	l := &r.locks[h.Sum32()%uint32(len(r.locks))]
	l.Lock()
	defer l.Unlock()
	for range r.cfg.Rounds {
		it, ok := r.cfg.Get(id)
		if !ok {
			return nil
		}
		step, err := r.cfg.Next(it)
		if err == nil && step == nil {
			r.settled(id, it)
			return nil
		}
		if err == nil && !inline && !r.mayAct(id, it) {
			return nil
		}
		if err == nil {
			err = step(ctx)
		}
		if err != nil {
			r.failed(id)
			return err
		}
	}
	return nil
}

// mayAct reports whether this node settles the item: its owner, or anyone
// once it has been left unsettled long enough.
func (r *Runner[T]) mayAct(id string, it T) bool {
	if r.cfg.Owner(it) == r.cfg.DC {
		return true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	u := r.pending[id]
	return u != nil && r.cfg.Now().Sub(u.since) >= r.cfg.TakeoverAfter
}

// settled forgets an item whose money is where its state says, once it
// has ended Quiet ago.
func (r *Runner[T]) settled(id string, it T) {
	now := r.cfg.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	u := r.pending[id]
	if u == nil {
		return
	}
	u.fails = 0
	ended, at := r.cfg.Ended(it)
	if !ended {
		u.next = now.Add(time.Hour) // the item's next change wakes it
		return
	}
	if at != nil && now.Sub(*at) >= r.cfg.Quiet {
		delete(r.pending, id)
		return
	}
	u.next = now.Add(r.cfg.Quiet)
}

// failed backs off: 0.5s, 1s, 2s … up to 15s.
func (r *Runner[T]) failed(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if u := r.pending[id]; u != nil {
		u.fails++
		u.next = r.cfg.Now().Add(min(time.Duration(1<<min(u.fails, 6))*250*time.Millisecond, 15*time.Second))
	}
}
