package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"superapp/internal/engine"
	"superapp/internal/store"
)

// DefaultCheckpointInterval is how often a node writes a checkpoint of its
// state store when no interval is configured.
const DefaultCheckpointInterval = 10 * time.Minute

// checkpointInterval is the configured interval, shortened so that a
// checkpoint is always much younger than the oldest entry the streams keep:
// a DC rebuilt from it finds every later entry still in the log.
func (n *Node) checkpointInterval() time.Duration {
	iv := n.cfg.CheckpointInterval
	if iv <= 0 {
		iv = DefaultCheckpointInterval
	}
	if r := n.cfg.Engine.LogRetention; r > 0 {
		iv = min(iv, r/4)
	}
	return max(iv, time.Second)
}

// restoreState decides, before any read model applies, where this node
// starts: from its own store (the usual restart), or from the newest
// checkpoint when its store is empty (a new or wiped disk, or a store that
// was found broken) or behind what the streams still hold (trimmed while
// this DC was away). It waits, not ready, while no checkpoint can help a
// store the log alone cannot bring up to date.
func (n *Node) restoreState(ctx context.Context) error {
	for {
		err := n.tryRestore(ctx)
		if err == nil || ctx.Err() != nil {
			return err
		}
		n.restoreProblem.Store(&err)
		n.log.Error("cannot bring the state store up to date; retrying", "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Second):
		}
	}
}

func (n *Node) tryRestore(ctx context.Context) error {
	var firsts map[string]uint64
	for {
		var err error
		if firsts, err = n.eng.FirstSeqs(ctx); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	empty := true
	var behind []string
	for _, m := range n.machines {
		pos := m.Space().Position().Seq
		if pos > 0 {
			empty = false
		}
		if first := firsts[m.Name()]; first > pos+1 {
			behind = append(behind, fmt.Sprintf("%s holds entries from %d, this store is at %d", m.Name(), first, pos))
		}
	}
	if !empty && len(behind) == 0 {
		n.log.Info("resuming from the state store", "dir", n.db.Dir())
		return nil
	}
	why := n.db.Rebuilt()
	if len(behind) > 0 {
		why = fmt.Sprintf("the log was trimmed past this store (%v)", behind)
	}
	cps, err := n.eng.Checkpoints(ctx)
	if err != nil {
		if len(behind) == 0 {
			n.log.Warn("no checkpoint list; applying the whole log", "err", err)
			return nil
		}
		return fmt.Errorf("%s, and the checkpoints cannot be listed: %w", why, err)
	}
	for _, cp := range cps {
		if cp.Format != store.FormatVersion || !covers(cp, firsts) {
			continue
		}
		start := time.Now()
		positions, err := n.loadCheckpoint(ctx, cp.DC)
		if err != nil {
			n.log.Warn("checkpoint unusable", "from", cp.DC, "err", err)
			continue
		}
		n.log.Info("state store loaded from a checkpoint", "reason", why, "from", cp.DC, "created", cp.Created,
			"bytes", cp.Size, "positions", positions, "took", time.Since(start).Round(time.Millisecond))
		n.restoredFrom.Store(&cp)
		return nil
	}
	if len(behind) > 0 {
		return fmt.Errorf("%s, and no checkpoint reaches the entries the streams still hold", why)
	}
	n.log.Info("no checkpoint; applying the whole log", "reason", why)
	return nil
}

// covers reports whether a checkpoint can be brought up to date from what
// the streams still hold.
func covers(cp engine.CheckpointInfo, firsts map[string]uint64) bool {
	for stream, first := range firsts {
		if cp.Positions[stream]+1 < first {
			return false
		}
	}
	return true
}

func (n *Node) loadCheckpoint(ctx context.Context, dc string) (map[string]uint64, error) {
	rc, err := n.eng.GetCheckpoint(ctx, dc)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return n.db.LoadCheckpoint(rc)
}

// Checkpoint writes a checkpoint of this node's state store into the
// replicated object store, replacing this DC's previous one.
func (n *Node) Checkpoint(ctx context.Context) (engine.CheckpointInfo, error) {
	n.checkpointMu.Lock()
	defer n.checkpointMu.Unlock()
	if !n.started.Load() {
		return engine.CheckpointInfo{}, errors.New("the node is still starting")
	}
	start := time.Now()
	c, err := n.db.Checkpoint()
	if err != nil {
		return engine.CheckpointInfo{}, err
	}
	defer c.Close()
	info := engine.CheckpointInfo{DC: n.cfg.Engine.DC, Positions: c.Positions, Format: store.FormatVersion, Created: time.Now()}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(c.Write(pw)) }()
	info, err = n.eng.PutCheckpoint(ctx, info, pr)
	pr.CloseWithError(errors.New("checkpoint upload ended"))
	if err != nil {
		return info, err
	}
	n.log.Info("checkpoint written", "bytes", info.Size, "positions", info.Positions, "took", time.Since(start).Round(time.Millisecond))
	if r := n.cfg.Engine.LogRetention; r > 0 {
		// Only now may the log drop what the checkpoint holds.
		trimmed, err := n.eng.Trim(ctx, info.Positions, r)
		if err != nil {
			n.log.Warn("trim the streams", "err", err)
		} else if len(trimmed) > 0 {
			n.log.Info("streams trimmed to the retention", "dropped", trimmed)
		}
	}
	return info, nil
}

// CheckpointNow is Checkpoint for the operators' endpoint.
func (n *Node) CheckpointNow(ctx context.Context) (any, error) { return n.Checkpoint(ctx) }

// keepCheckpointing writes a checkpoint every interval while this DC
// leads the checkpoint bucket and can commit.
func (n *Node) keepCheckpointing(ctx context.Context) {
	t := time.NewTicker(n.checkpointInterval())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if n.eng.Isolated() || n.db.Failed() != nil || !n.eng.LeadsCheckpoints(ctx) {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
		if _, err := n.Checkpoint(cctx); err != nil && ctx.Err() == nil {
			n.log.Warn("checkpoint failed; trying again at the next interval", "err", err)
		}
		cancel()
	}
}

// registerStoreMetrics exposes the state store's size and cache on
// /metrics.
func registerStoreMetrics(reg *prometheus.Registry, db *store.DB) {
	gauge := func(name, help string, v func(store.Stats) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return v(db.Stats()) })
	}
	counter := func(name, help string, v func(store.Stats) float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return v(db.Stats()) })
	}
	reg.MustRegister(
		gauge("superapp_state_store_disk_bytes", "Bytes the state store uses on disk.", func(s store.Stats) float64 { return float64(s.DiskBytes) }),
		gauge("superapp_state_store_cache_bytes", "Bytes of the state store's block cache in use (at most --cache-size).", func(s store.Stats) float64 { return float64(s.CacheBytes) }),
		gauge("superapp_state_store_memtable_bytes", "Bytes of writes not yet flushed into tables.", func(s store.Stats) float64 { return float64(s.MemtableBytes) }),
		gauge("superapp_malloc_inuse_bytes", "Bytes C malloc has handed out (the state store's block cache and memtables, with cgo).", func(s store.Stats) float64 { return float64(s.MallocInUse) }),
		gauge("superapp_malloc_free_bytes", "Free bytes C malloc keeps in its arenas (partly given back to the system).", func(s store.Stats) float64 { return float64(s.MallocFree) }),
		counter("superapp_state_store_cache_hits_total", "Block cache hits.", func(s store.Stats) float64 { return float64(s.CacheHits) }),
		counter("superapp_state_store_cache_misses_total", "Block cache misses.", func(s store.Stats) float64 { return float64(s.CacheMisses) }),
	)
}

// leaderChanges is superapp_stream_leader_changes_total: per stream, the
// leaders it elected since this node started. A stream whose count moves
// while no DC failed had a spurious election (writes to it stalled).
type leaderChanges struct {
	eng  *engine.Engine
	desc *prometheus.Desc
}

func newLeaderChanges(eng *engine.Engine) *leaderChanges {
	return &leaderChanges{eng: eng, desc: prometheus.NewDesc("superapp_stream_leader_changes_total",
		"Leaders each stream elected since this node started (its first included).", []string{"stream"}, nil)}
}

func (c *leaderChanges) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *leaderChanges) Collect(ch chan<- prometheus.Metric) {
	counts := c.eng.LeaderChanges()
	for _, spec := range engine.Streams {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(counts[spec.Name]), spec.Name)
	}
}
