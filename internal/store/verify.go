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

const verifiedFile = "VERIFIED"

type tableStamp struct {
	Size    int64 `json:"size"`
	ModTime int64 `json:"mtime"`
}

// verifyTables checks every table of the store in dir that is not known
// verified as it is now, and records the verified ones. It returns how many
// it read.
func verifyTables(dir string, opts *pebble.Options) (int, error) {
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
		if !strings.HasSuffix(e.Name(), ".sst") {
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
	raw, _ := json.Marshal(now)
	tmp := filepath.Join(dir, verifiedFile+".tmp")
	if err := os.WriteFile(tmp, raw, 0o600); err != nil {
		return read, err
	}
	return read, os.Rename(tmp, filepath.Join(dir, verifiedFile))
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
