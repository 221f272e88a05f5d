package ledger

import (
	"testing"

	"pgregory.net/rapid"
)

// TestIndexAgainstMap checks the transfer index against a Go map through
// puts, lookups and deletes (a rolled-back chain's). Ids come from a small
// set so that probe runs meet and wrap, and now and then the tags keep so
// few bits that ids share them and only the id in the record tells them
// apart.
func TestIndexAgainstMap(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var recs records
		x := newIndex(&recs)
		x.tagBits = rapid.SampledFrom([]uint32{^uint32(0), 0, 1, 0x1f}).Draw(t, "tagBits")
		want := map[ID]uint32{}
		for step := range rapid.IntRange(1, 3000).Draw(t, "steps") {
			var id ID
			b := byte(rapid.IntRange(1, 255).Draw(t, "id"))
			for k := range id {
				id[k] = b
			}
			id[0] ^= byte(rapid.IntRange(0, 3).Draw(t, "hi"))
			switch rapid.IntRange(0, 3).Draw(t, "op") {
			case 0, 1:
				if _, ok := want[id]; !ok {
					i := recs.add(&record{ID: id})
					x.put(id, i)
					want[id] = i
				}
			case 2:
				x.delete(id)
				delete(want, id)
			}
			w, in := want[id]
			if got, ok := x.get(id); ok != in || got != w {
				t.Fatalf("step %d: get %x = %d %v, want %d %v", step, id, got, ok, w, in)
			}
		}
		if x.n != len(want) {
			t.Fatalf("%d entries, want %d", x.n, len(want))
		}
		seen := 0
		x.all(func(i uint32) {
			seen++
			if id := recs.at(i).ID; want[id] != i {
				t.Fatalf("all: %x = %d, want %d", id, i, want[id])
			}
		})
		if seen != len(want) {
			t.Fatalf("all saw %d of %d", seen, len(want))
		}
		for id, i := range want {
			if got, ok := x.get(id); !ok || got != i {
				t.Fatalf("lost %x", id)
			}
		}
	})
}
