package store

import (
	"strings"
	"testing"
)

func records(key string) bool { return strings.HasPrefix(key, "rec/") }

// get is what o reads for key, "-" when it finds nothing.
func get(o *Overlay, key string) string {
	v, ok := o.Get(key)
	if !ok {
		return "-"
	}
	return string(v)
}

// TestOverlayReadsItsOwnEntry: the commands of one entry read what the
// earlier ones wrote, though the writes are blind; everything is committed
// with the entry, and an index entry is written but never read back.
func TestOverlayReadsItsOwnEntry(t *testing.T) {
	db := open(t, t.TempDir())
	defer db.Close()
	sp := db.Space("FOOD")
	o := NewOverlay(sp, 16, records)

	tx := sp.Begin()
	tx.Set("rec/old", []byte("committed before"))
	tx.Commit()

	tx = sp.Begin()
	o.Set("rec/a", []byte("1"))
	o.Set("rec/a", []byte("2"))
	o.Set("other/b", []byte("3"))
	o.Set("rec/empty", nil)
	o.SetIndex("idx/a", []byte("rec/a"))
	o.Delete("rec/old")
	for key, want := range map[string]string{"rec/a": "2", "other/b": "3", "rec/empty": "", "idx/a": "-", "rec/old": "-", "rec/none": "-"} {
		if got := get(o, key); got != want {
			t.Fatalf("in the entry, %s = %q, want %q", key, got, want)
		}
	}
	if !o.Has("rec/empty") || o.Has("rec/old") {
		t.Fatal("Has disagrees with Get")
	}
	// The writes are blind: the batch itself does not index them.
	if _, ok := tx.Get("rec/a"); ok {
		t.Fatal("blind write indexed by the batch")
	}
	if _, ok := sp.Get("rec/a"); ok {
		t.Fatal("uncommitted write visible outside the entry")
	}
	tx.Commit()
	for key, want := range map[string]string{"rec/a": "2", "other/b": "3", "rec/empty": "", "idx/a": "rec/a", "rec/old": "-"} {
		got := "-"
		if v, ok := sp.Get(key); ok {
			got = string(v)
		}
		if got != want {
			t.Fatalf("committed %s = %q, want %q", key, got, want)
		}
	}
}

// TestOverlayAcrossEntries: each entry starts with nothing written; what
// the cache keeps is what the store holds, deletions included, and it
// keeps at most its size of the records it is told to keep.
func TestOverlayAcrossEntries(t *testing.T) {
	db := open(t, t.TempDir())
	defer db.Close()
	sp := db.Space("FOOD")
	o := NewOverlay(sp, 2, records)

	tx := sp.Begin()
	o.Set("other/x", []byte("x")) // not cached
	tx.Abort()
	sp.Begin()
	if got := get(o, "other/x"); got != "-" {
		t.Fatalf("a write of an aborted entry read back: %q", got)
	}
	sp.Tx().Abort()

	for _, step := range []func(){
		func() { o.Set("rec/a", []byte("a")); o.Set("rec/b", []byte("b")); o.Set("other/y", []byte("y")) },
		func() { o.Set("rec/c", []byte("c")) },  // the oldest, rec/a, leaves the cache
		func() { o.Delete("rec/b") },            // and leaves it here
		func() { o.Set("rec/a", []byte("a2")) }, // back, as written
		func() { o.Set("rec/d", []byte("d")); get(o, "rec/c") },
	} {
		sp.Begin()
		step()
		sp.Tx().Commit()
		if n := len(o.recent.m); n > 2 {
			t.Fatalf("cache holds %d records, more than its size", n)
		}
		if _, ok := o.recent.m["other/y"]; ok {
			t.Fatal("cache keeps a key it was told to leave out")
		}
	}
	sp.Begin()
	defer sp.Tx().Abort()
	for key, want := range map[string]string{"rec/a": "a2", "rec/b": "-", "rec/c": "c", "rec/d": "d", "other/x": "-", "other/y": "y"} {
		if got := get(o, key); got != want {
			t.Fatalf("%s = %q, want %q", key, got, want)
		}
		// What the overlay reads is what is committed.
		committed := "-"
		if v, ok := sp.Get(key); ok {
			committed = string(v)
		}
		if committed != want {
			t.Fatalf("committed %s = %q, want %q", key, committed, want)
		}
	}
}
