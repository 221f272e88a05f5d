package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/time/rate"

	"superapp/internal/cmdlog"
)

// Checkpoints are kept in CheckpointBucket, one object per DC named
// "state-<dc>", replaced by the DC's next one. Their positions travel in
// the object's metadata, so choosing one needs no download.

// CheckpointInfo describes a stored checkpoint.
type CheckpointInfo struct {
	DC        string            `json:"dc"`
	Positions map[string]uint64 `json:"positions"`
	Format    int               `json:"format"`
	Created   time.Time         `json:"created"`
	Size      uint64            `json:"size"`
}

const checkpointPrefix = "state-"

// PutCheckpoint stores this DC's checkpoint, read from r, in place of its
// previous one; it returns once every chunk is committed on a quorum.
func (e *Engine) PutCheckpoint(ctx context.Context, info CheckpointInfo, r io.Reader) (CheckpointInfo, error) {
	o, err := e.objectStore(ctx, CheckpointBucket)
	if err != nil {
		return info, err
	}
	meta := jetstream.ObjectMeta{
		Name: checkpointPrefix + info.DC,
		Metadata: map[string]string{
			"positions": cmdlog.Positions(info.Positions).String(),
			"format":    strconv.Itoa(info.Format),
			"created":   info.Created.UTC().Format(time.RFC3339Nano),
		},
		Opts: &jetstream.ObjectMetaOptions{ChunkSize: checkpointChunk},
	}
	oi, err := o.Put(ctx, meta, &pacedReader{ctx: ctx, r: r, lim: rate.NewLimiter(checkpointRate, checkpointChunk)})
	if err != nil {
		return info, fmt.Errorf("put checkpoint: %w", err)
	}
	info.Size = oi.Size
	return info, nil
}

// Checkpoints lists the stored checkpoints, newest first.
func (e *Engine) Checkpoints(ctx context.Context) ([]CheckpointInfo, error) {
	o, err := e.objectStore(ctx, CheckpointBucket)
	if err != nil {
		return nil, err
	}
	list, err := o.List(ctx)
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list checkpoints: %w", err)
	}
	var out []CheckpointInfo
	for _, oi := range list {
		if !strings.HasPrefix(oi.Name, checkpointPrefix) || oi.Deleted {
			continue
		}
		ci := CheckpointInfo{DC: strings.TrimPrefix(oi.Name, checkpointPrefix), Size: oi.Size}
		ps, err := cmdlog.ParsePositions(oi.Metadata["positions"])
		if err != nil {
			e.log.Warn("checkpoint with unreadable positions", "name", oi.Name, "err", err)
			continue
		}
		ci.Positions = ps
		ci.Format, _ = strconv.Atoi(oi.Metadata["format"])
		ci.Created, _ = time.Parse(time.RFC3339Nano, oi.Metadata["created"])
		out = append(out, ci)
	}
	slices.SortFunc(out, func(a, b CheckpointInfo) int { return b.Created.Compare(a.Created) })
	return out, nil
}

// GetCheckpoint opens the checkpoint of dc.
func (e *Engine) GetCheckpoint(ctx context.Context, dc string) (io.ReadCloser, error) {
	return e.GetObject(ctx, CheckpointBucket, checkpointPrefix+dc)
}

// FirstSeqs returns the first sequence each feature stream still holds
// (1 when nothing was trimmed, the next sequence when the stream is empty
// after trimming).
func (e *Engine) FirstSeqs(ctx context.Context) (map[string]uint64, error) {
	out := map[string]uint64{}
	for _, spec := range Streams {
		info, err := e.streamInfo(ctx, spec.Name)
		if err != nil {
			return nil, fmt.Errorf("stream %s: %w", spec.Name, err)
		}
		first := info.State.FirstSeq
		if info.State.Msgs == 0 {
			first = info.State.LastSeq + 1
		}
		out[spec.Name] = max(first, 1)
	}
	return out, nil
}

// LeadsCheckpoints reports whether this node's server leads the stream of
// the checkpoint bucket: one DC at a time writes the periodic checkpoints
// (the bucket is replicated, so that is enough), and when it burns the
// next leader takes over.
func (e *Engine) LeadsCheckpoints(ctx context.Context) bool {
	info, err := e.streamInfo(ctx, "OBJ_"+CheckpointBucket)
	if err != nil {
		return false
	}
	return info.Cluster == nil || info.Cluster.Leader == "" && e.replicas == 1 || info.Cluster.Leader == e.cfg.DC
}

const (
	checkpointChunk = 1 << 20
	// checkpointRate bounds a checkpoint's upload (bytes/s). The object
	// store publishes chunks without waiting for their acknowledgement
	// (thousands may be in flight): paced, what is in flight stays near
	// the rate times the commit latency, and the upload never starves the
	// features' own writes.
	checkpointRate = 64 << 20
)

// pacedReader fills every Read (the object store makes one chunk of each
// Read, and a pipe's short reads would make thousands of tiny chunks) and
// paces them.
type pacedReader struct {
	ctx context.Context
	r   io.Reader
	lim *rate.Limiter
}

func (p *pacedReader) Read(b []byte) (int, error) {
	if len(b) > checkpointChunk {
		b = b[:checkpointChunk]
	}
	n, err := io.ReadFull(p.r, b)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = io.EOF
	}
	if n > 0 {
		if werr := p.lim.WaitN(p.ctx, n); werr != nil {
			return 0, werr
		}
	}
	return n, err
}

// Trim removes from each feature stream the entries that are both older
// than retention and held by a stored checkpoint (at or below its
// position): a DC rebuilt from that checkpoint needs only the entries
// after it, and no entry leaves the log before some checkpoint holds it.
// It returns how many entries each stream dropped.
func (e *Engine) Trim(ctx context.Context, positions map[string]uint64, retention time.Duration) (map[string]uint64, error) {
	cutoff := time.Now().Add(-retention)
	out := map[string]uint64{}
	for _, spec := range Streams {
		dropped, err := e.trimStream(ctx, spec.Name, positions[spec.Name], cutoff)
		if err != nil {
			return out, fmt.Errorf("trim %s: %w", spec.Name, err)
		}
		if dropped > 0 {
			out[spec.Name] = dropped
		}
	}
	return out, nil
}

// trimAttempt bounds each stream's trim: a JetStream API request whose
// answer is lost (its stream leader moved while it was on the way) is
// otherwise waited on for as long as the caller's context lasts.
const trimAttempt = 10 * time.Second

// trimStream purges one stream below the first entry that is younger
// than cutoff or not held by the checkpoint at position.
func (e *Engine) trimStream(ctx context.Context, stream string, position uint64, cutoff time.Time) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, trimAttempt)
	defer cancel()
	keepFrom := position + 1 // the first entry the checkpoint does not hold
	young, found, err := e.firstSince(ctx, stream, cutoff)
	if err != nil {
		return 0, err
	}
	if found {
		keepFrom = min(keepFrom, young)
	}
	s, err := e.stream(ctx, stream)
	if err != nil {
		return 0, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, err
	}
	if info.State.Msgs == 0 || keepFrom <= info.State.FirstSeq {
		return 0, nil
	}
	if err := s.Purge(ctx, jetstream.WithPurgeSequence(keepFrom)); err != nil {
		return 0, fmt.Errorf("below %d: %w", keepFrom, err)
	}
	return keepFrom - info.State.FirstSeq, nil
}

// firstSince is the sequence of the stream's first entry stored at or
// after t (found false: every entry is older).
func (e *Engine) firstSince(ctx context.Context, stream string, t time.Time) (seq uint64, found bool, err error) {
	req := fmt.Sprintf(`{"start_time":%q}`, t.UTC().Format(time.RFC3339Nano))
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	msg, err := e.nc.RequestWithContext(rctx, "$JS.API.DIRECT.GET."+stream, []byte(req))
	if err != nil {
		return 0, false, err
	}
	switch status := msg.Header.Get("Status"); status {
	case "":
	case "404":
		return 0, false, nil
	default:
		return 0, false, fmt.Errorf("direct get: %s %s", status, msg.Header.Get("Description"))
	}
	seq, err = strconv.ParseUint(msg.Header.Get("Nats-Sequence"), 10, 64)
	return seq, err == nil, err
}
