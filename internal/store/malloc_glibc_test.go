//go:build linux && cgo

package store

import "testing"

// TestMallocStatsSeeTheMemtables: with cgo, Pebble's memtables come from
// C malloc, so what malloc reports handed out covers them.
func TestMallocStatsSeeTheMemtables(t *testing.T) {
	db := open(t, t.TempDir())
	fill(t, db, "CHAT", 50)
	s := db.Stats()
	if s.MemtableBytes == 0 || s.MallocInUse < s.MemtableBytes {
		t.Fatalf("malloc in use %d, free %d; memtables %d", s.MallocInUse, s.MallocFree, s.MemtableBytes)
	}
}
