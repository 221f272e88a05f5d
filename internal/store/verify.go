package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// Verification at open. Pebble checks the log and the manifest when it
// opens a store, and every block's checksum whenever it reads one, so a
// damaged block is never served: the read fails and the store is marked
// broken. What open adds is finding damage before anything is read, at a
// cost that does not grow with history: a table (they are immutable) is
// read in full and its checksums checked the first time open sees it, and
// again only if its size or modification time changed since — a file cut
// short or written over. A table verified once and later decayed in place
// is found by the first read of the bad block.
//
// Tables the running store writes (flushes, compactions) are recorded as
// verified when the job that wrote them ends: Pebble computed their
// checksums as it wrote them. So a restart reads only the tables of jobs
// that had not ended, not everything written since the last start.

const verifiedFile = "VERIFIED"

type tableStamp struct {
	Size    int64 `json:"size"`
	ModTime int64 `json:"mtime"`
}

// verifyStore verifies the live tables of the store p opened in dir
// (verifyTables).
func verifyStore(dir string, opts *pebble.Options, p *pebble.DB) (int, error) {
	live, err := liveTables(p)
	if err != nil {
		return 0, err
	}
	return verifyTables(dir, opts, live)
}

// liveTables names the table files the store's current version holds.
// Others in its directory are leftovers of a flush or compaction that a
// crash cut short (Pebble deletes them): never part of the store, so
// never a sign of damage.
func liveTables(p *pebble.DB) (map[string]bool, error) {
	levels, err := p.SSTables()
	if err != nil {
		return nil, err
	}
	live := map[string]bool{}
	for _, level := range levels {
		for _, t := range level {
			live[fmt.Sprintf("%06d.sst", uint64(t.BackingSSTNum))] = true
		}
	}
	return live, nil
}

// verifyTables checks every live table of the store in dir that is not
// known verified as it is now, and records the verified ones. It returns
// how many it read.
func verifyTables(dir string, opts *pebble.Options, live map[string]bool) (int, error) {
	known := map[string]tableStamp{}
	if raw, err := os.ReadFile(filepath.Join(dir, verifiedFile)); err == nil {
		_ = json.Unmarshal(raw, &known) // unreadable: verify everything again
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	now := map[string]tableStamp{}
	read := 0
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".sst") || !live[e.Name()] {
			continue
		}
		info, err := e.Info()
		if errors.Is(err, os.ErrNotExist) {
			continue // deleted by a compaction since the listing: obsolete
		}
		if err != nil {
			return read, err
		}
		st := tableStamp{Size: info.Size(), ModTime: info.ModTime().UnixNano()}
		if known[e.Name()] != st {
			err := verifyTable(filepath.Join(dir, e.Name()), opts)
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			if err != nil {
				return read, fmt.Errorf("table %s: %w", e.Name(), err)
			}
			read++
		}
		now[e.Name()] = st
	}
	return read, writeVerified(dir, now)
}

// tableWritten notes a table a flush or compaction job is writing.
func (db *DB) tableWritten(job int, path string) {
	db.writtenMu.Lock()
	defer db.writtenMu.Unlock()
	if db.written == nil {
		db.written = map[int][]string{}
	}
	db.written[job] = append(db.written[job], path)
}

// jobEnded records the tables of a job that succeeded as verified, and
// drops from the record the tables no longer in the store.
func (db *DB) jobEnded(job int, err error) {
	db.writtenMu.Lock()
	defer db.writtenMu.Unlock()
	paths := db.written[job]
	delete(db.written, job)
	if err != nil || len(paths) == 0 {
		return
	}
	known := map[string]tableStamp{}
	if raw, err := os.ReadFile(filepath.Join(db.dir, verifiedFile)); err == nil {
		_ = json.Unmarshal(raw, &known)
	}
	for _, p := range paths {
		if info, err := os.Stat(p); err == nil {
			known[filepath.Base(p)] = tableStamp{Size: info.Size(), ModTime: info.ModTime().UnixNano()}
		}
	}
	for name := range known {
		if _, err := os.Stat(filepath.Join(db.dir, name)); errors.Is(err, os.ErrNotExist) {
			delete(known, name)
		}
	}
	_ = writeVerified(db.dir, known) // not recorded: the next open reads them
}

func writeVerified(dir string, known map[string]tableStamp) error {
	raw, _ := json.Marshal(known)
	tmp := filepath.Join(dir, verifiedFile+".tmp")
	if err := os.WriteFile(tmp, raw, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, verifiedFile))
}

func verifyTable(path string, opts *pebble.Options) error {
	f, err := vfs.Default.Open(path)
	if err != nil {
		return err
	}
	readable, err := sstable.NewSimpleReadable(f)
	if err != nil {
		f.Close()
		return err
	}
	r, err := sstable.NewReader(context.Background(), readable, opts.MakeReaderOptions())
	if err != nil {
		readable.Close()
		return err
	}
	defer r.Close()
	return r.ValidateBlockChecksums()
}
