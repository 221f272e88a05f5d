package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"superapp/internal/cmdlog"
)

// A node's read models are fed from its own DC's replica of each stream,
// with batched direct gets, not from a consumer: an R1 consumer lives on
// one random replica, often in another DC, and when that DC burns the read
// model stalls until a new consumer is placed. The gets are handed to the
// local replica (localGet: over NATS they would go to a random replica),
// which answers also while the stream has no leader, so reads never wait
// on another DC; only a local replica that is catching up itself sends
// the node to the others (fetch).

const (
	followBatch    = 512
	followMaxBytes = 8 << 20
	// followIdlePoll bounds how long a node goes without asking for news
	// when no publish woke it (a lost wake-up, a write of another node
	// that this node's server relayed before storing).
	followIdlePoll = 250 * time.Millisecond
	// fetchGap bounds the wait for the next answer of a batched get. The
	// local replica answers within milliseconds; a request that went to
	// another DC's replica because the local one stepped out for a moment
	// (as followers do while a new leader catches them up) may have gone
	// to a silent DC, and every moment waited here is a moment every write
	// on this node waits for its outcome.
	fetchGap = 150 * time.Millisecond
)

// Follow feeds m every entry of its stream, in order, from the entry after
// the one it applied last, until ctx ends.
func (e *Engine) Follow(ctx context.Context, m *cmdlog.Machine) error {
	spec, ok := specNamed(m.Name())
	if !ok {
		return fmt.Errorf("follow: no stream %q", m.Name())
	}
	// Every publish to the stream's subjects wakes the follower; the
	// entry itself is then read from the local replica once stored.
	wake := make(chan struct{}, 1)
	for _, subj := range spec.Subjects {
		sub, err := e.nc.Subscribe(subj, func(*nats.Msg) {
			select {
			case wake <- struct{}{}:
			default:
			}
		})
		if err != nil {
			return fmt.Errorf("follow %s: %w", spec.Name, err)
		}
		defer sub.Unsubscribe()
	}
	inbox := e.nc.NewRespInbox()
	replies, err := e.nc.SubscribeSync(inbox + ".*")
	if err == nil {
		// The local replica answers at once: the server must know
		// where to.
		err = e.nc.Flush()
	}
	if err != nil {
		return fmt.Errorf("follow %s: %w", spec.Name, err)
	}
	defer replies.Unsubscribe()
	f := &follower{e: e, m: m, name: spec.Name, inbox: inbox, replies: replies}

	// Readiness needs the tail the stream had when following began.
	for {
		info, err := e.streamInfo(ctx, spec.Name)
		if err == nil {
			m.SetTarget(info.State.LastSeq)
			break
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(250 * time.Millisecond):
		}
	}
	go f.watch(ctx)

	retry := time.Duration(0)
	for ctx.Err() == nil {
		if e.faultOf(spec.Name) == FaultLag {
			select {
			case <-ctx.Done():
			case <-time.After(followIdlePoll):
			}
			continue
		}
		n, err := f.fetch(ctx)
		switch {
		case err != nil:
			e.log.Debug("follow fetch", "stream", spec.Name, "err", err)
			retry = min(max(2*retry, 50*time.Millisecond), time.Second)
		case n > 0:
			retry = 0
			continue // more may be waiting
		case retry == 0:
			// Woken, but nothing stored here yet: the local replica may be
			// a moment behind the publish. Look again soon.
			retry = time.Millisecond
		default:
			retry *= 3
		}
		wait := retry
		if wait == 0 || wait > followIdlePoll {
			wait, retry = followIdlePoll, 0
		}
		select {
		case <-ctx.Done():
		case <-wake:
			retry = 0
		case <-time.After(wait):
		}
	}
	return nil
}

type follower struct {
	e       *Engine
	m       *cmdlog.Machine
	name    string
	inbox   string
	replies *nats.Subscription
	n       uint64
}

// fetch asks the local replica for the entries after the applied one and
// applies them. A local replica that has none while the stream is known to
// hold more is catching up itself (the node has just started, or was cut
// off): then any replica is asked, so that the node is ready as soon as
// one holds what it needs, not once its own has caught up.
func (f *follower) fetch(ctx context.Context) (int, error) {
	n, err := f.fetchFrom(ctx, true)
	if n == 0 && err == nil && f.m.Applied() < f.m.Tail() {
		return f.fetchFrom(ctx, false)
	}
	return n, err
}

// fetchFrom asks the local replica (or, not local, any replica over NATS)
// for the entries after the applied one and applies them.
func (f *follower) fetchFrom(ctx context.Context, local bool) (int, error) {
	f.n++
	reply := f.inbox + "." + strconv.FormatUint(f.n, 10)
	get := server.JSApiMsgGetRequest{Seq: f.m.Applied() + 1, Batch: followBatch, MaxBytes: followMaxBytes}
	if !local || !f.e.localGet(f.name, &get, reply) {
		req, _ := json.Marshal(get)
		if err := f.e.nc.PublishRequest("$JS.API.DIRECT.GET."+f.name, reply, req); err != nil {
			return 0, err
		}
	}
	applied := 0
	for {
		// A request can go unanswered (its replica died or stepped out
		// while it was in flight): give up soon and ask again.
		fctx, cancel := context.WithTimeout(ctx, fetchGap)
		msg, err := f.replies.NextMsgWithContext(fctx)
		cancel()
		if err != nil {
			return applied, err
		}
		if msg.Subject != reply {
			continue // a late answer to an earlier request
		}
		switch status := msg.Header.Get("Status"); status {
		case "":
		case "204", "404": // end of batch; nothing (more) stored here
			return applied, nil
		default:
			return applied, fmt.Errorf("direct get: %s %s", status, msg.Header.Get("Description"))
		}
		seq, err := strconv.ParseUint(msg.Header.Get("Nats-Sequence"), 10, 64)
		if err != nil {
			return applied, errors.New("direct get: no sequence")
		}
		if want := f.m.Applied() + 1; seq > want {
			// The streams never delete, so a hole means this replica is
			// missing entries: never skip them; ask again.
			return applied, fmt.Errorf("direct get: got %d, want %d", seq, want)
		}
		pending, _ := strconv.ParseUint(msg.Header.Get("Nats-Num-Pending"), 10, 64)
		f.m.Apply(seq, msg.Data, pending)
		applied++
	}
}

// stallAfter is how long a machine may stay behind the stream's tail
// without progress before the node reports itself not ready.
const stallAfter = 3 * time.Second

// watch compares the machine with the stream's tail and marks it stalled
// while it stays behind without progress.
func (f *follower) watch(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	last := f.m.Applied()
	var behindSince time.Time
	trimmedPast := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		info, err := f.e.streamInfo(ctx, f.name)
		if err != nil {
			continue // no leader to ask right now
		}
		applied := f.m.Applied()
		if trimmedPastApplied(info.State, applied) && !trimmedPast {
			// The entries this node needs next are gone (it was away or
			// behind longer than --log-retention): only a checkpoint can
			// help, and the node loads one as it starts.
			trimmedPast = true
			f.e.log.Error("the stream was trimmed past this node's position: the node restarts to rebuild its state from a checkpoint",
				"stream", f.name, "applied", applied, "stream_first", info.State.FirstSeq)
			f.e.needRebuild(fmt.Sprintf("%s was trimmed past this node's position (applied %d, the stream begins at %d)", f.name, applied, info.State.FirstSeq))
		}
		switch {
		case applied >= info.State.LastSeq || applied > last:
			last, behindSince = applied, time.Time{}
			f.m.SetStalled(false)
		case behindSince.IsZero():
			behindSince = time.Now()
		case time.Since(behindSince) > stallAfter:
			f.e.log.Warn("read model stalled behind the stream", "stream", f.name, "applied", applied, "tail", info.State.LastSeq)
			f.m.SetStalled(true)
		}
	}
}

// trimmedPastApplied reports whether the stream no longer holds the entry
// after applied. A stream emptied by a purge reports its first sequence as
// the one after its last.
func trimmedPastApplied(st jetstream.StreamState, applied uint64) bool {
	return st.FirstSeq > applied+1
}

func specNamed(name string) (StreamSpec, bool) {
	for _, s := range Streams {
		if s.Name == name {
			return s, true
		}
	}
	return StreamSpec{}, false
}
