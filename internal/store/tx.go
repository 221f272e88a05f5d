package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"slices"

	"github.com/cockroachdb/pebble/v2"
)

// Tx is the batch of one stream entry: the writes of every command in the
// entry and the entry's position, committed together or not at all. Reads
// through a Tx see its own writes. Only the goroutine applying the stream
// uses it.
//
// A key written several times in one entry (a conversation's record, once
// per message) reaches the store once, with its last value: the Tx keeps
// its readable writes in a map, last write wins, and puts them into the
// batch at Commit. An entry's writes are few next to the memtable they go
// into, and every version written costs an insert there and a key to
// compact later.
type Tx struct {
	s *Space
	// b is what is committed: blind writes as they come, the others at
	// Commit.
	b *pebble.Batch
	// writes are the writes the Tx reads back (every write but the blind
	// ones), by key within the space; bound: the keys one entry writes.
	writes map[string]write
	// idx indexes writes for Scan, built by the first Scan of the entry
	// and kept current after it (nil until then).
	idx    *pebble.Batch
	after  []func()
	closed bool
	key    []byte // scratch for building keys
}

// write is a pending Set (value) or Delete (del).
type write struct {
	value []byte
	del   bool
}

// Begin starts the batch of the next entry. The space's feature reaches it
// with Tx until Commit or Abort.
func (s *Space) Begin() *Tx {
	s.db.mu.RLock()
	defer s.db.mu.RUnlock()
	tx := &Tx{s: s, b: s.db.p.NewBatch(), writes: map[string]write{}}
	s.tx = tx
	return tx
}

// Tx is the batch of the entry being applied. It panics outside apply:
// only apply writes.
func (s *Space) Tx() *Tx {
	if s.tx == nil {
		panic("store: write to " + string(s.prefix) + " outside apply")
	}
	return s.tx
}

// Commit writes the batch atomically, without fsync: the log is the truth.
func (tx *Tx) Commit() {
	tx.s.tx = nil
	db := tx.s.db
	// Keys in order: neighbours in the entry are neighbours in the
	// memtable, which inserts a key next to the last one cheaply.
	keys := make([]string, 0, len(tx.writes))
	for k := range tx.writes {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		w := tx.writes[k]
		var err error
		if w.del {
			err = tx.b.Delete(tx.scratchKey(k), nil)
		} else {
			err = tx.b.Set(tx.scratchKey(k), w.value, nil)
		}
		if err != nil {
			tx.close()
			db.fail("write "+k, err)
		}
	}
	db.mu.RLock()
	err := tx.b.Commit(pebble.NoSync)
	db.mu.RUnlock()
	tx.close()
	if err != nil {
		db.fail("commit", err)
	}
}

// RunAfterCommit runs the functions registered with AfterCommit.
func (tx *Tx) RunAfterCommit() {
	for _, fn := range tx.after {
		fn()
	}
	tx.after = nil
}

// Abort drops the batch.
func (tx *Tx) Abort() {
	tx.s.tx = nil
	tx.close()
}

func (tx *Tx) close() {
	if !tx.closed {
		tx.closed = true
		_ = tx.b.Close()
		if tx.idx != nil {
			_ = tx.idx.Close()
		}
		tx.writes = nil
	}
}

// scratchKey is the full key of k in the Tx's scratch buffer: valid until
// the next call (Pebble copies keys it keeps).
func (tx *Tx) scratchKey(k string) []byte {
	tx.key = append(append(tx.key[:0], tx.s.prefix...), k...)
	return tx.key
}

// AfterCommit registers fn to run once the batch is committed: a live push
// must not announce what a reader could not yet find.
func (tx *Tx) AfterCommit(fn func()) { tx.after = append(tx.after, fn) }

// Get returns the value of key as of this batch.
func (tx *Tx) Get(key string) ([]byte, bool) {
	if w, ok := tx.writes[key]; ok {
		return bytes.Clone(w.value), !w.del
	}
	tx.s.db.mu.RLock()
	defer tx.s.db.mu.RUnlock()
	return tx.s.db.get(tx.s.db.p, tx.scratchKey(key))
}

// GetJSON decodes the value of key as of this batch into v.
func (tx *Tx) GetJSON(key string, v any) bool {
	raw, ok := tx.Get(key)
	if !ok {
		return false
	}
	tx.s.db.decode(key, raw, v)
	return true
}

// Has reports whether key exists as of this batch.
func (tx *Tx) Has(key string) bool {
	if w, ok := tx.writes[key]; ok {
		return !w.del
	}
	_, ok := tx.Get(key)
	return ok
}

// Set writes value under key.
func (tx *Tx) Set(key string, value []byte) {
	value = bytes.Clone(value)
	if value == nil {
		value = []byte{}
	}
	tx.writes[key] = write{value: value}
	if tx.idx != nil {
		if err := tx.idx.Set(tx.scratchKey(key), value, nil); err != nil {
			tx.s.db.fail("set "+key, err)
		}
	}
}

// SetBlind writes value under key without making it visible to this Tx's
// own reads (Get, Scan): for writes the feature never reads back while
// applying the same entry (a feed entry, a record the feature tracks in
// its own overlay). It costs an append where Set also indexes.
func (tx *Tx) SetBlind(key string, value []byte) {
	// A readable write of the key before this one is overtaken by it.
	delete(tx.writes, key)
	if err := tx.b.Set(tx.scratchKey(key), value, nil); err != nil {
		tx.s.db.fail("set "+key, err)
	}
}

// SetJSON writes v, encoded as JSON, under key.
func (tx *Tx) SetJSON(key string, v any) {
	raw, err := json.Marshal(v)
	if err != nil {
		// Only our own types are stored: this is a programming error.
		panic("store: encode " + key + ": " + err.Error())
	}
	tx.Set(key, raw)
}

// Delete removes key.
func (tx *Tx) Delete(key string) {
	tx.writes[key] = write{del: true}
	if tx.idx != nil {
		if err := tx.idx.Delete(tx.scratchKey(key), nil); err != nil {
			tx.s.db.fail("delete "+key, err)
		}
	}
}

// Scan is Space.Scan as of this batch.
func (tx *Tx) Scan(prefix, start string, reverse bool, fn func(key string, value []byte) bool) {
	tx.s.db.mu.RLock()
	defer tx.s.db.mu.RUnlock()
	if tx.idx == nil {
		tx.idx = tx.s.db.p.NewIndexedBatch()
		for k, w := range tx.writes {
			var err error
			if w.del {
				err = tx.idx.Delete(tx.scratchKey(k), nil)
			} else {
				err = tx.idx.Set(tx.scratchKey(k), w.value, nil)
			}
			if err != nil {
				tx.s.db.fail("index "+k, err)
			}
		}
	}
	it, err := tx.idx.NewIter(nil)
	if err != nil {
		tx.s.db.fail("iterate", err)
	}
	tx.s.scan(it, prefix, start, reverse, fn)
}

// Position is what a space last applied: the stream sequence and the
// digest of everything applied up to it.
type Position struct {
	Seq    uint64
	Digest [32]byte
}

const posKey = "_pos"

// SetPosition records the entry's position in the batch.
func (tx *Tx) SetPosition(p Position) {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 40), p.Seq)
	tx.Set(posKey, append(b, p.Digest[:]...))
}

// Position is the last committed position of the space (zero: none).
func (s *Space) Position() Position {
	raw, ok := s.Get(posKey)
	if !ok {
		return Position{}
	}
	if len(raw) != 40 {
		s.db.fail("position of "+string(s.prefix), errors.New("bad position record"))
	}
	var p Position
	p.Seq = binary.BigEndian.Uint64(raw)
	copy(p.Digest[:], raw[8:])
	return p
}

// Fail reports that a value read from the space cannot be decoded: the
// store is broken. It records that (the next start rebuilds the store) and
// panics with Failure, which stops the entry being applied.
func (s *Space) Fail(what string, err error) { s.db.fail(string(s.prefix)+what, err) }

// Snapshot is a consistent view of the space's committed state: however
// many keys a query reads through it, they are all as of one moment.
type Snapshot struct {
	s    *Space
	snap *pebble.Snapshot
}

// Snapshot opens a consistent view; Close it when done.
func (s *Space) Snapshot() *Snapshot {
	s.db.mu.RLock()
	defer s.db.mu.RUnlock()
	return &Snapshot{s: s, snap: s.db.p.NewSnapshot()}
}

// Close releases the view.
func (sn *Snapshot) Close() { _ = sn.snap.Close() }

// Get returns a copy of the value of key as of the view.
func (sn *Snapshot) Get(key string) ([]byte, bool) { return sn.s.db.get(sn.snap, sn.s.key(key)) }

// GetJSON decodes the value of key as of the view into v.
func (sn *Snapshot) GetJSON(key string, v any) bool {
	raw, ok := sn.Get(key)
	if !ok {
		return false
	}
	sn.s.db.decode(key, raw, v)
	return true
}

// Scan is Space.Scan as of the view.
func (sn *Snapshot) Scan(prefix, start string, reverse bool, fn func(key string, value []byte) bool) {
	it, err := sn.snap.NewIter(nil)
	if err != nil {
		sn.s.db.fail("iterate", err)
	}
	sn.s.scan(it, prefix, start, reverse, fn)
}
