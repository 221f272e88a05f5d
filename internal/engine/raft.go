package engine

import (
	"fmt"
	"sync"
	"time"
	_ "unsafe" // go:linkname: the raft timing has no option

	"github.com/nats-io/nats-server/v2/server" // the variables below live there
)

// Raft timing of every stream's replica group. A surviving DC leads a
// stream only after its election timer fires: with nats-server's defaults
// (heartbeat 1 s, election 4–9 s) a fire stalled writes for 5–12 s. These
// values let a survivor lead within 0.4–0.8 s of the last heartbeat it
// heard, so that a DC that goes silent (a frozen process, a cut fibre:
// nothing closes, only the heartbeats stop) costs clients less than a
// second too; with 0.6–1.2 s the blackout test measured gaps up to 1.7 s.
//
// nats-server keeps them in unexported package variables with no option
// to set them (its own tests shorten them the same way), so they are set
// by go:linkname before the embedded server starts. A nats-server that
// renames or drops one of them fails the build with an undefined symbol;
// TestRaftTiming checks that each took effect and that the timer ranges
// stay ranges.
//
// Why these, and why they are safe:
//   - A follower campaigns when it heard no heartbeat for a random
//     electionMin–electionMax; nats-server has no PreVote, so a follower
//     whose timer fires deposes a healthy leader. Five heartbeats fit in
//     the shortest timeout: a leader is deposed only when five in a row
//     are lost or late (a 400 ms stall of the leader), which on a machine
//     whose cores are saturated (three DCs and a load generator on two
//     cores) did not happen in ten minutes of load
//     (superapp_stream_leader_changes_total stayed flat; README,
//     "Failover within a second").
//   - The random spread (600 ms) is wider than a round trip between DCs,
//     so two followers rarely campaign at once and split the vote.
//   - A leader that heard from no quorum for 10 s (nats-server's
//     lostQuorumInterval) steps down; that stays as it is. A DC cut off
//     from the others already refuses writes at once (the engine watches
//     its routes), and a shorter step-down only adds a way for a leader
//     whose followers answer late under load to give up for nothing.
var raftTiming = struct {
	Heartbeat, ElectionMin, ElectionMax time.Duration
}{
	Heartbeat:   75 * time.Millisecond,
	ElectionMin: 400 * time.Millisecond,
	ElectionMax: 800 * time.Millisecond,
}

//go:linkname raftHeartbeat github.com/nats-io/nats-server/v2/server.hbInterval
var raftHeartbeat time.Duration

//go:linkname raftElectionMin github.com/nats-io/nats-server/v2/server.minElectionTimeout
var raftElectionMin time.Duration

//go:linkname raftElectionMax github.com/nats-io/nats-server/v2/server.maxElectionTimeout
var raftElectionMax time.Duration

//go:linkname raftLostQuorum github.com/nats-io/nats-server/v2/server.lostQuorumInterval
var raftLostQuorum time.Duration

var setRaftTimingOnce sync.Once

// setRaftTiming sets the raft timing, once per process, before the first
// embedded server starts.
func setRaftTiming() {
	setRaftTimingOnce.Do(func() {
		t := raftTiming
		if t.ElectionMax <= t.ElectionMin || t.ElectionMin < 5*t.Heartbeat {
			panic(fmt.Sprintf("engine: raft timing %+v: want election min >= 5 heartbeats and max > min", t))
		}
		raftHeartbeat, raftElectionMin, raftElectionMax = t.Heartbeat, t.ElectionMin, t.ElectionMax
		raftCampaignMin, raftCampaignMax = campaignMin, campaignMax
	})
}

// Elections without waiting for the timer. When the routes to a DC close
// (its process died: the kernel closed its sockets; or its links were
// cut), a follower does not have to wait its election timeout to learn
// that the leader is gone: the node asks every local replica whose
// leader was in that DC to campaign now (campaignAfterLoss). Both
// survivors do, after a random 25–200 ms (nats-server's campaign timeout,
// set here like the rest of the timing), so that one usually asks first
// and wins. A silent DC (frozen, fibre cut without a reset) closes
// nothing: there the messages its routes stop bringing tell, after the
// election timer's floor (silence.go), and the same campaigns follow. A
// route that closes while its leader lives (a flap) costs one needless
// election.
const (
	campaignMin = 25 * time.Millisecond
	campaignMax = 200 * time.Millisecond
)

//go:linkname raftCampaignMin github.com/nats-io/nats-server/v2/server.minCampaignTimeout
var raftCampaignMin time.Duration

//go:linkname raftCampaignMax github.com/nats-io/nats-server/v2/server.maxCampaignTimeout
var raftCampaignMax time.Duration

//go:linkname lookupRaftNode github.com/nats-io/nats-server/v2/server.(*Server).lookupRaftNode
func lookupRaftNode(s *server.Server, group string) server.RaftNode

// metaGroup is nats-server's name for the raft group of the cluster's
// metadata (stream placement, leaders of record).
const metaGroup = "_meta_"

// campaignAfterLoss asks the local replica of every raft group led from a
// DC in gone to campaign now. It returns the groups it asked.
//
// Only one survivor asks: the first by name among this node and the DCs
// it still sees. When both survivors campaigned, now and then both asked
// within a few milliseconds of each other, each voted for itself, and the
// group stayed without a leader for a whole election timeout (measured:
// RIDES elected 1.5 s after a partition, every other stream within
// 0.27 s). The other survivor's election timer still fires if the first
// cannot lead, and if the first holds the shorter log, the other, asked
// for its vote, campaigns itself at once (nats-server does that).
func (e *Engine) campaignAfterLoss(gone map[string]bool) []string {
	self := e.srv.Name()
	for _, p := range e.PeersSeen() {
		if !gone[p] && p < self {
			return nil
		}
	}
	jsz, err := e.srv.Jsz(&server.JSzOptions{Accounts: true, Streams: true, RaftGroups: true})
	if err != nil {
		return nil
	}
	var asked []string
	campaign := func(name, group string) {
		if n := lookupRaftNode(e.srv, group); n != nil && n.Campaign() == nil {
			asked = append(asked, name)
		}
	}
	if jsz.Meta != nil && gone[jsz.Meta.Leader] {
		campaign("meta", metaGroup)
	}
	for _, ad := range jsz.AccountDetails {
		for _, sd := range ad.Streams {
			if sd.Cluster != nil && sd.RaftGroup != "" && gone[sd.Cluster.Leader] {
				campaign(sd.Name, sd.RaftGroup)
			}
		}
	}
	return asked
}
