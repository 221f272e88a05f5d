package food

import (
	"strings"

	"superapp/internal/store"
)

// batch is the entry's batch as apply reads and writes it. Its writes are
// blind (store.Tx.SetBlind: the batch does not index them); what the
// entry's commands wrote is read back from the entry's own overlay, and
// what the last commands read or wrote from a small cache, so that the
// next step of an order, or the next cart at a store, need not read it
// from the store. Both hold exactly what the batch and the store hold
// (every write goes through them), so they change no outcome; only apply
// uses them, as queries must read what is committed.
type batch struct {
	tx *store.Tx
	sp *store.Space
	w  *written
	c  *recent
}

// Get returns the value of key as of the batch. The caller must not
// change it.
func (b *batch) Get(key string) ([]byte, bool) {
	if v, ok := b.w.m[key]; ok {
		return v, v != nil
	}
	if v, ok := b.c.m[key]; ok {
		return v, true
	}
	v, ok := b.tx.Get(key)
	if ok && cached(key) {
		b.c.put(key, v)
	}
	return v, ok
}

func (b *batch) Has(key string) bool {
	_, ok := b.Get(key)
	return ok
}

// Fail reports a record that cannot be read: the store is broken.
func (b *batch) Fail(what string, err error) { b.sp.Fail(what, err) }

// Set writes value under key; the caller must not change value after.
func (b *batch) Set(key string, value []byte) {
	if value == nil {
		value = []byte{} // nil marks a deletion in the overlay
	}
	b.tx.SetBlind(key, value)
	b.w.m[key] = value
	if cached(key) {
		b.c.put(key, value)
	}
}

// SetIndex writes an index entry apply never reads.
func (b *batch) SetIndex(key string, value []byte) { b.tx.SetBlind(key, value) }

func (b *batch) Delete(key string) {
	b.tx.Delete(key)
	b.w.m[key] = nil
	delete(b.c.m, key)
}

// written is what the commands of the entry being applied wrote (nil: a
// deletion): bounded by one entry's commands, dropped when the next entry
// begins.
type written struct {
	tx *store.Tx
	m  map[string][]byte
}

// of is the overlay of tx's entry.
func (w *written) of(tx *store.Tx) *written {
	if w.tx != tx {
		w.tx = tx
		clear(w.m)
	}
	return w
}

// cached says which records apply reads: orders, stores, items, carts,
// couriers. Index keys are only written.
func cached(key string) bool {
	for _, p := range []string{"order/", "store/", "item/", "cart/", "courier/"} {
		if strings.HasPrefix(key, p) {
			return true
		}
	}
	return false
}

// recentSize bounds the cache: a few thousand orders under way, their
// stores' records and items.
const recentSize = 4096

// recent holds up to recentSize records, the oldest put dropped first.
type recent struct {
	m    map[string][]byte
	ring []string
	next int
}

func newRecent() *recent { return &recent{m: make(map[string][]byte, recentSize)} }

func (r *recent) put(key string, v []byte) {
	if _, ok := r.m[key]; ok {
		r.m[key] = v
		return
	}
	if len(r.ring) < recentSize {
		r.ring = append(r.ring, key)
	} else {
		delete(r.m, r.ring[r.next])
		r.ring[r.next] = key
		r.next = (r.next + 1) % recentSize
	}
	r.m[key] = v
}
