package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func open(t *testing.T, dir string) *DB {
	t.Helper()
	db, err := Open(dir, Options{CacheSize: 4 << 20, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// fill writes n entries to stream's space, each with a value and its
// position, and returns the value of the last key.
func fill(t *testing.T, db *DB, stream string, n int) {
	t.Helper()
	s := db.Space(stream)
	for i := 1; i <= n; i++ {
		tx := s.Begin()
		tx.Set(Key("msg", "c1", Seq(uint64(i))), []byte(strings.Repeat(fmt.Sprint(i%10), 100)))
		tx.SetPosition(Position{Seq: uint64(i), Digest: [32]byte{byte(i)}})
		tx.Commit()
	}
}

func TestTxAtomicAndReadYourOwnWrites(t *testing.T) {
	db := open(t, t.TempDir())
	defer db.Close()
	s := db.Space("CHAT")
	tx := s.Begin()
	tx.SetJSON("a", map[string]int{"n": 1})
	var got map[string]int
	if !tx.GetJSON("a", &got) || got["n"] != 1 {
		t.Fatalf("batch does not see its own write: %v", got)
	}
	if _, ok := s.Get("a"); ok {
		t.Fatal("uncommitted write visible outside the batch")
	}
	tx.Abort()
	if _, ok := s.Get("a"); ok {
		t.Fatal("aborted write kept")
	}
	ran := false
	tx = s.Begin()
	tx.Set("a", []byte("x"))
	tx.AfterCommit(func() { ran = true })
	tx.Commit()
	if ran {
		t.Fatal("after-commit hook ran before RunAfterCommit")
	}
	tx.RunAfterCommit()
	if v, ok := s.Get("a"); !ok || string(v) != "x" || !ran {
		t.Fatalf("committed write: %q %v, hook ran %v", v, ok, ran)
	}
	// Spaces do not see each other's keys.
	if _, ok := db.Space("LEDGER").Get("a"); ok {
		t.Fatal("space leak")
	}
}

func TestScanOrderAndBounds(t *testing.T) {
	db := open(t, t.TempDir())
	defer db.Close()
	s := db.Space("CHAT")
	tx := s.Begin()
	for _, seq := range []uint64{1, 2, 255, 256, 70000} {
		tx.Set(Key("msg", "c1", Seq(seq)), []byte{1})
	}
	tx.Set(Key("msg", "c10", Seq(1)), []byte{1}) // another conversation: outside "msg/c1/"
	tx.Commit()
	collect := func(start string, reverse bool, limit int) []uint64 {
		var out []uint64
		s.Scan(Key("msg", "c1")+"/", start, reverse, func(k string, _ []byte) bool {
			out = append(out, ParseSeq(k[len("msg/c1/"):]))
			return len(out) < limit
		})
		return out
	}
	if got := fmt.Sprint(collect("", false, 10)); got != "[1 2 255 256 70000]" {
		t.Fatalf("forward: %s", got)
	}
	if got := fmt.Sprint(collect("", true, 2)); got != "[70000 256]" {
		t.Fatalf("backward: %s", got)
	}
	if got := fmt.Sprint(collect(Key("msg", "c1", Seq(255)), true, 10)); got != "[255 2 1]" {
		t.Fatalf("backward from 255: %s", got)
	}
	if got := fmt.Sprint(collect(Key("msg", "c1", Seq(3)), false, 10)); got != "[255 256 70000]" {
		t.Fatalf("forward from 3: %s", got)
	}
}

func TestReopenKeepsPositionAndState(t *testing.T) {
	dir := t.TempDir()
	db := open(t, dir)
	fill(t, db, "CHAT", 50)
	db.Close()
	db = open(t, dir)
	defer db.Close()
	if db.Rebuilt() != "" {
		t.Fatalf("rebuilt a sound store: %s", db.Rebuilt())
	}
	if p := db.Space("CHAT").Position(); p.Seq != 50 || p.Digest[0] != 50 {
		t.Fatalf("position after reopen: %+v", p)
	}
	if _, ok := db.Space("CHAT").Get(Key("msg", "c1", Seq(50))); !ok {
		t.Fatal("state lost")
	}
}

func TestBrokenStoresAreRebuilt(t *testing.T) {
	cases := map[string]func(t *testing.T, dir string){
		"flipped bytes in a table": func(t *testing.T, dir string) {
			f := largestFile(t, dir, ".sst")
			b, _ := os.ReadFile(f)
			for i := len(b) / 3; i < len(b)/3+64; i++ {
				b[i] ^= 0xff
			}
			os.WriteFile(f, b, 0o600)
		},
		"truncated table": func(t *testing.T, dir string) {
			f := largestFile(t, dir, ".sst")
			st, _ := os.Stat(f)
			os.Truncate(f, st.Size()/2)
		},
		"missing manifest": func(t *testing.T, dir string) {
			os.Remove(largestFile(t, dir, "MANIFEST-"))
		},
		"unknown format version": func(t *testing.T, dir string) {
			p, err := pebble.Open(dir, &pebble.Options{Logger: discardLogger{}})
			if err != nil {
				t.Fatal(err)
			}
			p.Set([]byte(formatKey), binary.BigEndian.AppendUint64(nil, FormatVersion+1), pebble.Sync)
			p.Close()
		},
		"marked broken while running": func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, brokenMarker), []byte("checksum mismatch in 000005.sst\n"), 0o600)
		},
	}
	for name, damage := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			db := open(t, dir)
			fill(t, db, "CHAT", 2000)
			db.mu.RLock()
			if err := db.p.Flush(); err != nil { // into tables
				t.Fatal(err)
			}
			db.mu.RUnlock()
			db.Close()
			// Opened once more: every table is verified and recorded, so
			// the damage below is found by what changed on disk.
			db = open(t, dir)
			if db.Rebuilt() != "" {
				t.Fatalf("sound store rebuilt: %s", db.Rebuilt())
			}
			db.Close()
			damage(t, dir)
			db = open(t, dir)
			defer db.Close()
			if db.Rebuilt() == "" || db.Failed() != nil {
				t.Fatalf("a broken store was opened as if whole (rebuilt %q, failed %v)", db.Rebuilt(), db.Failed())
			}
			if p := db.Space("CHAT").Position(); p.Seq != 0 {
				t.Fatalf("rebuilt store is not empty: %+v", p)
			}
			// And it is usable, and stays so across a restart.
			fill(t, db, "CHAT", 3)
			db.Close()
			db = open(t, dir)
			if db.Rebuilt() != "" || db.Space("CHAT").Position().Seq != 3 {
				t.Fatalf("after rebuild and restart: %q %+v", db.Rebuilt(), db.Space("CHAT").Position())
			}
		})
	}
}

func largestFile(t *testing.T, dir, contains string) string {
	t.Helper()
	entries, _ := os.ReadDir(dir)
	best, size := "", int64(-1)
	for _, e := range entries {
		if !strings.Contains(e.Name(), contains) {
			continue
		}
		if info, err := e.Info(); err == nil && info.Size() > size {
			best, size = filepath.Join(dir, e.Name()), info.Size()
		}
	}
	if best == "" {
		t.Fatalf("no %s file in %s", contains, dir)
	}
	return best
}

func TestCheckpointRoundTrip(t *testing.T) {
	src := open(t, t.TempDir())
	defer src.Close()
	fill(t, src, "CHAT", 300)
	fill(t, src, "LEDGER", 7)
	var buf bytes.Buffer
	cp, err := src.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	if err := cp.Write(&buf); err != nil {
		t.Fatal(err)
	}
	pos := cp.Positions
	if pos["CHAT"] != 300 || pos["LEDGER"] != 7 || len(pos) != 2 {
		t.Fatalf("checkpoint positions: %v", pos)
	}
	// Writes after the checkpoint are not in it.
	fill(t, src, "LEDGER", 9)

	dst := open(t, t.TempDir())
	defer dst.Close()
	fill(t, dst, "CHAT", 1) // whatever was there is replaced
	got, err := dst.LoadCheckpoint(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if got["CHAT"] != 300 || got["LEDGER"] != 7 {
		t.Fatalf("loaded positions: %v", got)
	}
	if p := dst.Space("LEDGER").Position(); p.Seq != 7 {
		t.Fatalf("ledger position: %+v", p)
	}
	if v, ok := dst.Space("CHAT").Get(Key("msg", "c1", Seq(123))); !ok || string(v) != strings.Repeat("3", 100) {
		t.Fatalf("state in the checkpoint: %q %v", v, ok)
	}
	// A damaged checkpoint is refused and leaves a usable store.
	bad := bytes.Clone(buf.Bytes())
	bad = bad[:len(bad)/2]
	if _, err := dst.LoadCheckpoint(bytes.NewReader(bad)); err == nil {
		t.Fatal("a truncated checkpoint was loaded")
	}
	if p := dst.Space("LEDGER").Position(); p.Seq != 7 {
		t.Fatalf("store after a refused checkpoint: %+v", p)
	}
}

func TestFailureStopsAndMarks(t *testing.T) {
	dir := t.TempDir()
	db := open(t, dir)
	failed := make(chan error, 1)
	db.OnFailure(func(err error) { failed <- err })
	func() {
		defer func() {
			if _, ok := recover().(Failure); !ok {
				t.Fatal("no Failure panic")
			}
		}()
		db.fail("get x", fmt.Errorf("pebble/table: checksum mismatch"))
	}()
	if db.Failed() == nil || <-failed == nil {
		t.Fatal("failure not recorded")
	}
	db.Close()
	db = open(t, dir)
	defer db.Close()
	if !strings.Contains(db.Rebuilt(), "checksum mismatch") {
		t.Fatalf("rebuilt: %q", db.Rebuilt())
	}
}

func TestSnapshotIsOneMoment(t *testing.T) {
	db := open(t, t.TempDir())
	defer db.Close()
	s := db.Space("CHAT")
	tx := s.Begin()
	tx.Set("a", []byte("1"))
	tx.Commit()
	sn := s.Snapshot()
	defer sn.Close()
	tx = s.Begin()
	tx.Set("a", []byte("2"))
	tx.Set("b", []byte("2"))
	tx.Commit()
	if v, _ := sn.Get("a"); string(v) != "1" {
		t.Fatalf("snapshot sees a later write: %q", v)
	}
	n := 0
	sn.Scan("", "", false, func(string, []byte) bool { n++; return true })
	if n != 1 {
		t.Fatalf("snapshot scan saw %d keys, want 1", n)
	}
	if v, _ := s.Get("a"); string(v) != "2" {
		t.Fatalf("committed read: %q", v)
	}
}

func TestBlindWritesCommitButStayUnread(t *testing.T) {
	db := open(t, t.TempDir())
	defer db.Close()
	s := db.Space("CHAT")
	tx := s.Begin()
	tx.SetBlind("feed/u1/1", []byte("e"))
	tx.Set("msg/1", []byte("m"))
	if _, ok := tx.Get("feed/u1/1"); ok {
		t.Fatal("a blind write is visible to its own batch")
	}
	if _, ok := tx.Get("msg/1"); !ok {
		t.Fatal("a plain write is not visible to its own batch")
	}
	tx.Commit()
	for _, k := range []string{"feed/u1/1", "msg/1"} {
		if _, ok := s.Get(k); !ok {
			t.Fatalf("%s not committed", k)
		}
	}
}

// flushed opens a store in dir with 200 CHAT entries flushed to a table.
func flushed(t *testing.T, dir string) *DB {
	t.Helper()
	db := open(t, dir)
	fill(t, db, "CHAT", 200)
	db.mu.RLock()
	err := db.p.Flush()
	db.mu.RUnlock()
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// TestWrittenTablesNeedNoReadingAtOpen: the tables the running store
// flushed are recorded as verified when the flush ends, so the next open
// reads none of them; a table changed behind the store's back is read
// again (and found corrupt).
func TestWrittenTablesNeedNoReadingAtOpen(t *testing.T) {
	dir := t.TempDir()
	db := flushed(t, dir)
	var tables []string
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".sst") {
			tables = append(tables, e.Name())
		}
	}
	if len(tables) == 0 {
		t.Fatal("the flush wrote no table")
	}
	db.Close()
	live := map[string]bool{}
	for _, name := range tables {
		live[name] = true
	}
	read, err := verifyTables(dir, db.popts, live)
	if err != nil {
		t.Fatal(err)
	}
	if read != 0 {
		t.Fatalf("open would read %d of the %d tables the store wrote itself", read, len(tables))
	}
	path := filepath.Join(dir, tables[0])
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)/2] ^= 0xff
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := verifyTables(dir, db.popts, live); err == nil {
		t.Fatal("a table changed after it was recorded was not read again")
	}
}

// TestALeftoverTableIsNoDamage: a process killed while a flush or a
// compaction wrote a table leaves that table half-written and outside the
// store's manifest. Pebble deletes it at open; it is no reason to rebuild
// the store.
func TestALeftoverTableIsNoDamage(t *testing.T) {
	dir := t.TempDir()
	db := flushed(t, dir)
	db.Close()
	// The leftover has the number Pebble would give its next file.
	next := 0
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		var n int
		if _, err := fmt.Sscanf(e.Name(), "%06d.", &n); err == nil {
			next = max(next, n+1)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%06d.sst", next)), []byte("half a table, cut short by SIGKILL"), 0o600); err != nil {
		t.Fatal(err)
	}
	db = open(t, dir)
	defer db.Close()
	if p := db.Space("CHAT").Position(); p.Seq != 200 {
		t.Fatalf("the store was rebuilt for a leftover table: CHAT at %d, want 200", p.Seq)
	}
}

// TestTimeIndex: Recent lists the ids within a window of the newest time,
// newest first; Newest is that time.
func TestTimeIndex(t *testing.T) {
	db := open(t, t.TempDir())
	defer db.Close()
	s := db.Space("FOOD")
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tx := s.Begin()
	for i, id := range []string{"a", "b", "c", "d"} {
		tx.Set(TimeKey("ended", t0.Add(time.Duration(i)*time.Minute), id), nil)
	}
	tx.Commit()
	if got := s.Recent("ended", 2*time.Minute); strings.Join(got, ",") != "d,c,b" {
		t.Fatalf("recent: %v", got)
	}
	if got := s.Newest("ended"); !got.Equal(t0.Add(3 * time.Minute)) {
		t.Fatalf("newest: %v", got)
	}
	if got := db.Space("RIDES").Newest("ended"); !got.IsZero() {
		t.Fatalf("newest of an empty index: %v", got)
	}
}

// TestTrimFreedMemoryIsRateLimited: flushes and compactions end often
// under load; the arenas are walked at most once per trimInterval.
func TestTrimFreedMemoryIsRateLimited(t *testing.T) {
	lastTrim.Store(0)
	trimFreedMemory()
	first := lastTrim.Load()
	if first == 0 {
		t.Fatal("the first trim did not run")
	}
	trimFreedMemory()
	if lastTrim.Load() != first {
		t.Fatal("a second trim ran within the interval")
	}
	lastTrim.Store(first - int64(trimInterval))
	trimFreedMemory()
	if lastTrim.Load() == first-int64(trimInterval) {
		t.Fatal("no trim once the interval had passed")
	}
}
