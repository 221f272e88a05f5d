package rides

import (
	"sync"
	"time"

	"superapp/internal/store"
)

// driverState is a driver's availability as the log made it. Online and
// Since are stored; Ride and Rider follow from the rides under way (the
// ride a driver was assigned) and are rebuilt from them at load.
type driverState struct {
	Online bool
	Since  time.Time
	Ride   string // the ride the driver is on
	Rider  string // that ride's rider
}

// State is the rides read model: every ride and driver in the state store
// (keys.go), with what dispatch and every step of a trip read also in
// memory. It is safe for concurrent use.
type State struct {
	space *store.Space

	mu sync.RWMutex
	// live is every ride that has not ended, as stored, and active the
	// same rides by rider. Bounded by the rides under way now: a rider has
	// one at a time, a search ends within MaxOffers offers or
	// SearchTimeout, a trip with its completion. The dispatcher scans them
	// several times a second and every step of a trip reads one.
	live   map[string]*Ride
	active map[string]string
	// online is every driver online now. Bounded by the drivers online (a
	// driver on a ride cannot go offline). Dispatch filters every
	// candidate with it, and location updates read it.
	online map[string]*driverState
	// offers is, for each driver, the ride last offered to them while it
	// still names them (live or expired): a live ride each, so bounded by
	// live. Stored as a mark on that ride (codec.go).
	offers map[string]string
	// lastAt is the latest command time applied: commands are stamped by
	// the clocks of the DCs that submitted them, so a command may carry a
	// time before one applied earlier. Time never runs backwards here.
	// Every ride written carries it; stamped is the latest time the store
	// holds (keys.go, clock).
	lastAt, stamped time.Time

	// The command being applied reads and changes a few rides and drivers
	// (at most two of each); they are written to the batch when it is done.
	rides   []cached[*Ride]
	drivers []cached[*driverState]
	// written is the rides and drivers the entry's commands wrote, read
	// back from here: the batch does not index them (store.Tx.SetBlind).
	// Bounded by one entry; dropped when the next begins.
	written      map[string][]byte
	writtenEntry *store.Tx

	// pushes and changes collect what the command being applied did.
	pushes   []Push
	changes  []Change
	observer func([]Push, []Change)
}

type cached[T any] struct {
	id    string
	v     T
	dirty bool
}

// NewState returns the read model kept in space (empty until the machine
// restores it).
func NewState(space *store.Space) *State {
	return &State{space: space, live: map[string]*Ride{}, active: map[string]string{}, online: map[string]*driverState{},
		offers: map[string]string{}, written: map[string][]byte{}}
}

// load fills what is held in memory from the store: the machine's loader.
func (s *State) load() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.live, s.active, s.online, s.offers = map[string]*Ride{}, map[string]string{}, map[string]*driverState{}, map[string]string{}
	s.lastAt = time.Time{}
	if b, ok := s.space.Get(clockKey); ok {
		s.lastAt = s.decodeTime(b)
	}
	later := func(t time.Time) {
		if t.After(s.lastAt) {
			s.lastAt = t
		}
	}
	var ids []string
	s.space.Scan(onlinePrefix, "", false, func(k string, _ []byte) bool {
		ids = append(ids, k[len(onlinePrefix):])
		return true
	})
	for _, id := range ids {
		if b, ok := s.space.Get(driverKey(id)); ok {
			s.online[id] = s.decodeDriver(id, b)
		}
	}
	ids = ids[:0]
	s.space.Scan(activePrefix, "", false, func(_ string, v []byte) bool {
		ids = append(ids, string(v))
		return true
	})
	for _, id := range ids {
		b, ok := s.space.Get(rideKey(id))
		if !ok {
			continue
		}
		r, held, stamp := s.decodeRide(id, b)
		s.live[id], s.active[r.Rider] = r, id
		later(stamp)
		if held {
			s.offers[r.Offer.Driver] = id
		}
		if d := s.online[r.Driver]; d != nil && r.Assigned() {
			d.Ride, d.Rider = id, r.Rider
		}
	}
	// A ride that ended carries the time it ended in its ended/ key.
	later(s.space.Newest(endedIndex))
	s.stamped = s.lastAt
}

// decodeRide, decodeDriver and decodeTime read records as stored; one
// that cannot be read means the store is broken.
func (s *State) decodeRide(id string, b []byte) (*Ride, bool, time.Time) {
	r, held, stamp, err := decodeRide(b)
	if err != nil {
		s.space.Fail(rideKey(id), err)
	}
	return r, held, stamp
}

func (s *State) decodeDriver(id string, b []byte) *driverState {
	d, err := decodeDriver(b)
	if err != nil {
		s.space.Fail(driverKey(id), err)
	}
	return d
}

func (s *State) decodeTime(b []byte) time.Time {
	t, err := decodeTime(b)
	if err != nil {
		s.space.Fail(clockKey, err)
	}
	return t
}

// ride is the ride id as the command being applied sees it (nil if none).
// The caller holds s.mu; a ride it changes is written with touchRide.
func (s *State) ride(id string) *Ride {
	for _, c := range s.rides {
		if c.id == id {
			return c.v
		}
	}
	r := s.live[id]
	if r == nil {
		b, ok := s.get(rideKey(id))
		if !ok {
			return nil
		}
		r, _, _ = s.decodeRide(id, b)
	}
	s.rides = append(s.rides, cached[*Ride]{id: id, v: r})
	return r
}

// touchRide marks r to be written when the command is done.
func (s *State) touchRide(r *Ride) {
	for i := range s.rides {
		if s.rides[i].id == r.ID {
			s.rides[i].v, s.rides[i].dirty = r, true
			return
		}
	}
	s.rides = append(s.rides, cached[*Ride]{id: r.ID, v: r, dirty: true})
}

// driver is driver id's state as the command being applied sees it (nil
// if they never went online). The caller holds s.mu; a change of Online
// is written with touchDriver (Ride follows from the rides).
func (s *State) driver(id string) *driverState {
	for _, c := range s.drivers {
		if c.id == id {
			return c.v
		}
	}
	d := s.online[id]
	if d == nil {
		b, ok := s.get(driverKey(id))
		if !ok {
			return nil
		}
		d = s.decodeDriver(id, b)
	}
	s.drivers = append(s.drivers, cached[*driverState]{id: id, v: d})
	return d
}

// touchDriver marks d to be written when the command is done.
func (s *State) touchDriver(id string, d *driverState) {
	for i := range s.drivers {
		if s.drivers[i].id == id {
			s.drivers[i].v, s.drivers[i].dirty = d, true
			return
		}
	}
	s.drivers = append(s.drivers, cached[*driverState]{id: id, v: d, dirty: true})
}

// get reads a ride or driver record as of the entry's batch.
func (s *State) get(key string) ([]byte, bool) {
	tx := s.space.Tx()
	if s.writtenEntry == tx {
		if b, ok := s.written[key]; ok {
			return b, true
		}
	}
	return tx.Get(key)
}

// put writes a ride or driver record to the entry's batch.
func (s *State) put(tx *store.Tx, key string, b []byte) {
	if s.writtenEntry != tx {
		s.writtenEntry = tx
		clear(s.written)
	}
	tx.SetBlind(key, b)
	s.written[key] = b
}

// flush writes what the command changed to the batch and keeps the
// memory indexes in step with it.
func (s *State) flush(tx *store.Tx) {
	for _, c := range s.rides {
		if !c.dirty {
			continue
		}
		r := c.v
		held := r.Offer != nil && s.offers[r.Offer.Driver] == r.ID
		s.put(tx, rideKey(r.ID), encodeRide(r, held, s.lastAt))
		s.stamped = s.lastAt
		_, isLive := s.live[r.ID]
		switch {
		case r.Active() && !isLive:
			s.live[r.ID], s.active[r.Rider] = r, r.ID
			tx.SetBlind(activeKey(r.Rider), []byte(r.ID)) // read at load only
		case !r.Active() && isLive:
			delete(s.live, r.ID)
			if s.active[r.Rider] == r.ID {
				delete(s.active, r.Rider)
				tx.Delete(activeKey(r.Rider))
			}
		}
	}
	for _, c := range s.drivers {
		if !c.dirty {
			continue
		}
		d := c.v
		s.put(tx, driverKey(c.id), encodeDriver(d))
		_, isOnline := s.online[c.id]
		switch {
		case d.Online && !isOnline:
			s.online[c.id] = d
			tx.SetBlind(onlineKey(c.id), nil) // read at load only
		case !d.Online && isOnline:
			delete(s.online, c.id)
			tx.Delete(onlineKey(c.id))
		}
	}
	if s.lastAt != s.stamped {
		// No ride carries the time this command moved the clock to.
		tx.SetBlind(clockKey, encodeTime(s.lastAt)) // read at load only
		s.stamped = s.lastAt
	}
}

// stored reads a ride from memory while it is under way, else from the
// committed store.
func (s *State) stored(id string) (*Ride, bool) {
	s.mu.RLock()
	if r := s.live[id]; r != nil {
		c := r.clone()
		s.mu.RUnlock()
		return c, true
	}
	s.mu.RUnlock()
	b, ok := s.space.Get(rideKey(id))
	if !ok {
		return nil, false
	}
	r, _, _ := s.decodeRide(id, b)
	return r, true
}

// Ride returns a copy of a ride.
func (s *State) Ride(id string) (*Ride, bool) { return s.stored(id) }

// RideFor returns a ride to its rider or its driver; to anyone else it
// does not exist.
func (s *State) RideFor(id, user string) (View, bool) {
	r, ok := s.stored(id)
	if !ok || user == "" || (user != r.Rider && user != r.Driver) {
		return View{}, false
	}
	return r.ViewFor(user), true
}

// Offers lists the offers that stand for driver at at (at most one).
func (s *State) Offers(driver string, at time.Time) []OfferView {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := []OfferView{}
	if r := s.liveOffer(driver, at); r != nil {
		out = append(out, r.offerView())
	}
	return out
}

// Driver returns a driver's availability: from memory while online, else
// as committed.
func (s *State) Driver(id string) DriverStatus {
	st := DriverStatus{DriverID: id}
	s.mu.RLock()
	d := s.online[id]
	if d != nil {
		st.Online, st.Since, st.RideID = d.Online, d.Since, d.Ride
	}
	s.mu.RUnlock()
	if d == nil {
		if b, ok := s.space.Get(driverKey(id)); ok {
			d = s.decodeDriver(id, b)
			st.Online, st.Since = d.Online, d.Since
		}
	}
	return st
}

// ActiveRide is the rider's ride that has not ended, if any.
func (s *State) ActiveRide(rider string) (string, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	id, ok := s.active[rider]
	return id, ok
}

// DriversRider is the rider of the ride driver is on, if any.
func (s *State) DriversRider(driver string) (rideID, rider string, ok bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	d := s.online[driver] // a driver on a ride is online
	if d == nil || d.Ride == "" {
		return "", "", false
	}
	return d.Ride, d.Rider, true
}

// unsettled lists the rides whose money may still have to move, for the
// settlement to look at after a restart (nothing replays their changes):
// every ride that has not ended, and those that ended up to window before
// the last one did.
func (s *State) unsettled(window time.Duration) []string {
	s.mu.RLock()
	ids := make([]string, 0, len(s.live))
	for id := range s.live {
		ids = append(ids, id)
	}
	s.mu.RUnlock()
	return append(ids, s.space.Recent(endedIndex, window)...)
}
