package engine

import "testing"

// TestRaftTiming: the embedded server runs with the engine's raft timing
// (a nats-server that renamed a variable would not link at all), and the
// timing is one a healthy leader survives.
func TestRaftTiming(t *testing.T) {
	setRaftTiming()
	want := raftTiming
	got := map[string][2]any{
		"heartbeat":    {raftHeartbeat, want.Heartbeat},
		"election min": {raftElectionMin, want.ElectionMin},
		"election max": {raftElectionMax, want.ElectionMax},
		"campaign min": {raftCampaignMin, campaignMin},
		"campaign max": {raftCampaignMax, campaignMax},
	}
	for name, v := range got {
		if v[0] != v[1] {
			t.Errorf("raft %s is %v, want %v", name, v[0], v[1])
		}
	}
	if raftElectionMax <= raftElectionMin {
		t.Errorf("election timeout %v–%v is not a range: followers would campaign at once", raftElectionMin, raftElectionMax)
	}
	if raftElectionMin < 5*raftHeartbeat {
		t.Errorf("election timeout %v is under five heartbeats of %v: a few late heartbeats would depose a leader", raftElectionMin, raftHeartbeat)
	}
	if raftCampaignMax <= raftCampaignMin || raftCampaignMax >= raftElectionMin {
		t.Errorf("campaign after a lost route %v–%v: want a range, shorter than the election timer (%v)", raftCampaignMin, raftCampaignMax, raftElectionMin)
	}
	if raftLostQuorum <= raftElectionMax {
		t.Errorf("a leader steps down after %v without a quorum, before a follower would campaign (%v)", raftLostQuorum, raftElectionMax)
	}
	if raftLostQuorum < 5*raftElectionMax {
		t.Errorf("a leader gives up after %v without answers: late answers under load would depose it (nats-server's default is 10s)", raftLostQuorum)
	}
}
