package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// ReadModel is one read model as a DC reports it on /readyz.
type ReadModel struct {
	Stream     string `json:"stream"`
	Applied    uint64 `json:"applied"`
	Digest     string `json:"digest"`
	State      string `json:"state,omitempty"`
	Invariants string `json:"invariants,omitempty"`
}

// StreamStatus is one stream as a DC reports it on /readyz.
type StreamStatus struct {
	Name     string   `json:"name"`
	Leader   string   `json:"leader"`
	Replicas []string `json:"replicas"`
	LastSeq  uint64   `json:"last_seq"`
	Error    string   `json:"error,omitempty"`
}

// Readiness is a DC's /readyz answer, with the operator's detail.
type Readiness struct {
	Status     string         `json:"status"`
	DC         string         `json:"dc"`
	Reasons    []string       `json:"reasons"`
	Streams    []StreamStatus `json:"streams"`
	ReadModels []ReadModel    `json:"read_models"`
}

// Readiness asks a DC for its readiness and detail (as an operator: from
// loopback, or with the cluster's ops token).
func (c *Cluster) Readiness(ctx context.Context, name string) (Readiness, error) {
	var rd Readiness
	d := c.DC(name)
	if d == nil {
		return rd, fmt.Errorf("no DC %q", name)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", d.URL()+"/readyz", nil)
	if err != nil {
		return rd, err
	}
	if c.opts.OpsToken != "" {
		req.Header.Set("Authorization", "Bearer "+c.opts.OpsToken)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return rd, err
	}
	defer resp.Body.Close()
	err = json.NewDecoder(resp.Body).Decode(&rd)
	return rd, err
}

// Leader returns the DC whose server leads stream, as a ready DC sees it.
func (c *Cluster) Leader(ctx context.Context, stream string) (string, error) {
	var last error
	for _, d := range c.DCs {
		if !c.Running(d.Name) {
			continue
		}
		rd, err := c.Readiness(ctx, d.Name)
		if err != nil {
			last = err
			continue
		}
		for _, s := range rd.Streams {
			if s.Name == stream && s.Leader != "" {
				return s.Leader, nil
			}
		}
		last = fmt.Errorf("%s: no leader of %s known", d.Name, stream)
	}
	if last == nil {
		last = fmt.Errorf("no DC running")
	}
	return "", last
}

// Views asks every running DC for its read models.
func (c *Cluster) Views(ctx context.Context) (map[string][]ReadModel, error) {
	views := map[string][]ReadModel{}
	for _, d := range c.DCs {
		if !c.Running(d.Name) {
			continue
		}
		rd, err := c.Readiness(ctx, d.Name)
		if err != nil {
			return nil, err
		}
		views[d.Name] = rd.ReadModels
	}
	return views, nil
}

// WaitConverged waits until every running DC reports the same position and
// digest for every read model. It fails at once if two DCs differ at the
// same position: that is a divergence, not a lag.
func (c *Cluster) WaitConverged(ctx context.Context) error {
	var last string
	for {
		views, err := c.Views(ctx)
		if err != nil {
			last = err.Error()
		} else {
			same, diverged := CompareViews(views)
			if diverged != "" {
				return fmt.Errorf("DCs diverged: %s", diverged)
			}
			if same {
				return nil
			}
			b, _ := json.Marshal(views)
			last = string(b)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("DCs did not converge: %s", last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// CompareViews reports whether all views are identical, and describes a
// divergence: the same stream at the same position with other digests.
func CompareViews(views map[string][]ReadModel) (same bool, diverged string) {
	if len(views) == 0 {
		return false, ""
	}
	type key struct {
		stream  string
		applied uint64
	}
	seen := map[key]string{}
	states := map[key]string{}
	positions := map[string]uint64{}
	same = true
	for dc, rms := range views {
		for _, rm := range rms {
			k := key{rm.Stream, rm.Applied}
			if d, ok := seen[k]; ok && d != rm.Digest {
				return false, fmt.Sprintf("%s at %d: %s on %s differs", rm.Stream, rm.Applied, rm.Digest, dc)
			}
			seen[k] = rm.Digest
			if st, ok := states[k]; ok && st != rm.State {
				same = false // a state digest may lag its position a moment
			}
			states[k] = rm.State
			if p, ok := positions[rm.Stream]; ok && p != rm.Applied {
				same = false
			}
			positions[rm.Stream] = rm.Applied
		}
	}
	return same, ""
}
