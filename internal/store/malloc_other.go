//go:build !linux || !cgo

package store

// releaseFreedMemory has nothing to do: without cgo Pebble allocates its
// cache and memtables on the Go heap, whose free pages the Go runtime
// returns itself.
func releaseFreedMemory() {}

// mallocStats has nothing to report: Pebble uses no C memory.
func mallocStats() (inUse, free uint64) { return 0, 0 }
