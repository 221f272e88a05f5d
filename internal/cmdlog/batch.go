package cmdlog

import (
	"bytes"
	"context"
	"sync"
	"time"
)

const (
	// batchAppenders is how many entries of one stream may be in flight at
	// once.
	batchAppenders = 4
	// maxBatch bounds one entry: commands (below CursorOf's 1<<16) and bytes.
	maxBatch      = 512
	maxBatchBytes = 512 << 10
	// appendTimeout bounds the commit of one entry, through elections.
	appendTimeout = 20 * time.Second
)

type batcher struct {
	once  sync.Once
	queue chan *queued
	stop  chan struct{}
	wg    sync.WaitGroup
}

type queued struct {
	id   string
	data []byte
	done chan appended
}

type appended struct {
	seq uint64
	err error
}

// append queues one encoded envelope and returns the sequence of the entry
// that committed it.
func (s *Submitter) append(ctx context.Context, id string, data []byte) (uint64, error) {
	b := &s.batcher
	b.once.Do(func() {
		b.queue = make(chan *queued, 4*maxBatch)
		b.stop = make(chan struct{})
		for range batchAppenders {
			b.wg.Add(1)
			go s.appender()
		}
	})
	q := &queued{id: id, data: data, done: make(chan appended, 1)}
	select {
	case b.queue <- q:
	case <-b.stop:
		return 0, context.Canceled
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	select {
	case r := <-q.done:
		return r.seq, r.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// Close stops the submitter's appenders; entries in flight finish.
func (s *Submitter) Close() {
	b := &s.batcher
	b.once.Do(func() { b.stop = make(chan struct{}) })
	select {
	case <-b.stop:
	default:
		close(b.stop)
	}
	b.wg.Wait()
}

// appender takes what is queued, up to a batch, and commits it as one
// entry.
func (s *Submitter) appender() {
	b := &s.batcher
	defer b.wg.Done()
	for {
		var first *queued
		select {
		case first = <-b.queue:
		case <-b.stop:
			return
		}
		batch := []*queued{first}
		size := len(first.data)
	fill:
		for len(batch) < maxBatch && size < maxBatchBytes {
			select {
			case q := <-b.queue:
				batch = append(batch, q)
				size += len(q.data)
			default:
				break fill
			}
		}
		s.commit(batch)
	}
}

func (s *Submitter) commit(batch []*queued) {
	ctx, cancel := context.WithTimeout(context.Background(), appendTimeout)
	defer cancel()
	var seq uint64
	var err error
	// The entry's message id dedupes the engine's own retries of this
	// append. It is not the command's id: a refused command may be sent
	// again, and must then be appended again; the machine's outcome index
	// is what makes commands idempotent.
	if len(batch) == 1 {
		seq, err = s.Log.Append(ctx, s.Subject+".cmd", NewID(), batch[0].data)
	} else {
		var buf bytes.Buffer
		buf.WriteByte('[')
		for i, q := range batch {
			if i > 0 {
				buf.WriteByte(',')
			}
			buf.Write(q.data)
		}
		buf.WriteByte(']')
		seq, err = s.Log.Append(ctx, s.Subject+".batch", NewID(), buf.Bytes())
	}
	for _, q := range batch {
		q.done <- appended{seq: seq, err: err}
	}
}
