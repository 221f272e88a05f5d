package identity

import (
	"sync"

	"superapp/internal/store"
)

// readCache keeps records that queries read often (a request's session
// and user) decoded, so that an authenticated request does not pay a
// store read for each. Apply never reads it, so it cannot change what
// apply decides. Apply calls written for every key it writes: the entry is
// dropped and, until the batch is committed, not cached again, so a query
// never answers with less than the store had committed when it began.
type readCache[V any] struct {
	mu sync.Mutex
	// m holds at most max records; past it an arbitrary one goes.
	m   map[string]V
	max int
	// pending counts, per key, the uncommitted writes of the entry being
	// applied (one entry's keys at most).
	pending map[string]int
	// epoch moves at every write: a record read from the store while it
	// moved may be older than the write, so it is not kept.
	epoch uint64
}

func newReadCache[V any](max int) *readCache[V] {
	return &readCache[V]{m: map[string]V{}, max: max, pending: map[string]int{}}
}

// get returns the record under key, loading it from the store when it is
// not cached.
func (c *readCache[V]) get(key string, load func() (V, bool)) (V, bool) {
	c.mu.Lock()
	if v, ok := c.m[key]; ok {
		c.mu.Unlock()
		return v, true
	}
	keep, epoch := c.pending[key] == 0, c.epoch
	c.mu.Unlock()
	v, ok := load()
	if !ok || !keep {
		return v, ok
	}
	c.mu.Lock()
	if c.epoch == epoch {
		if len(c.m) >= c.max {
			for k := range c.m {
				delete(c.m, k)
				break
			}
		}
		c.m[key] = v
	}
	c.mu.Unlock()
	return v, true
}

// written tells the cache that apply wrote key in tx's batch.
func (c *readCache[V]) written(tx *store.Tx, key string) {
	c.mu.Lock()
	delete(c.m, key)
	c.pending[key]++
	c.epoch++
	c.mu.Unlock()
	tx.AfterCommit(func() {
		c.mu.Lock()
		if c.pending[key]--; c.pending[key] <= 0 {
			delete(c.pending, key)
		}
		c.mu.Unlock()
	})
}
