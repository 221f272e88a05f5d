package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ReplicaStatus is one replica of a stream as its leader sees it.
type ReplicaStatus struct {
	DC      string `json:"dc"`
	Leader  bool   `json:"leader"`
	Current bool   `json:"current"`
	Offline bool   `json:"offline,omitempty"`
	Lag     uint64 `json:"lag"`
	// ActiveMS is how long ago the leader last heard from it.
	ActiveMS int64 `json:"active_ms"`
}

// StreamDetail is every replica of one stream, the leader first.
type StreamDetail struct {
	Name     string          `json:"name"`
	Leader   string          `json:"leader"`
	LastSeq  uint64          `json:"last_seq"`
	Replicas []ReplicaStatus `json:"replicas"`
	// LeaderChanges is how many leaders the stream elected since the
	// asked node started.
	LeaderChanges uint64 `json:"leader_changes"`
	Error         string `json:"error,omitempty"`
}

// Details asks for every stream of the account (feature streams, object
// stores and buckets), all at once.
func (e *Engine) Details(ctx context.Context) []StreamDetail {
	names, err := e.streamNames(ctx)
	if err != nil {
		return []StreamDetail{{Error: err.Error()}}
	}
	out := make([]StreamDetail, len(names))
	elections := e.LeaderChanges()
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := StreamDetail{Name: name, LeaderChanges: elections[name]}
			sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			info, err := e.streamInfo(sctx, name)
			if err != nil {
				d.Error = err.Error()
				out[i] = d
				return
			}
			d.LastSeq = info.State.LastSeq
			if ci := info.Cluster; ci != nil {
				d.Leader = ci.Leader
				if ci.Leader != "" {
					d.Replicas = append(d.Replicas, ReplicaStatus{DC: ci.Leader, Leader: true, Current: true})
				}
				for _, r := range ci.Replicas {
					d.Replicas = append(d.Replicas, ReplicaStatus{DC: r.Name, Current: r.Current, Offline: r.Offline, Lag: r.Lag, ActiveMS: r.Active.Milliseconds()})
				}
			} else {
				d.Leader = e.cfg.DC
				d.Replicas = []ReplicaStatus{{DC: e.cfg.DC, Leader: true, Current: true}}
			}
			out[i] = d
		}()
	}
	wg.Wait()
	return out
}

func (e *Engine) streamNames(ctx context.Context) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	l := e.js.StreamNames(ctx)
	var names []string
	for n := range l.Name() {
		names = append(names, n)
	}
	if err := l.Err(); err != nil {
		return nil, err
	}
	sort.Strings(names)
	return names, nil
}

// StepDownFrom moves the leadership of every stream led by dc to a current
// replica in another DC, as a graceful raft hand-over: writes in flight
// are retried by Append and none is lost. It returns the streams moved.
func (e *Engine) StepDownFrom(ctx context.Context, dc string) ([]string, error) {
	var moved []string
	var errs []error
	for _, d := range e.Details(ctx) {
		if d.Error != "" {
			errs = append(errs, fmt.Errorf("%s: %s", d.Name, d.Error))
			continue
		}
		if d.Leader != dc || len(d.Replicas) < 2 {
			continue
		}
		to := ""
		for _, r := range d.Replicas {
			if r.DC != dc && r.Current && !r.Offline && (to == "" || r.Lag < lagOf(d, to)) {
				to = r.DC
			}
		}
		if to == "" {
			errs = append(errs, fmt.Errorf("%s: no current replica outside %s to take over", d.Name, dc))
			continue
		}
		req, _ := json.Marshal(map[string]any{"placement": map[string]string{"preferred": to}})
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		msg, err := e.nc.RequestWithContext(rctx, fmt.Sprintf("$JS.API.STREAM.LEADER.STEPDOWN.%s", d.Name), req)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", d.Name, err))
			continue
		}
		var resp struct {
			Success bool                `json:"success"`
			Error   *jetstream.APIError `json:"error"`
		}
		if err := json.Unmarshal(msg.Data, &resp); err != nil || !resp.Success {
			errs = append(errs, fmt.Errorf("%s: step down refused: %v %v", d.Name, err, resp.Error))
			continue
		}
		moved = append(moved, d.Name+"→"+to)
	}
	if len(errs) > 0 {
		// Another node may have handed the same stream over meanwhile
		// (the evacuated DC does so itself): only what dc still leads is
		// a failure.
		time.Sleep(250 * time.Millisecond)
		still := map[string]bool{}
		for _, d := range e.Details(ctx) {
			still[d.Name] = d.Leader == dc || d.Error != ""
		}
		var left []error
		for _, err := range errs {
			name, _, _ := strings.Cut(err.Error(), ":")
			if still[name] {
				left = append(left, err)
			}
		}
		errs = left
	}
	return moved, errors.Join(errs...)
}

func lagOf(d StreamDetail, dc string) uint64 {
	for _, r := range d.Replicas {
		if r.DC == dc {
			return r.Lag
		}
	}
	return ^uint64(0)
}

// opsBucket holds operators' decisions every node follows, such as which
// DCs are evacuated.
const opsBucket = "OPS"

func (e *Engine) opsKV(ctx context.Context) (jetstream.KeyValue, error) {
	return e.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: opsBucket, History: 5, Storage: jetstream.FileStorage, Replicas: e.replicas})
}

// SetEvacuated records (on a quorum) that dc is, or is no longer,
// evacuated.
func (e *Engine) SetEvacuated(ctx context.Context, dc string, on bool) error {
	kv, err := e.opsKV(ctx)
	if err != nil {
		return err
	}
	if on {
		_, err = kv.Put(ctx, "evacuated."+dc, []byte(time.Now().UTC().Format(time.RFC3339)))
	} else {
		err = kv.Delete(ctx, "evacuated."+dc)
	}
	return err
}

// WatchEvacuated calls fn with the set of evacuated DCs whenever it
// changes, until ctx ends.
func (e *Engine) WatchEvacuated(ctx context.Context, fn func(map[string]bool)) {
	for ctx.Err() == nil {
		err := func() error {
			actx, cancel := context.WithTimeout(ctx, 5*time.Second)
			kv, err := e.opsKV(actx)
			cancel()
			if err != nil {
				return err
			}
			w, err := kv.Watch(ctx, "evacuated.*")
			if err != nil {
				return err
			}
			defer w.Stop()
			set := map[string]bool{}
			for {
				select {
				case <-ctx.Done():
					return nil
				case u, ok := <-w.Updates():
					if !ok {
						return errors.New("watch ended")
					}
					if u != nil {
						dc := u.Key()[len("evacuated."):]
						if u.Operation() == jetstream.KeyValuePut {
							set[dc] = true
						} else {
							delete(set, dc)
						}
					}
					cp := map[string]bool{}
					for k := range set {
						cp[k] = true
					}
					fn(cp)
				}
			}
		}()
		if err != nil && ctx.Err() == nil {
			e.log.Warn("ops watch: retrying", "err", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// DC is this node's data center.
func (e *Engine) DC() string { return e.cfg.DC }
