package rides

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"superapp/internal/cmdlog"
	"superapp/internal/geoindex"
)

// Driver locations are high-rate and short-lived, so they stay out of the
// log: the node a driver reports to updates its index and broadcasts the
// update; every node keeps the full index. A node that was down starts with
// an empty one and learns each driver's position at their next report
// (every few seconds); until then those drivers get no offers from it.

// locationSubject carries batches of driver locations between nodes.
const locationSubject = "superapp.ephemeral.rides.locations"

const (
	// locationFlush is how long a node gathers locations before it
	// broadcasts them in one message.
	locationFlush = 100 * time.Millisecond
	// locationBatch broadcasts early when this many are waiting.
	locationBatch = 1024
)

type locationMsg struct {
	From string     `json:"from"`
	Locs []location `json:"locs"`
}

type location struct {
	Driver string  `json:"d"`
	Lat    float64 `json:"lat"`
	Lng    float64 `json:"lng"`
}

type locations struct {
	s    *Service
	idx  *geoindex.Index
	self string // this process, to skip its own broadcasts

	mu   sync.Mutex
	seen map[string]time.Time // when each driver last reported, by this node's clock
	out  []location
}

func newLocations(s *Service) *locations {
	return &locations{s: s, idx: geoindex.New(), self: cmdlog.NewID(), seen: map[string]time.Time{}}
}

// update records a report made to this node and queues it for the others.
func (l *locations) update(driver string, p Point) {
	l.set(driver, p)
	l.mu.Lock()
	l.out = append(l.out, location{Driver: driver, Lat: p.Lat, Lng: p.Lng})
	full := len(l.out) >= locationBatch
	l.mu.Unlock()
	if full {
		l.flush()
	}
}

func (l *locations) set(driver string, p Point) {
	now := l.s.cfg.Now()
	l.idx.Upsert(driver, p.geo())
	l.mu.Lock()
	l.seen[driver] = now
	l.mu.Unlock()
	// The rider of a ride this driver is on watches them come.
	if rideID, rider, ok := l.s.state.DriversRider(driver); ok {
		l.s.push([]Push{{User: rider, Frame: Frame{Type: "ride.location", RideID: rideID, Location: &p, At: &now}}})
	}
}

// receive takes another node's broadcast.
func (l *locations) receive(data []byte) {
	var m locationMsg
	if json.Unmarshal(data, &m) != nil || m.From == l.self {
		return
	}
	for _, x := range m.Locs {
		if p := (Point{Lat: x.Lat, Lng: x.Lng}); p.Valid() && x.Driver != "" {
			l.set(x.Driver, p)
		}
	}
}

func (l *locations) flush() {
	l.mu.Lock()
	out := l.out
	l.out = nil
	l.mu.Unlock()
	if len(out) == 0 || l.s.cfg.Signals == nil {
		return
	}
	b, err := json.Marshal(locationMsg{From: l.self, Locs: out})
	if err == nil {
		l.s.cfg.Signals.Broadcast(locationSubject, b)
	}
}

// forget drops a driver who went offline.
func (l *locations) forget(driver string) {
	l.idx.Remove(driver)
	l.mu.Lock()
	delete(l.seen, driver)
	l.mu.Unlock()
}

// fresh is the driver's position if they reported it within LocationTTL.
func (l *locations) fresh(driver string) (Point, bool) {
	if !l.freshAt(driver, l.s.cfg.Now()) {
		return Point{}, false
	}
	return l.get(driver)
}

func (l *locations) freshAt(driver string, now time.Time) bool {
	l.mu.Lock()
	at, ok := l.seen[driver]
	l.mu.Unlock()
	return ok && now.Sub(at) <= l.s.cfg.LocationTTL
}

func (l *locations) get(driver string) (Point, bool) {
	p, ok := l.idx.Get(driver)
	return Point{Lat: p.Lat, Lng: p.Lng}, ok
}

// run broadcasts what was gathered and forgets drivers long silent.
func (l *locations) run(ctx context.Context) {
	flush := time.NewTicker(locationFlush)
	defer flush.Stop()
	sweep := time.NewTicker(time.Minute)
	defer sweep.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-flush.C:
			l.flush()
		case <-sweep.C:
			cutoff := l.s.cfg.Now().Add(-10 * l.s.cfg.LocationTTL)
			var gone []string
			l.mu.Lock()
			for d, at := range l.seen {
				if at.Before(cutoff) {
					gone = append(gone, d)
					delete(l.seen, d)
				}
			}
			l.mu.Unlock()
			for _, d := range gone {
				l.idx.Remove(d)
			}
		}
	}
}
