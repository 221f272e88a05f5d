package geoindex

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
)

var (
	cityHall = Point{37.5663, 126.9779}
	gangnam  = Point{37.4979, 127.0276}
)

func TestPointValid(t *testing.T) {
	tests := []struct {
		p    Point
		want bool
	}{
		{cityHall, true},
		{Point{90, 180}, true},
		{Point{-90, -180}, true},
		{Point{90.0001, 0}, false},
		{Point{0, -180.0001}, false},
		{Point{math.NaN(), 0}, false},
		{Point{0, math.NaN()}, false},
		{Point{math.Inf(1), 0}, false},
		{Point{0, math.Inf(-1)}, false},
	}
	for _, tt := range tests {
		if got := tt.p.Valid(); got != tt.want {
			t.Errorf("%v.Valid() = %v, want %v", tt.p, got, tt.want)
		}
	}
}

func TestDistanceMeters(t *testing.T) {
	halfEarth := math.Pi * earthRadiusMeters
	tests := []struct {
		name string
		a, b Point
		want float64
		tol  float64 // relative
	}{
		{"city hall to gangnam", cityHall, gangnam, 8800, 0.03},
		{"same point", cityHall, cityHall, 0, 0},
		{"across the antimeridian", Point{0, 179.9}, Point{0, -179.9}, 0.2 * math.Pi / 180 * earthRadiusMeters, 1e-9},
		{"pole to pole", Point{90, 0}, Point{-90, 77}, halfEarth, 1e-9},
		{"antipodes", Point{0, 0}, Point{0, 180}, halfEarth, 1e-9},
		{"one degree of latitude", Point{10, 20}, Point{11, 20}, 111195.08, 1e-6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, got := range []float64{DistanceMeters(tt.a, tt.b), DistanceMeters(tt.b, tt.a)} {
				if math.Abs(got-tt.want) > tt.tol*tt.want {
					t.Errorf("got %.2f m, want %.2f m ± %.1f%%", got, tt.want, 100*tt.tol)
				}
			}
		})
	}
	if d := DistanceMeters(Point{91, 0}, cityHall); !math.IsNaN(d) {
		t.Errorf("distance from an invalid point = %v, want NaN", d)
	}
}

func TestUpsertMoveRemove(t *testing.T) {
	x := New()
	x.Upsert("a", cityHall)
	x.Upsert("b", gangnam)
	if x.Len() != 2 {
		t.Fatalf("Len = %d, want 2", x.Len())
	}
	if p, ok := x.Get("a"); !ok || p != cityHall {
		t.Fatalf("Get(a) = %v, %v; want %v, true", p, ok, cityHall)
	}

	// Move a next to Gangnam: it must be found there and no longer near City Hall.
	near := Point{gangnam.Lat + 0.0001, gangnam.Lng}
	x.Upsert("a", near)
	if x.Len() != 2 {
		t.Fatalf("Len after move = %d, want 2", x.Len())
	}
	if hits := x.Nearest(cityHall, 5, 1000, nil); len(hits) != 0 {
		t.Errorf("near city hall after move: %v, want none", hits)
	}
	if hits := x.Nearest(gangnam, 5, 1000, nil); len(hits) != 2 || hits[0].ID != "b" || hits[1].ID != "a" {
		t.Errorf("near gangnam after move: %v, want b then a", hits)
	}

	// An invalid fix leaves the driver where it was.
	x.Upsert("a", Point{math.NaN(), 0})
	x.Upsert("c", Point{100, 0})
	if p, _ := x.Get("a"); p != near {
		t.Errorf("after invalid upsert Get(a) = %v, want %v", p, near)
	}
	if _, ok := x.Get("c"); ok || x.Len() != 2 {
		t.Errorf("invalid insert was stored: Len = %d", x.Len())
	}

	x.Remove("a")
	x.Remove("a")
	x.Remove("nobody")
	if _, ok := x.Get("a"); ok || x.Len() != 1 {
		t.Errorf("after remove: Len = %d, Get(a) ok = %v", x.Len(), ok)
	}
	if hits := x.Nearest(gangnam, 5, 1000, nil); len(hits) != 1 || hits[0].ID != "b" {
		t.Errorf("near gangnam after remove: %v, want only b", hits)
	}
	x.Remove("b")
	if len(x.cells) != 0 {
		t.Errorf("empty index keeps %d cells", len(x.cells))
	}
}

// bruteNearest is the reference Nearest: every driver, sorted.
func bruteNearest(drivers map[string]Point, p Point, k int, maxMeters float64, skip func(string) bool) []Hit {
	var hits []Hit
	for id, q := range drivers {
		if d := DistanceMeters(p, q); d <= maxMeters && (skip == nil || !skip(id)) {
			hits = append(hits, Hit{id, d})
		}
	}
	slices.SortFunc(hits, func(a, b Hit) int {
		return cmp.Or(cmp.Compare(a.Meters, b.Meters), cmp.Compare(a.ID, b.ID))
	})
	return hits[:min(k, len(hits))]
}

// around returns a point within about radius meters of c, uniform in a square.
func around(rng *rand.Rand, c Point, radius float64) Point {
	const metersPerDegree = earthRadiusMeters * math.Pi / 180
	dy := (2*rng.Float64() - 1) * radius
	dx := (2*rng.Float64() - 1) * radius
	return Point{c.Lat + dy/metersPerDegree, c.Lng + dx/(metersPerDegree*math.Cos(c.Lat*math.Pi/180))}
}

// fill upserts n drivers named d0..dn-1 at points from gen and returns them.
func fill(tb testing.TB, x *Index, n int, gen func(i int) Point) map[string]Point {
	tb.Helper()
	drivers := make(map[string]Point, n)
	for i := range n {
		id, p := fmt.Sprintf("d%d", i), gen(i)
		x.Upsert(id, p)
		drivers[id] = p
	}
	return drivers
}

func TestNearestMatchesBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	x := New()
	drivers := fill(t, x, 3000, func(int) Point { return around(rng, cityHall, 15000) })
	// Some drivers share a position so that ties are broken by id.
	for i := range 20 {
		p := drivers[fmt.Sprintf("d%d", i)]
		id := fmt.Sprintf("twin%d", i)
		x.Upsert(id, p)
		drivers[id] = p
	}
	// Move a third of them, as drivers do.
	for i := 0; i < 3000; i += 3 {
		id := fmt.Sprintf("d%d", i)
		p := around(rng, drivers[id], 2000)
		x.Upsert(id, p)
		drivers[id] = p
	}

	busy := func(id string) bool { return len(id)%2 == 0 }
	skips := []struct {
		name string
		fn   func(string) bool
	}{{"no skip", nil}, {"skip busy", busy}}
	for _, k := range []int{1, 5, 50, 4000} {
		for _, maxMeters := range []float64{0, 100, 1000, 5000, 40000, math.Inf(1)} {
			for _, skip := range skips {
				for q := range 10 {
					p := around(rng, cityHall, 25000)
					if q == 0 {
						p = drivers["d7"] // a driver's exact position
					}
					got := x.Nearest(p, k, maxMeters, skip.fn)
					want := bruteNearest(drivers, p, k, maxMeters, skip.fn)
					if !slices.Equal(got, want) {
						t.Fatalf("Nearest(%v, k=%d, max=%v, %s) =\n%v\nwant\n%v", p, k, maxMeters, skip.name, got, want)
					}
				}
			}
		}
	}
}

func TestNearestAntimeridianAndPoles(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	places := []struct {
		name   string
		center Point
	}{
		{"antimeridian", Point{0, 180}},
		{"antimeridian west", Point{-16.5, -180}},
		{"north pole", Point{90, 0}},
		{"south pole", Point{-90, 45}},
	}
	for _, pl := range places {
		t.Run(pl.name, func(t *testing.T) {
			x := New()
			drivers := fill(t, x, 500, func(int) Point {
				// Any latitude within ~5 km of the centre, any longitude near
				// the poles, either side of ±180 elsewhere.
				lat := pl.center.Lat + (2*rng.Float64()-1)*0.05
				lat = min(max(lat, -90), 90)
				lng := pl.center.Lng + (2*rng.Float64()-1)*0.05
				if math.Abs(pl.center.Lat) == 90 {
					lng = 360*rng.Float64() - 180
				}
				if lng > 180 {
					lng -= 360
				} else if lng < -180 {
					lng += 360
				}
				return Point{lat, lng}
			})
			for _, p := range []Point{pl.center, around(rng, pl.center, 1000)} {
				if !p.Valid() {
					continue
				}
				for _, k := range []int{1, 10, 1000} {
					got := x.Nearest(p, k, 8000, nil)
					want := bruteNearest(drivers, p, k, 8000, nil)
					if !slices.Equal(got, want) {
						t.Errorf("Nearest(%v, k=%d) = %d hits, want %d", p, k, len(got), len(want))
					}
				}
			}
			if got := x.Nearest(pl.center, 1000, 8000, nil); len(got) < 400 {
				t.Errorf("only %d of 500 drivers found within 8 km", len(got))
			}
		})
	}
}

func TestNearestBadInput(t *testing.T) {
	x := New()
	if hits := x.Nearest(cityHall, 5, 1000, nil); len(hits) != 0 {
		t.Errorf("empty index: %v", hits)
	}
	x.Upsert("a", cityHall)
	tests := []struct {
		name      string
		p         Point
		k         int
		maxMeters float64
		want      int
	}{
		{"ok", cityHall, 5, 1000, 1},
		{"zero radius on the spot", cityHall, 5, 0, 1},
		{"k zero", cityHall, 0, 1000, 0},
		{"k negative", cityHall, -1, 1000, 0},
		{"huge k", cityHall, math.MaxInt, 1000, 1},
		{"negative radius", cityHall, 5, -1, 0},
		{"NaN radius", cityHall, 5, math.NaN(), 0},
		{"infinite radius", Point{-37.5663, -53.0221}, 5, math.Inf(1), 1},
		{"NaN point", Point{math.NaN(), 0}, 5, 1000, 0},
		{"latitude out of range", Point{-91, 0}, 5, 1e9, 0},
		{"longitude out of range", Point{0, 540}, 5, 1e9, 0},
	}
	for _, tt := range tests {
		if got := x.Nearest(tt.p, tt.k, tt.maxMeters, nil); len(got) != tt.want {
			t.Errorf("%s: got %v, want %d hits", tt.name, got, tt.want)
		}
	}
}

func TestConcurrentUpsertNearest(t *testing.T) {
	x := New()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for i := range 2000 {
				id := fmt.Sprintf("w%d-%d", w, i%200)
				x.Upsert(id, around(rng, cityHall, 5000))
				if i%10 == 0 {
					x.Remove(fmt.Sprintf("w%d-%d", w, rng.IntN(200)))
				}
			}
		})
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 8))
			for range 500 {
				hits := x.Nearest(around(rng, cityHall, 5000), 5, 3000, nil)
				if len(hits) > 5 || !slices.IsSortedFunc(hits, func(a, b Hit) int { return cmp.Compare(a.Meters, b.Meters) }) {
					t.Errorf("bad hits: %v", hits)
					return
				}
				for _, h := range hits {
					if h.Meters > 3000 {
						t.Errorf("hit beyond 3 km: %v", h)
						return
					}
				}
				_, _ = x.Get(fmt.Sprintf("w%d-%d", w, rng.IntN(200)))
				_ = x.Len()
			}
		})
	}
	wg.Wait()
	if n := x.Len(); n == 0 || n > 800 {
		t.Errorf("Len = %d, want between 1 and 800", n)
	}
}

func FuzzIndex(f *testing.F) {
	f.Add(37.5, 127.0, 37.6, 127.1, 5, 1000.0)
	f.Add(90.0, 180.0, -90.0, -180.0, 1, math.Inf(1))
	f.Add(math.NaN(), 0.0, 0.0, math.NaN(), -1, math.NaN())
	f.Add(0.0, 180.0, 0.0, -180.0, 3, 0.0)
	f.Fuzz(func(t *testing.T, lat, lng, qLat, qLng float64, k int, maxMeters float64) {
		x := New()
		x.Upsert("a", Point{lat, lng})
		x.Upsert("b", Point{lat, lng})
		hits := x.Nearest(Point{qLat, qLng}, k, maxMeters, nil)
		if len(hits) > max(k, 0) {
			t.Fatalf("%d hits for k=%d", len(hits), k)
		}
		for _, h := range hits {
			if !(h.Meters <= maxMeters) {
				t.Fatalf("hit %v beyond %v", h, maxMeters)
			}
		}
		_ = EstimateFare(maxMeters, Rates{Base: int64(k), PerKm: int64(k) << 40, Minimum: -1})
		_ = EtaSeconds(maxMeters, lat)
	})
}

// seoulDrivers returns n drivers spread over a 30 km x 30 km square around
// City Hall.
func seoulDrivers(n int) []Point {
	rng := rand.New(rand.NewPCG(5, 6))
	ps := make([]Point, n)
	for i := range ps {
		ps[i] = around(rng, cityHall, 15000)
	}
	return ps
}

// benchIndex returns an index of 10,000 drivers, their ids and positions.
func benchIndex(b *testing.B) (*Index, []string, []Point) {
	b.Helper()
	const n = 10000
	ps := seoulDrivers(n)
	ids := make([]string, n)
	x := New()
	for i, p := range ps {
		ids[i] = fmt.Sprintf("driver-%d", i)
		x.Upsert(ids[i], p)
	}
	return x, ids, ps
}

// moves returns, for each driver, a position up to 50 m away: one GPS update.
func moves(ps []Point) []Point {
	rng := rand.New(rand.NewPCG(7, 8))
	out := make([]Point, len(ps))
	for i, p := range ps {
		out[i] = around(rng, p, 50)
	}
	return out
}

func BenchmarkUpsert(b *testing.B) {
	x, ids, ps := benchIndex(b)
	next := [2][]Point{moves(ps), ps}
	i := 0
	for b.Loop() {
		j := i % len(ids)
		x.Upsert(ids[j], next[i/len(ids)%2][j])
		i++
	}
}

func BenchmarkNearest(b *testing.B) {
	x, _, _ := benchIndex(b)
	qs := seoulDrivers(1024)
	i := 0
	for b.Loop() {
		if hits := x.Nearest(qs[i%len(qs)], 5, 5000, nil); len(hits) != 5 {
			b.Fatalf("%d hits", len(hits))
		}
		i++
	}
}

// BenchmarkMixedParallel does 1 Nearest per 10 Upserts from every core.
func BenchmarkMixedParallel(b *testing.B) {
	x, ids, ps := benchIndex(b)
	mv := moves(ps)
	qs := seoulDrivers(1024)
	var seed sync.Mutex
	start := 0
	b.RunParallel(func(pb *testing.PB) {
		seed.Lock()
		i := start
		start += 7919 // goroutines work on different drivers
		seed.Unlock()
		for pb.Next() {
			if i%11 == 10 {
				x.Nearest(qs[i%len(qs)], 5, 5000, nil)
			} else {
				j := i % len(ids)
				x.Upsert(ids[j], mv[j])
			}
			i++
		}
	})
}
