package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"

	"github.com/cockroachdb/pebble/v2"
)

// Tx is the batch of one stream entry: the writes of every command in the
// entry and the entry's position, committed together or not at all. Reads
// through a Tx see its own writes. Only the goroutine applying the stream
// uses it.
type Tx struct {
	s      *Space
	b      *pebble.Batch
	after  []func()
	closed bool
}

// Begin starts the batch of the next entry. The space's feature reaches it
// with Tx until Commit or Abort.
func (s *Space) Begin() *Tx {
	s.db.mu.RLock()
	defer s.db.mu.RUnlock()
	tx := &Tx{s: s, b: s.db.p.NewIndexedBatch()}
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

// InTx reports whether an entry is being applied.
func (s *Space) InTx() bool { return s.tx != nil }

// Commit writes the batch atomically, without fsync: the log is the truth.
func (tx *Tx) Commit() {
	tx.s.tx = nil
	db := tx.s.db
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
	}
}

// AfterCommit registers fn to run once the batch is committed: a live push
// must not announce what a reader could not yet find.
func (tx *Tx) AfterCommit(fn func()) { tx.after = append(tx.after, fn) }

// Get returns the value of key as of this batch.
func (tx *Tx) Get(key string) ([]byte, bool) {
	tx.s.db.mu.RLock()
	defer tx.s.db.mu.RUnlock()
	return tx.s.db.get(tx.b, tx.s.key(key))
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
	_, ok := tx.Get(key)
	return ok
}

// Set writes value under key.
func (tx *Tx) Set(key string, value []byte) {
	if err := tx.b.Set(tx.s.key(key), value, nil); err != nil {
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
	if err := tx.b.Delete(tx.s.key(key), nil); err != nil {
		tx.s.db.fail("delete "+key, err)
	}
}

// Scan is Space.Scan as of this batch.
func (tx *Tx) Scan(prefix, start string, reverse bool, fn func(key string, value []byte) bool) {
	tx.s.db.mu.RLock()
	defer tx.s.db.mu.RUnlock()
	it, err := tx.b.NewIter(nil)
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
