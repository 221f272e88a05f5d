package store

// Overlay is the entry being applied as a feature's apply reads and
// writes it, for a feature whose commands read back, again and again, the
// few records they write (the next step of an order reads the order the
// last step wrote). Its writes are blind (Tx.SetBlind: the batch does not
// index them, which saves most of a write's cost); what the entry's
// commands wrote is read back from the overlay's own map of the entry's
// writes, and what the last commands read or wrote from a bounded cache of
// recent records, so that the next command need not read it from the
// store. Both hold exactly what the batch and the store hold (every write
// goes through the overlay), so they change no outcome. That holds as long
// as every write to the cached keys goes through the overlay, and entries
// are committed: an entry is only aborted when the store fails under it,
// and its machine then applies nothing more.
//
// Only apply uses an Overlay, from the stream's one applying goroutine:
// queries read what is committed (Space, Snapshot), never the overlay.
// Memory: the entry's writes (bounded by one entry's commands, dropped when
// the next entry begins) and at most the cache's size in records.
type Overlay struct {
	sp *Space
	// cached says which keys the cache keeps: the records apply reads.
	// Keys apply only writes (indexes for queries) are left out.
	cached func(key string) bool
	// tx is the entry written holds the writes of.
	tx *Tx
	// written is what the commands of the entry being applied wrote (nil:
	// a deletion).
	written map[string][]byte
	recent  recent
}

// NewOverlay returns an overlay over the entries applied to sp, caching
// up to size records whose keys cached accepts.
func NewOverlay(sp *Space, size int, cached func(key string) bool) *Overlay {
	return &Overlay{sp: sp, cached: cached, written: map[string][]byte{},
		recent: recent{m: make(map[string][]byte, size), size: size}}
}

// entry is the batch of the entry being applied, with the overlay's
// writes reset when a new entry has begun. It panics outside apply.
func (o *Overlay) entry() *Tx {
	tx := o.sp.Tx()
	if tx != o.tx {
		o.tx = tx
		clear(o.written)
	}
	return tx
}

// Get returns the value of key as of the entry's batch. The caller must
// not change it.
func (o *Overlay) Get(key string) ([]byte, bool) {
	tx := o.entry()
	if v, ok := o.written[key]; ok {
		return v, v != nil
	}
	if v, ok := o.recent.m[key]; ok {
		return v, true
	}
	v, ok := tx.Get(key)
	if ok && o.cached(key) {
		o.recent.put(key, v)
	}
	return v, ok
}

// Has reports whether key exists as of the entry's batch.
func (o *Overlay) Has(key string) bool {
	_, ok := o.Get(key)
	return ok
}

// Fail reports a record that cannot be read: the store is broken (see
// Space.Fail).
func (o *Overlay) Fail(what string, err error) { o.sp.Fail(what, err) }

// Set writes value under key; the caller must not change value after.
func (o *Overlay) Set(key string, value []byte) {
	tx := o.entry()
	if value == nil {
		value = []byte{} // nil marks a deletion in written
	}
	tx.SetBlind(key, value)
	o.written[key] = value
	if o.cached(key) {
		o.recent.put(key, value)
	}
}

// SetIndex writes a key apply never reads back (an index entry for
// queries): neither the overlay nor its cache keeps it, and Get does not
// see it.
func (o *Overlay) SetIndex(key string, value []byte) { o.sp.Tx().SetBlind(key, value) }

// Delete removes key.
func (o *Overlay) Delete(key string) {
	tx := o.entry()
	tx.Delete(key)
	o.written[key] = nil
	delete(o.recent.m, key)
}

// recent holds up to size records, the oldest put dropped first.
type recent struct {
	m    map[string][]byte
	ring []string
	next int
	size int
}

func (r *recent) put(key string, v []byte) {
	if _, ok := r.m[key]; ok {
		r.m[key] = v
		return
	}
	if r.size <= 0 {
		return
	}
	if len(r.ring) < r.size {
		r.ring = append(r.ring, key)
	} else {
		delete(r.m, r.ring[r.next])
		r.ring[r.next] = key
		r.next = (r.next + 1) % r.size
	}
	r.m[key] = v
}
