package engine

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"superapp/internal/cmdlog"
)

// ErrIsolated is returned for a write on a node that is cut off from the
// majority of the cluster: it cannot be committed here, and waiting would
// only hold the client back from a DC that can commit it.
var ErrIsolated = cmdlog.ErrIsolated

// quorumWatch follows how many other DCs the embedded server has routes to.
type quorumWatch struct {
	mu sync.Mutex
	// elected holds, per stream, a channel closed (and dropped) when the
	// stream elects a leader: appends in flight to the old leader are sent
	// again at once. The channel under "" closes at every election.
	elected map[string]chan struct{}
	// elections counts, per stream, the leaders it elected since this
	// node started (the first, when the stream was created or this node
	// found it leaderless, included).
	elections map[string]uint64
	peers     []string     // names of the DCs seen now
	silence   silenceWatch // only the watcher's goroutine uses it
	known     int          // DCs in the cluster besides this one
	isolated  bool
	changed   chan struct{} // closed and replaced on every change of isolated
	onChange  []func(isolated bool)
}

// quorumInterval is how often the route table is read: a cut link is
// noticed within it (when the connection breaks) or after the route's
// missed pings (when packets vanish).
const quorumInterval = 100 * time.Millisecond

func (e *Engine) watchQuorum() {
	q := &e.quorum
	q.known = len(e.cfg.Peers)
	q.changed = make(chan struct{})
	q.elected = map[string]chan struct{}{}
	// Until the first routes are up the node is as cut off as it can be.
	q.isolated = q.known > 0
	if q.known == 0 || e.srv == nil {
		q.isolated = false
		return
	}
	e.quorumDone = make(chan struct{})
	e.quorumStop = make(chan struct{})
	go func() {
		defer close(e.quorumDone)
		t := time.NewTicker(quorumInterval)
		defer t.Stop()
		for {
			e.checkQuorum()
			select {
			case <-e.quorumStop:
				return
			case <-t.C:
			}
		}
	}()
}

func (e *Engine) checkQuorum() {
	rz, err := e.srv.Routez(&server.RoutezOptions{})
	if err != nil {
		return
	}
	seen := map[string]bool{}
	var names []string
	in := map[string]int64{}
	for _, r := range rz.Routes {
		if r.RemoteName == "" {
			continue
		}
		in[r.RemoteName] += r.InMsgs
		if !seen[r.RemoteName] {
			seen[r.RemoteName] = true
			names = append(names, r.RemoteName)
		}
	}
	q := &e.quorum
	silent := q.silence.observe(time.Now(), in)
	q.mu.Lock()
	gone := map[string]bool{}
	for _, p := range q.peers {
		if !seen[p] {
			gone[p] = true
		}
	}
	q.peers = names
	// A majority of the 1+known DCs, this one included.
	isolated := len(names)+1 <= (q.known+1)/2
	var fns []func(bool)
	if isolated != q.isolated {
		q.isolated = isolated
		close(q.changed)
		q.changed = make(chan struct{})
		fns = append(fns, q.onChange...)
	}
	q.mu.Unlock()
	if fns != nil {
		if isolated {
			e.log.Warn("isolated: this data center sees too few others to commit writes", "sees", names)
		} else {
			e.log.Info("quorum regained", "sees", names)
		}
	}
	for _, fn := range fns {
		fn(isolated)
	}
	if len(gone) > 0 && !isolated {
		// The routes to a DC closed: elect its streams' new leaders now,
		// not when the election timers fire (raft.go).
		go func() {
			if asked := e.campaignAfterLoss(gone); len(asked) > 0 {
				e.log.Info("routes to a DC closed: campaigning for its groups now", "gone", slices.Sorted(maps.Keys(gone)), "groups", asked)
			}
		}()
	}
	if len(silent) > 0 && !isolated {
		// A DC went silent with its routes open (silence.go).
		quiet := map[string]bool{}
		for _, p := range silent {
			quiet[p] = true
		}
		go func() {
			if asked := e.campaignAfterLoss(quiet); len(asked) > 0 {
				e.log.Info("a DC went silent: campaigning for its groups now", "silent", silent, "groups", asked)
			}
		}()
	}
}

// Isolated reports whether this node is cut off from the majority of the
// cluster. A node alone (no peers) is never isolated.
func (e *Engine) Isolated() bool {
	e.quorum.mu.Lock()
	defer e.quorum.mu.Unlock()
	return e.quorum.isolated
}

// OnIsolation calls fn (from the watcher's goroutine) whenever Isolated
// changes.
func (e *Engine) OnIsolation(fn func(isolated bool)) {
	e.quorum.mu.Lock()
	defer e.quorum.mu.Unlock()
	e.quorum.onChange = append(e.quorum.onChange, fn)
}

// PeersSeen lists the other DCs this node has a route to.
func (e *Engine) PeersSeen() []string {
	e.quorum.mu.Lock()
	defer e.quorum.mu.Unlock()
	return append([]string(nil), e.quorum.peers...)
}

func (e *Engine) isolationError() error {
	q := &e.quorum
	q.mu.Lock()
	defer q.mu.Unlock()
	return fmt.Errorf("%w: it sees %d of the %d other DCs", ErrIsolated, len(q.peers), q.known)
}

// leaderAdvisories is where JetStream announces each stream's new leader.
const leaderAdvisories = "$JS.EVENT.ADVISORY.STREAM.LEADER_ELECTED.*"

// watchElections ends the attempts of appends in flight whenever a stream
// elects a leader: a proposal the old leader had not committed gets no
// answer, and waiting out the attempt's timeout would add seconds to a
// hand-over that takes milliseconds. Sending again is safe: the entry's
// message id dedupes it.
func (e *Engine) watchElections() error {
	_, err := e.nc.Subscribe(leaderAdvisories, func(m *nats.Msg) {
		stream := strings.TrimPrefix(m.Subject, leaderAdvisories[:len(leaderAdvisories)-1])
		q := &e.quorum
		q.mu.Lock()
		if q.elections == nil {
			q.elections = map[string]uint64{}
		}
		q.elections[stream]++
		for _, name := range []string{stream, ""} {
			if ch, ok := q.elected[name]; ok {
				close(ch)
				delete(q.elected, name)
			}
		}
		q.mu.Unlock()
	})
	return err
}

// LeaderChanges returns, per stream, how many times it elected a leader
// since this node started: a stream that keeps its leader under load
// keeps its count.
func (e *Engine) LeaderChanges() map[string]uint64 {
	e.quorum.mu.Lock()
	defer e.quorum.mu.Unlock()
	out := make(map[string]uint64, len(e.quorum.elections))
	for s, n := range e.quorum.elections {
		out[s] = n
	}
	return out
}

// electionOrIsolation returns a channel closed at stream's next leader
// election (any stream's, for ""), and one closed at the next change of
// isolation. Only the stream's own election ends an append's attempt: the
// other streams the lost DC led elect their leaders one by one, and each
// needless new attempt waited out a backoff.
func (e *Engine) electionOrIsolation(stream string) (elected, isolation <-chan struct{}) {
	q := &e.quorum
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.elected == nil {
		q.elected = map[string]chan struct{}{}
	}
	ch, ok := q.elected[stream]
	if !ok {
		ch = make(chan struct{})
		q.elected[stream] = ch
	}
	return ch, q.changed
}
