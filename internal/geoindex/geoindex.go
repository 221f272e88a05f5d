// Package geoindex is the in-memory geospatial index the taxi dispatcher uses
// to find the nearest available drivers, plus the pure fare and ETA estimates
// shown before a ride is booked.
//
// It holds only positions, in memory: it never does I/O, never persists,
// never decides which driver is available (callers pass a skip function),
// never blocks on anything but its own lock and never panics on any input.
package geoindex

import (
	"cmp"
	"math"
	"slices"
	"sync"

	"github.com/golang/geo/s1"
	"github.com/golang/geo/s2"
)

// earthRadiusMeters is the mean Earth radius (IUGG), the one used by S2.
const earthRadiusMeters = 6371008.8

// cellLevel is the S2 level drivers are bucketed at. Level-13 cells are about
// 1 km across in Seoul: a 500 m search covers 4 of them, a 5 km one about 100.
const cellLevel = 13

// firstRadiusMeters is where a search starts before doubling; in a city a
// handful of drivers is usually found within it.
const firstRadiusMeters = 500

// slackMeters pads every search cap so that rounding differences between the
// cap and DistanceMeters never drop a driver sitting on its edge.
const slackMeters = 1

var (
	coverer = &s2.RegionCoverer{MinLevel: cellLevel, MaxLevel: cellLevel, LevelMod: 1, MaxCells: 8}
	// cellArea is the average area of a level-13 cell in steradians.
	cellArea = s2.AvgAreaMetric.Value(cellLevel)
)

// Point is a position in degrees (WGS 84).
type Point struct{ Lat, Lng float64 }

// Valid reports whether p has a latitude in [-90, 90] and a longitude in
// [-180, 180]; NaN and infinities are invalid.
func (p Point) Valid() bool {
	return p.Lat >= -90 && p.Lat <= 90 && p.Lng >= -180 && p.Lng <= 180
}

func (p Point) s2Point() s2.Point {
	return s2.PointFromLatLng(s2.LatLngFromDegrees(p.Lat, p.Lng))
}

// DistanceMeters returns the great-circle distance between a and b on a
// sphere of radius 6371008.8 m, or NaN if either point is invalid.
func DistanceMeters(a, b Point) float64 {
	if !a.Valid() || !b.Valid() {
		return math.NaN()
	}
	// Haversine in its atan2 form, which stays accurate for antipodal points.
	lat1, lat2 := a.Lat*math.Pi/180, b.Lat*math.Pi/180
	dLat := math.Sin((lat2 - lat1) / 2)
	dLng := math.Sin((b.Lng - a.Lng) * math.Pi / 360)
	h := dLat*dLat + dLng*dLng*math.Cos(lat1)*math.Cos(lat2)
	h = min(max(h, 0), 1)
	return 2 * math.Atan2(math.Sqrt(h), math.Sqrt(1-h)) * earthRadiusMeters
}

// Hit is one driver found by Nearest.
type Hit struct {
	ID     string
	Meters float64
}

// Index maps driver ids to positions and answers nearest-driver queries.
// It is safe for concurrent use; New returns a ready one.
type Index struct {
	mu      sync.RWMutex
	drivers map[string]s2.CellID           // driver id -> its level-13 cell
	cells   map[s2.CellID]map[string]Point // only non-empty cells are kept
}

// New returns an empty Index.
func New() *Index {
	return &Index{
		drivers: make(map[string]s2.CellID),
		cells:   make(map[s2.CellID]map[string]Point),
	}
}

// Upsert places driver id at p, inserting it or moving it. An invalid p is
// ignored, so a bad GPS fix leaves the driver at its last valid position.
func (x *Index) Upsert(id string, p Point) {
	if !p.Valid() {
		return
	}
	cell := s2.CellIDFromLatLng(s2.LatLngFromDegrees(p.Lat, p.Lng)).Parent(cellLevel)

	x.mu.Lock()
	defer x.mu.Unlock()
	if old, ok := x.drivers[id]; ok && old != cell {
		x.removeFromCell(id, old)
	}
	x.drivers[id] = cell
	in := x.cells[cell]
	if in == nil {
		in = make(map[string]Point)
		x.cells[cell] = in
	}
	in[id] = p
}

// Remove forgets driver id; removing an unknown id does nothing.
func (x *Index) Remove(id string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if cell, ok := x.drivers[id]; ok {
		delete(x.drivers, id)
		x.removeFromCell(id, cell)
	}
}

func (x *Index) removeFromCell(id string, cell s2.CellID) {
	in := x.cells[cell]
	delete(in, id)
	if len(in) == 0 {
		delete(x.cells, cell)
	}
}

// Len returns the number of drivers in the index.
func (x *Index) Len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.drivers)
}

// Get returns the position of driver id and whether it is in the index.
func (x *Index) Get(id string) (Point, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	cell, ok := x.drivers[id]
	if !ok {
		return Point{}, false
	}
	return x.cells[cell][id], true
}

// Nearest returns up to k drivers within maxMeters of p, nearest first, ties
// broken by id so that every node answers alike. Drivers for which skip
// returns true (busy, already offered the ride) are left out; skip may be
// nil. Skip runs under the index's read lock and must not call the Index.
// An invalid p, k < 1 or a negative or NaN maxMeters yields no hits;
// maxMeters may be +Inf.
func (x *Index) Nearest(p Point, k int, maxMeters float64, skip func(id string) bool) []Hit {
	if !p.Valid() || k < 1 || !(maxMeters >= 0) {
		return nil
	}
	center := p.s2Point()

	x.mu.RLock()
	defer x.mu.RUnlock()

	var hits []Hit
	scan := func(cell s2.CellID, r float64) {
		for id, q := range x.cells[cell] {
			d := DistanceMeters(p, q)
			if d <= r && (skip == nil || !skip(id)) {
				hits = append(hits, Hit{ID: id, Meters: d})
			}
		}
	}

	// Collect the drivers within r, doubling r until there are k of them:
	// any other driver is farther away. The cells covering the cap hold every
	// driver within r; rescanning them after a doubling costs less than
	// remembering which ones were seen.
	for r := min(firstRadiusMeters, maxMeters); ; r = min(2*r, maxMeters) {
		hits = hits[:0]
		cp := s2.CapFromCenterAngle(center, s1.Angle((r+slackMeters)/earthRadiusMeters))
		if cp.Area()/cellArea > float64(len(x.cells)) {
			// Covering the cap would cost more than visiting every
			// non-empty cell (a sparse area or a huge radius).
			for cell := range x.cells {
				scan(cell, maxMeters)
			}
			break
		}
		for _, cell := range coverer.Covering(cp) {
			scan(cell, r)
		}
		if len(hits) >= k || r >= maxMeters {
			break
		}
	}

	slices.SortFunc(hits, func(a, b Hit) int {
		return cmp.Or(cmp.Compare(a.Meters, b.Meters), cmp.Compare(a.ID, b.ID))
	})
	return slices.Clip(hits[:min(k, len(hits))])
}
