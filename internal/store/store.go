// Package store is a node's local state: every feature's read model and
// the stream position it reflects, kept on disk in an embedded LSM (Pebble,
// the store CockroachDB is built on). The log is the database; this is its
// index. A stream entry's writes and the entry's position are committed in
// one atomic batch, so after a crash the store is exactly as of some entry
// and the node resumes at the next one: start-up time does not depend on
// how much history there is. Writes are not fsynced: the stream is the
// truth, and a node that lost its last writes applies them again.
//
// Memory is Pebble's block cache (Options.CacheSize) and its memtables;
// nothing here grows with history.
//
// Layout. Every key begins with the stream that wrote it ("CHAT/…",
// "LEDGER/…"): a stream's keys are one contiguous range that can be
// dropped, checkpointed or moved on its own. When streams are partitioned
// (chat by conversation hash, the ledger by account cell), the partition
// becomes the second part of the prefix ("CHAT/p07/…"): a node that holds
// only some partitions holds only those ranges, a partition moved to
// another node is a range copied from a checkpoint plus the partition's log
// after it, and no feature's own key layout changes. Under the stream's
// prefix the machine keeps "_pos" (position and digest) and "_out/<id>"
// (the outcome of every command); each feature declares the rest of its
// layout in one file next to its apply code.
//
// It must never serve a store it could not read in full as if it were
// whole: a store that is missing, corrupt or of another format version is
// wiped and rebuilt (from the newest checkpoint and the log), with one log
// line saying why.
package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
)

// FormatVersion is the layout this binary writes. A store written by
// another version is rebuilt, never read.
const FormatVersion = 2

// DefaultCacheSize is the block cache when none is configured.
const DefaultCacheSize = 256 << 20

const formatKey = "!format"

// Options configures a store.
type Options struct {
	// CacheSize bounds the block cache in bytes (0: DefaultCacheSize).
	CacheSize int64
	Logger    *slog.Logger
}

// DB is a node's state store. Its Pebble instance may be replaced (by a
// checkpoint) before any machine applies; spaces keep working across the
// swap.
type DB struct {
	dir   string
	opts  Options
	popts *pebble.Options // as the store was last opened with
	log   *slog.Logger

	mu    sync.RWMutex // held for reading by every use of p; for writing to swap it
	p     *pebble.DB
	cache interface{ Unref() }
	// rebuilt says why the store was started empty ("" if it was opened
	// as it was).
	rebuilt string
	failed  atomic.Pointer[error]
	onFail  func(error)

	// written are the tables each running flush or compaction is
	// writing, by job: recorded as verified once the job ends.
	writtenMu sync.Mutex
	written   map[int][]string
}

// Open opens the store in dir, creating it if needed. A store that cannot
// be opened, or was written by another format version, is wiped and
// started empty; Rebuilt then says why.
func Open(dir string, o Options) (*DB, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.CacheSize <= 0 {
		o.CacheSize = DefaultCacheSize
	}
	db := &DB{dir: dir, opts: o, log: o.Logger.With("component", "store")}
	why, err := db.open()
	if err != nil {
		return nil, err
	}
	db.rebuilt = why
	return db, nil
}

// open opens dir, wiping it first when it holds no usable store.
func (db *DB) open() (string, error) {
	why := ""
	if mark, err := os.ReadFile(filepath.Join(db.dir, brokenMarker)); err == nil {
		why = "state store found broken while running: " + string(bytes.TrimSpace(mark))
	} else if entries, _ := os.ReadDir(db.dir); len(entries) == 0 {
		why = "no state store on disk"
	} else if p, cache, err := db.openPebble(); err != nil {
		why = fmt.Sprintf("state store unreadable: %v", err)
	} else if v, err := readFormat(p); err != nil {
		why = fmt.Sprintf("state store unreadable: %v", err)
		_ = p.Close()
		cache.Unref()
	} else if v != FormatVersion {
		why = fmt.Sprintf("state store written by format version %d, this binary writes %d", v, FormatVersion)
		_ = p.Close()
		cache.Unref()
	} else if n, err := verifyStore(db.dir, db.popts, p); err != nil {
		why = fmt.Sprintf("state store corrupt: %v", err)
		_ = p.Close()
		cache.Unref()
	} else {
		db.log.Debug("state store verified", "new or changed tables read", n)
		db.p, db.cache = p, cache
		return "", nil
	}
	if why != "no state store on disk" {
		db.log.Warn("rebuilding the state store from the newest checkpoint and the log", "reason", why, "dir", db.dir)
	}
	if err := os.RemoveAll(db.dir); err != nil {
		return "", fmt.Errorf("wipe state store: %w", err)
	}
	db.failed.Store(nil) // what verification found is gone with the files
	p, cache, err := db.openPebble()
	if err != nil {
		return "", fmt.Errorf("create state store: %w", err)
	}
	if err := p.Set([]byte(formatKey), binary.BigEndian.AppendUint64(nil, FormatVersion), pebble.Sync); err != nil {
		_ = p.Close()
		cache.Unref()
		return "", fmt.Errorf("create state store: %w", err)
	}
	db.p, db.cache = p, cache
	return why, nil
}

func (db *DB) openPebble() (*pebble.DB, interface{ Unref() }, error) {
	cache := pebble.NewCache(db.opts.CacheSize)
	opts := &pebble.Options{
		// A directory that holds files but no store is broken, not new.
		ErrorIfNotExists: db.existing(),
		Cache:            cache,
		MemTableSize:     32 << 20,
		Logger:           quietLogger{db},
		EventListener: &pebble.EventListener{
			// The read that found it fails too, and the caller stops;
			// a compaction that found it must not end the process.
			DataCorruption: func(info pebble.DataCorruptionInfo) {
				db.broken(fmt.Errorf("%s: %w", info.Path, info.Details))
			},
			// A table Pebble wrote itself is as verified as one read
			// back: recording it keeps the next open from reading the
			// whole history written since the last one (verify.go).
			TableCreated: func(info pebble.TableCreateInfo) { db.tableWritten(info.JobID, info.Path) },
			FlushEnd: func(info pebble.FlushInfo) {
				db.jobEnded(info.JobID, info.Err)
				trimFreedMemory()
			},
			CompactionEnd: func(info pebble.CompactionInfo) {
				db.jobEnded(info.JobID, info.Err)
				trimFreedMemory()
			},
		},
	}
	// Bloom filters on every level: most reads in apply ask for a key
	// that does not exist yet (is this id new?), and a filter answers
	// those without reading a table.
	for i := range opts.Levels {
		opts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	db.popts = opts
	p, err := pebble.Open(db.dir, opts)
	if err != nil {
		cache.Unref()
		return nil, nil, err
	}
	return p, cache, nil
}

// trimInterval bounds how often trimFreedMemory gives pages back: a trim
// walks every malloc arena, which takes milliseconds and holds up other
// allocations meanwhile.
const trimInterval = 5 * time.Second

var lastTrim atomic.Int64 // unix nanoseconds of the process's last trim

// trimFreedMemory gives the memory a flush or compaction freed (a flushed
// memtable, blocks of tables that are gone) back to the system, at most
// every trimInterval in the whole process. Flushes and compactions are
// when the store frees most; without this the pages stay with C malloc
// and the node's resident memory grows with history (malloc_glibc.go).
func trimFreedMemory() {
	now, last := time.Now().UnixNano(), lastTrim.Load()
	if now-last < int64(trimInterval) || !lastTrim.CompareAndSwap(last, now) {
		return
	}
	releaseFreedMemory()
}

// existing reports whether the store's directory holds anything.
func (db *DB) existing() bool {
	entries, _ := os.ReadDir(db.dir)
	return len(entries) > 0
}

func readFormat(p *pebble.DB) (uint64, error) {
	v, closer, err := p.Get([]byte(formatKey))
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, errors.New("no format version recorded")
	}
	if err != nil {
		return 0, err
	}
	defer closer.Close()
	if len(v) != 8 {
		return 0, errors.New("bad format version record")
	}
	return binary.BigEndian.Uint64(v), nil
}

// Rebuilt says why the store was started empty, "" if it was not.
func (db *DB) Rebuilt() string { return db.rebuilt }

// Dir is the store's directory.
func (db *DB) Dir() string { return db.dir }

// OnFailure sets the function told when a read or write finds the store
// broken (a checksum mismatch, an I/O error). The node then stops applying:
// nothing half-read is served, and the store is rebuilt at the next start.
func (db *DB) OnFailure(fn func(error)) {
	db.mu.Lock()
	db.onFail = fn
	db.mu.Unlock()
}

// Failed is the error that found the store broken, nil while it is sound.
func (db *DB) Failed() error {
	if p := db.failed.Load(); p != nil {
		return *p
	}
	return nil
}

// Failure is what a Space panics with when the store fails under it; the
// machine applying an entry recovers it and stops.
type Failure struct{ Err error }

func (f Failure) Error() string { return "state store failed: " + f.Err.Error() }

// fail records a broken store and panics with Failure.
func (db *DB) fail(what string, err error) {
	err = fmt.Errorf("%s: %w", what, err)
	db.broken(err)
	panic(Failure{Err: err})
}

// broken records that the store is broken: once, with a marker file that
// makes the next Open rebuild it.
func (db *DB) broken(err error) {
	if db.failed.CompareAndSwap(nil, &err) {
		db.log.Error("state store broken: this node stops applying; it is rebuilt from the newest checkpoint and the log at the next start", "err", err)
		if err := os.WriteFile(filepath.Join(db.dir, brokenMarker), []byte(err.Error()+"\n"), 0o600); err != nil {
			db.log.Error("mark state store broken", "err", err)
		}
		if db.onFail != nil {
			go db.onFail(err)
		}
	}
}

// brokenMarker is the file that makes the next Open rebuild the store.
const brokenMarker = "BROKEN"

// Close closes the store.
func (db *DB) Close() error {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.p == nil {
		return nil
	}
	err := db.p.Close()
	db.cache.Unref()
	db.p = nil
	return err
}

// Space is the part of the store one stream writes: every key under
// "<stream>/".
type Space struct {
	db     *DB
	prefix []byte
	// tx is the batch of the entry being applied; only the stream's one
	// applying goroutine touches it.
	tx *Tx
}

// Space returns the space of a stream.
func (db *DB) Space(stream string) *Space {
	return &Space{db: db, prefix: []byte(stream + "/")}
}

func (s *Space) key(k string) []byte {
	b := make([]byte, 0, len(s.prefix)+len(k))
	return append(append(b, s.prefix...), k...)
}

// Get returns a copy of the committed value of key.
func (s *Space) Get(key string) ([]byte, bool) {
	s.db.mu.RLock()
	defer s.db.mu.RUnlock()
	return s.db.get(s.db.p, s.key(key))
}

type getter interface {
	Get(key []byte) ([]byte, io.Closer, error)
}

func (db *DB) get(g getter, key []byte) ([]byte, bool) {
	v, closer, err := g.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false
	}
	if err != nil {
		db.fail("get "+string(key), err)
	}
	out := bytes.Clone(v)
	_ = closer.Close()
	return out, true
}

// GetJSON decodes the committed value of key into v.
func (s *Space) GetJSON(key string, v any) bool {
	raw, ok := s.Get(key)
	if !ok {
		return false
	}
	s.db.decode(key, raw, v)
	return true
}

func (db *DB) decode(key string, raw []byte, v any) {
	if err := json.Unmarshal(raw, v); err != nil {
		db.fail("decode "+key, err)
	}
}

// Scan calls fn with every committed key under prefix (without the
// space's prefix) and its value, in key order (or reversed), from start
// (inclusive; "" = the prefix's first) until fn returns false. The value
// is only valid during the call.
func (s *Space) Scan(prefix, start string, reverse bool, fn func(key string, value []byte) bool) {
	s.db.mu.RLock()
	defer s.db.mu.RUnlock()
	it, err := s.db.p.NewIter(nil)
	if err != nil {
		s.db.fail("iterate", err)
	}
	s.scan(it, prefix, start, reverse, fn)
}

type iterator interface {
	SeekGE([]byte) bool
	SeekLT([]byte) bool
	Last() bool
	Valid() bool
	Next() bool
	Prev() bool
	Key() []byte
	Value() []byte
	Error() error
	Close() error
}

func (s *Space) scan(it iterator, prefix, start string, reverse bool, fn func(string, []byte) bool) {
	defer it.Close()
	lo := s.key(prefix)
	hi := prefixEnd(lo)
	var ok bool
	switch {
	case !reverse && start == "":
		ok = it.SeekGE(lo)
	case !reverse:
		ok = it.SeekGE(s.key(start))
	case start == "":
		ok = it.SeekLT(hi)
	default:
		// Inclusive of start: seek below the key just after it.
		ok = it.SeekLT(append(s.key(start), 0))
	}
	for ; ok; ok = step(it, reverse) {
		k := it.Key()
		if !bytes.HasPrefix(k, lo) {
			break
		}
		if !fn(string(k[len(s.prefix):]), it.Value()) {
			break
		}
	}
	if err := it.Error(); err != nil {
		s.db.fail("iterate "+string(lo), err)
	}
}

func step(it iterator, reverse bool) bool {
	if reverse {
		return it.Prev()
	}
	return it.Next()
}

// prefixEnd is the first key after every key with prefix p.
func prefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil
}

// quietLogger sends Pebble's chatter to debug and its errors to error.
type quietLogger struct{ db *DB }

func (l quietLogger) Infof(format string, args ...any) { l.db.log.Debug(fmt.Sprintf(format, args...)) }
func (l quietLogger) Errorf(format string, args ...any) {
	l.db.log.Error(fmt.Sprintf(format, args...))
}

// Fatalf is how Pebble gives up on a store it cannot go on with. The
// process ends, but the store is marked broken first: the next start
// rebuilds it instead of dying on it again.
func (l quietLogger) Fatalf(format string, args ...any) {
	err := fmt.Errorf(format, args...)
	l.db.fail("pebble", err)
}

// Stats is what an operator needs to know of the store's size and cache.
type Stats struct {
	DiskBytes     uint64 // tables, logs and manifests on disk
	CacheBytes    int64  // block cache in use (bounded by Options.CacheSize)
	CacheHits     int64
	CacheMisses   int64
	MemtableBytes uint64 // writes not yet in tables
	// MallocInUse is what C malloc has handed out (with cgo, Pebble's
	// block cache and memtables live there); MallocFree is what it keeps
	// free in its arenas, partly given back to the system by the trims.
	MallocInUse, MallocFree uint64
}

// Stats reads the store's current figures.
func (db *DB) Stats() Stats {
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.p == nil {
		return Stats{}
	}
	m := db.p.Metrics()
	inUse, free := mallocStats()
	return Stats{DiskBytes: m.DiskSpaceUsage(), CacheBytes: m.BlockCache.Size, CacheHits: m.BlockCache.Hits,
		CacheMisses: m.BlockCache.Misses, MemtableBytes: m.MemTable.Size, MallocInUse: inUse, MallocFree: free}
}
