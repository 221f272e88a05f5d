package miniapp

import (
	"sort"
	"strings"
	"sync"
	"time"

	"superapp/internal/store"
)

// State is the mini-app read model: pay requests and webhook deliveries in
// the state store (keys.go), the pending deliveries also in memory. It is
// safe for concurrent use.
type State struct {
	space *store.Space

	mu sync.RWMutex
	// pending is every delivery not yet delivered or failed, as stored.
	// Bounded by the deliveries under way: each is delivered or given up
	// after Retry.Attempts attempts (about an hour). The delivery worker
	// scans it every Tick.
	pending map[string]*Delivery
	// overlay is the entry being applied as apply reads and writes it:
	// what the entry's commands wrote and the last recentSize records read
	// or written (store.Overlay).
	overlay *store.Overlay
}

// reqRec is a pay request as stored, with the position of the command
// that created it (its key in the user's undecided/ list).
type reqRec struct {
	PayRequest
	Cursor uint64
}

// NewState returns the read model kept in space (empty until the machine
// restores it).
func NewState(space *store.Space) *State {
	return &State{space: space, pending: map[string]*Delivery{}, overlay: store.NewOverlay(space, recentSize, cached)}
}

// cached says which records apply reads, and so keeps in its overlay's
// cache: pay requests (deliveries are read from memory while pending).
// Index keys are only written.
func cached(key string) bool { return strings.HasPrefix(key, "request/") }

// recentSize bounds the overlay's cache: a few thousand pay requests
// waiting for their user's decision.
const recentSize = 4096

// load fills what is held in memory from the store: the machine's loader.
func (s *State) load() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending = map[string]*Delivery{}
	var ids []string
	s.space.Scan(duePrefix, "", false, func(k string, _ []byte) bool {
		ids = append(ids, k[len(duePrefix):])
		return true
	})
	for _, id := range ids {
		if d, ok := s.getDelivery(s.space, id); ok {
			s.pending[id] = d
		}
	}
}

// reader is what the committed store (or a snapshot of it, for a query
// reading several keys) and the entry's batch all offer.
type reader interface {
	Get(key string) ([]byte, bool)
}

// getRequest and getDelivery read records as stored; one that cannot be
// read means the store is broken.
func (s *State) getRequest(r reader, id string) (*reqRec, bool) {
	b, ok := r.Get(requestKey(id))
	if !ok {
		return nil, false
	}
	rec, err := decodeRequest(b)
	if err != nil {
		s.space.Fail(requestKey(id), err)
	}
	return rec, true
}

func (s *State) getDelivery(r reader, id string) (*Delivery, bool) {
	b, ok := r.Get(deliveryKey(id))
	if !ok {
		return nil, false
	}
	d, err := decodeDelivery(b)
	if err != nil {
		s.space.Fail(deliveryKey(id), err)
	}
	return d, true
}

func secretVersion(r reader, clientID string) uint64 {
	if v, ok := r.Get(secretKey(clientID)); ok {
		return store.ParseSeq(string(v))
	}
	return 1
}

// SecretVersion is the current version of a mini-app's webhook secret.
func (s *State) SecretVersion(clientID string) uint64 { return secretVersion(s.space, clientID) }

// PayRequest returns a pay request by id.
func (s *State) PayRequest(id string) (PayRequest, bool) {
	rec, ok := s.getRequest(s.space, id)
	if !ok {
		return PayRequest{}, false
	}
	return rec.PayRequest, true
}

// PendingOf lists a user's pending pay requests at now, newest first.
func (s *State) PendingOf(user string, now time.Time) []PayRequest {
	out := []PayRequest{}
	v := s.space.Snapshot()
	defer v.Close()
	var ids []string
	v.Scan(undecidedPrefix(user), "", true, func(_ string, id []byte) bool {
		ids = append(ids, string(id))
		return true
	})
	for _, id := range ids {
		if len(out) >= maxListShown {
			break
		}
		if rec, ok := s.getRequest(v, id); ok && rec.StatusAt(now) == StatusPending {
			out = append(out, rec.PayRequest)
		}
	}
	return out
}

// Delivery returns a delivery by id.
func (s *State) Delivery(id string) (Delivery, bool) {
	s.mu.RLock()
	if d := s.pending[id]; d != nil {
		v := d.view()
		s.mu.RUnlock()
		return v, true
	}
	s.mu.RUnlock()
	d, ok := s.getDelivery(s.space, id)
	if !ok {
		return Delivery{}, false
	}
	return *d, true
}

// Deliveries lists a mini-app's latest deliveries, newest first.
func (s *State) Deliveries(clientID string, limit int) []Delivery {
	out := []Delivery{}
	if limit <= 0 {
		return out
	}
	v := s.space.Snapshot()
	defer v.Close()
	var ids []string
	v.Scan(clientDeliveriesPrefix(clientID), "", true, func(_ string, id []byte) bool {
		ids = append(ids, string(id))
		return len(ids) < limit
	})
	for _, id := range ids {
		s.mu.RLock()
		d := s.pending[id]
		var view Delivery
		if d != nil {
			view = d.view()
		}
		s.mu.RUnlock()
		if d == nil {
			if d, _ = s.getDelivery(v, id); d != nil {
				view = *d
			}
		}
		if d != nil {
			out = append(out, view)
		}
	}
	return out
}

// due lists the pending deliveries whose next attempt is due at now and
// that no live lease holds, oldest first.
func (s *State) due(now time.Time, limit int) []Delivery {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := []Delivery{}
	for _, d := range s.pending {
		if d.NextAttemptAt != nil && now.Before(*d.NextAttemptAt) {
			continue
		}
		if d.LeaseUntil != nil && now.Before(*d.LeaseUntil) {
			continue
		}
		out = append(out, d.view())
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.Before(out[j].CreatedAt)
		}
		return out[i].ID < out[j].ID
	})
	if len(out) > limit {
		out = out[:limit]
	}
	return out
}

// revocationsChecked is how many OAuth revocations, in OAuth's order, are
// known to be announced or to need no announcement.
func (s *State) revocationsChecked(r interface{ Get(string) ([]byte, bool) }) int {
	v, ok := r.Get(checkedKey)
	if !ok {
		return 0
	}
	return int(store.ParseSeq(string(v)))
}

// revokeAnnounced reports whether a grant's revocation was announced.
func (s *State) revokeAnnounced(grantID string) bool {
	_, ok := s.space.Get(revokedKey(grantID))
	return ok
}
