package saga

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// clock is a settable time.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// item is a thing to settle: it needs steps more steps, each failing
// with err while err is set; Next fails with nextErr while that is set.
type item struct {
	owner   string
	steps   int
	err     error
	nextErr error
	ended   bool
	endedAt *time.Time
	taken   int // steps tried
}

// fixture is a Runner on DC "a" over items, with its clock and the count
// items.
type fixture struct {
	r        *Runner[*item]
	clock    *clock
	caughtUp atomic.Bool
	scans    atomic.Int64

	mu    sync.Mutex
	items map[string]*item
}

const (
	takeover = 10 * time.Second
	quiet    = 30 * time.Second
)

func newFixture(tb testing.TB) *fixture {
	tb.Helper()
	f := &fixture{clock: &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
		items: map[string]*item{}}
	f.caughtUp.Store(true)
	f.r = New(Config[*item]{
		Get: func(id string) (*item, bool) {
			f.mu.Lock()
			defer f.mu.Unlock()
			it, ok := f.items[id]
			return it, ok
		},
		Next: func(it *item) (Step, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			if it.nextErr != nil {
				return nil, it.nextErr
			}
			if it.steps == 0 {
				return nil, nil
			}
			return func(context.Context) error {
				f.mu.Lock()
				defer f.mu.Unlock()
				it.taken++
				if it.err != nil {
					return it.err
				}
				it.steps--
				return nil
			}, nil
		},
		Owner: func(it *item) string { return it.owner },
		Ended: func(it *item) (bool, *time.Time) {
			f.mu.Lock()
			defer f.mu.Unlock()
			return it.ended, it.endedAt
		},
		CaughtUp: func() bool {
			f.scans.Add(1)
			return f.caughtUp.Load()
		},
		RecheckCaughtUp: true,
		Now:             f.clock.Now,
		DC:              "a",
		Workers:         2,
		ScanInterval:    time.Millisecond,
		TakeoverAfter:   takeover,
		Quiet:           quiet,
		Rounds:          4,
	})
	return f
}

func (f *fixture) add(id string, it *item) {
	f.mu.Lock()
	f.items[id] = it
	f.mu.Unlock()
}

func (f *fixture) set(fn func()) {
	f.mu.Lock()
	fn()
	f.mu.Unlock()
}

func (f *fixture) stepsTaken(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.items[id].taken
}

// pending returns the item's bookkeeping, false once forgotten.
func (f *fixture) pending(id string) (unsettled, bool) {
	f.r.mu.Lock()
	defer f.r.mu.Unlock()
	u, ok := f.r.pending[id]
	if !ok {
		return unsettled{}, false
	}
	return *u, true
}

func TestOwnerActsAtOnce(t *testing.T) {
	f := newFixture(t)
	f.add("x", &item{owner: "a", steps: 2})
	f.r.Track("x", time.Hour)
	if err := f.r.Run1(t.Context(), "x", false); err != nil {
		t.Fatal(err)
	}
	if got := f.stepsTaken("x"); got != 2 {
		t.Fatalf("owner took %d steps, want 2", got)
	}
}

func TestOthersActAfterTakeover(t *testing.T) {
	f := newFixture(t)
	f.add("x", &item{owner: "b", steps: 1})
	f.r.Track("x", time.Hour)

	f.clock.Add(takeover - time.Nanosecond)
	if err := f.r.Run1(t.Context(), "x", false); err != nil {
		t.Fatal(err)
	}
	if got := f.stepsTaken("x"); got != 0 {
		t.Fatalf("non-owner took %d steps before TakeoverAfter", got)
	}

	// A change restarts the owner's time.
	f.r.Track("x", time.Hour)
	f.clock.Add(takeover - time.Nanosecond)
	if err := f.r.Run1(t.Context(), "x", false); err != nil {
		t.Fatal(err)
	}
	if got := f.stepsTaken("x"); got != 0 {
		t.Fatalf("non-owner took %d steps before TakeoverAfter since the last change", got)
	}

	f.clock.Add(time.Nanosecond)
	if err := f.r.Run1(t.Context(), "x", false); err != nil {
		t.Fatal(err)
	}
	if got := f.stepsTaken("x"); got != 1 {
		t.Fatalf("non-owner took %d steps after TakeoverAfter, want 1", got)
	}
}

func TestInlineActsForAnyOwner(t *testing.T) {
	f := newFixture(t)
	f.add("x", &item{owner: "b", steps: 1})
	f.r.Track("x", time.Hour)
	if err := f.r.Run1(t.Context(), "x", true); err != nil {
		t.Fatal(err)
	}
	if got := f.stepsTaken("x"); got != 1 {
		t.Fatalf("inline took %d steps, want 1", got)
	}
}

func TestUntrackedOthersNeverAct(t *testing.T) {
	f := newFixture(t)
	f.add("x", &item{owner: "b", steps: 1})
	f.clock.Add(time.Hour)
	if err := f.r.Run1(t.Context(), "x", false); err != nil {
		t.Fatal(err)
	}
	if got := f.stepsTaken("x"); got != 0 {
		t.Fatalf("took %d steps for an item never tracked here", got)
	}
}

func TestEndedForgottenAfterQuiet(t *testing.T) {
	f := newFixture(t)
	ended := f.clock.Now()
	f.add("x", &item{owner: "a", ended: true, endedAt: &ended})
	f.r.Track("x", 0)

	f.clock.Add(quiet - time.Second)
	if err := f.r.Run1(t.Context(), "x", false); err != nil {
		t.Fatal(err)
	}
	u, ok := f.pending("x")
	if !ok {
		t.Fatal("forgotten before Quiet had passed since it ended")
	}
	if want := f.clock.Now().Add(quiet); !u.next.Equal(want) {
		t.Fatalf("next look at %v, want %v", u.next, want)
	}

	f.clock.Add(time.Second)
	if err := f.r.Run1(t.Context(), "x", false); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.pending("x"); ok {
		t.Fatal("still pending Quiet after it ended")
	}
}

func TestSettledActiveSleeps(t *testing.T) {
	f := newFixture(t)
	f.add("x", &item{owner: "a"})
	f.r.Track("x", 0)
	f.clock.Add(time.Hour)
	if err := f.r.Run1(t.Context(), "x", false); err != nil {
		t.Fatal(err)
	}
	u, ok := f.pending("x")
	if !ok {
		t.Fatal("an item not ended was forgotten")
	}
	if want := f.clock.Now().Add(time.Hour); !u.next.Equal(want) {
		t.Fatalf("next look at %v, want %v", u.next, want)
	}
}

func TestFailuresBackOff(t *testing.T) {
	f := newFixture(t)
	boom := errors.New("boom")
	f.add("x", &item{owner: "a", steps: 1, err: boom})
	f.r.Track("x", 0)
	for i, want := range []time.Duration{
		500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second,
		8 * time.Second, 15 * time.Second, 15 * time.Second,
	} {
		if err := f.r.Run1(t.Context(), "x", false); !errors.Is(err, boom) {
			t.Fatalf("failure %d: Run1 = %v, want %v", i+1, err, boom)
		}
		u, ok := f.pending("x")
		if !ok {
			t.Fatalf("failure %d: a failed item was forgotten", i+1)
		}
		if got := u.next.Sub(f.clock.Now()); got != want {
			t.Fatalf("failure %d: backs off %v, want %v", i+1, got, want)
		}
	}
	if got := f.stepsTaken("x"); got != 7 {
		t.Fatalf("took %d steps, want one per Run1 (7)", got)
	}

	// Success resets the backoff.
	f.set(func() { f.items["x"].err = nil })
	if err := f.r.Run1(t.Context(), "x", false); err != nil {
		t.Fatal(err)
	}
	f.set(func() { f.items["x"].err = boom; f.items["x"].steps = 1 })
	_ = f.r.Run1(t.Context(), "x", false)
	if u, _ := f.pending("x"); u.next.Sub(f.clock.Now()) != 500*time.Millisecond {
		t.Fatalf("after a success backs off %v, want 500ms", u.next.Sub(f.clock.Now()))
	}
}

func TestNextErrorKeepsPending(t *testing.T) {
	f := newFixture(t)
	notYet := errors.New("not yet")
	ended := f.clock.Now()
	f.add("x", &item{owner: "a", steps: 1, nextErr: notYet, ended: true, endedAt: &ended})
	f.r.Track("x", 0)
	f.clock.Add(time.Hour)
	if err := f.r.Run1(t.Context(), "x", false); !errors.Is(err, notYet) {
		t.Fatalf("Run1 = %v, want %v", err, notYet)
	}
	u, ok := f.pending("x")
	if !ok {
		t.Fatal("an item whose next step failed was forgotten")
	}
	if u.fails != 1 {
		t.Fatalf("fails = %d, want 1", u.fails)
	}
	if got := f.stepsTaken("x"); got != 0 {
		t.Fatalf("took %d steps, want 0", got)
	}
}

func TestRunAtMostRounds(t *testing.T) {
	f := newFixture(t)
	f.add("x", &item{owner: "a", steps: 100})
	if err := f.r.Run1(t.Context(), "x", false); err != nil {
		t.Fatal(err)
	}
	if got := f.stepsTaken("x"); got != 4 {
		t.Fatalf("took %d steps, want Rounds (4)", got)
	}
}

func TestRunScansDueItemsWhenCaughtUp(t *testing.T) {
	f := newFixture(t)
	f.caughtUp.Store(false)
	f.add("x", &item{owner: "a", steps: 1})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		f.r.Run(ctx)
		close(done)
	}()
	t.Cleanup(func() { cancel(); <-done })

	// Queued at once, but not caught up: the workers leave it.
	f.r.Track("x", 0)
	waitFor(t, func() bool { return f.scans.Load() >= 5 })
	if got := f.stepsTaken("x"); got != 0 {
		t.Fatalf("took %d steps while not caught up", got)
	}

	f.caughtUp.Store(true)
	waitFor(t, func() bool { return f.stepsTaken("x") == 1 })

	// Tracked for later: the scan leaves it until it is due.
	f.set(func() { f.items["x"].steps = 1 })
	f.r.Track("x", time.Minute)
	n := f.scans.Load()
	waitFor(t, func() bool { return f.scans.Load() >= n+5 })
	if got := f.stepsTaken("x"); got != 1 {
		t.Fatalf("took %d steps before the item was due, want 1", got)
	}
	f.clock.Add(time.Minute)
	waitFor(t, func() bool { return f.stepsTaken("x") == 2 })
}

// waitFor waits until cond holds, failing tb if it does not within a
// generous while.
func waitFor(tb testing.TB, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatal("condition not met")
		}
		time.Sleep(time.Millisecond)
	}
}
