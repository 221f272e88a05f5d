package engine

import "time"

// Noticing a silent DC. A DC that freezes or whose fibre is cut without a
// reset closes no route, so campaignAfterLoss never runs for it: the
// survivors wait for their raft election timers (0.4–0.8 s after the last
// heartbeat), and when the survivor whose timer fires first holds a
// shorter log than the other (on a busy stream it often does: one of them
// had not yet received the last append), it loses, and the other
// campaigns only 25–200 ms later.
//
// Every DC talks to every other many times a second: each raft group's
// leader sends appends or heartbeats (every 75 ms) to its followers, and
// the followers answer. So the messages that come in over a peer's routes
// are a heartbeat of the whole DC. silenceWatch counts them at every route
// check (quorumInterval): a peer from which nothing came for silentAfter,
// while another peer's messages kept coming (so this node's own reading
// was not what stalled), is silent, and the node campaigns for the groups
// it leads, once per silence, as it does when routes close. The
// threshold is the election timer's floor: a leader the timers would not
// depose is never deposed by this either, and all of a DC's groups must
// go quiet at once, not one.
type silenceWatch struct {
	last    time.Time            // the previous check
	in      map[string]int64     // per peer, messages received so far
	changed map[string]time.Time // per peer, when they last grew
	silent  map[string]bool      // peers found silent, until they talk again
}

const (
	// silentAfter is how long a peer may send nothing before it counts
	// as silent: the raft election timer's floor (raft.go).
	silentAfter = 400 * time.Millisecond
	// talkingWithin is how recently another peer must have sent something
	// for this node to trust its own reading.
	talkingWithin = 2 * quorumInterval
	// lateCheck is a gap between checks that means this node itself was
	// stalled (descheduled, paused): what it counted then proves nothing.
	lateCheck = 5 * quorumInterval / 2
)

// observe takes the messages received so far from each peer (summed over
// its routes) at now, and returns the peers that fell silent since the
// last call.
func (w *silenceWatch) observe(now time.Time, in map[string]int64) (newlySilent []string) {
	if w.in == nil {
		w.in, w.changed, w.silent = map[string]int64{}, map[string]time.Time{}, map[string]bool{}
	}
	stalled := !w.last.IsZero() && now.Sub(w.last) > lateCheck
	w.last = now
	for p, n := range in {
		if prev, ok := w.in[p]; !ok || n != prev || stalled {
			// Talking (or first seen, or this node was the one stalled).
			w.changed[p] = now
			delete(w.silent, p)
		}
		w.in[p] = n
	}
	for p := range w.in {
		if _, ok := in[p]; !ok {
			// No route at all: closed routes are campaignAfterLoss's.
			delete(w.in, p)
			delete(w.changed, p)
			delete(w.silent, p)
		}
	}
	for p, at := range w.changed {
		if w.silent[p] || now.Sub(at) < silentAfter {
			continue
		}
		for q, qat := range w.changed {
			if q != p && now.Sub(qat) < talkingWithin {
				w.silent[p] = true
				newlySilent = append(newlySilent, p)
				break
			}
		}
	}
	return newlySilent
}
