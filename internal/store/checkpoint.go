package store

import (
	"archive/tar"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// A checkpoint is the whole store as of one moment, as a tar of Pebble's
// files: every stream's state together with the position it reflects, so
// a node that loads it applies each stream from the entry after. Pebble
// makes it from hard links without stopping the writers.

// Checkpoint is a consistent copy of the store on local disk, made from
// hard links; Close removes it.
type Checkpoint struct {
	dir string
	// Positions is the position of every stream the checkpoint holds.
	Positions map[string]uint64
}

// Checkpoint makes a consistent checkpoint of the store without stopping
// its writers.
func (db *DB) Checkpoint() (*Checkpoint, error) {
	tmp := filepath.Join(filepath.Dir(db.dir), fmt.Sprintf(".checkpoint-%d", time.Now().UnixNano()))
	db.mu.RLock()
	err := db.p.Checkpoint(tmp, pebble.WithFlushedWAL())
	db.mu.RUnlock()
	if err != nil {
		_ = os.RemoveAll(tmp)
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	positions, err := readPositions(tmp)
	if err != nil {
		_ = os.RemoveAll(tmp)
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	return &Checkpoint{dir: tmp, Positions: positions}, nil
}

// Write writes the checkpoint to w as a tar.
func (c *Checkpoint) Write(w io.Writer) error { return tarDir(c.dir, w) }

// Close removes the checkpoint's files.
func (c *Checkpoint) Close() error { return os.RemoveAll(c.dir) }

// readPositions opens the store in dir (read-only) and reads every
// stream's position and the format version.
func readPositions(dir string) (map[string]uint64, error) {
	p, err := pebble.Open(dir, &pebble.Options{ReadOnly: true, Logger: discardLogger{}})
	if err != nil {
		return nil, err
	}
	defer p.Close()
	v, err := readFormat(p)
	if err != nil {
		return nil, err
	}
	if v != FormatVersion {
		return nil, fmt.Errorf("format version %d, want %d", v, FormatVersion)
	}
	it, err := p.NewIter(nil)
	if err != nil {
		return nil, err
	}
	defer it.Close()
	out := map[string]uint64{}
	// Keys are "<STREAM>/…": visit each stream's "_pos" and skip the rest
	// of its range.
	for ok := it.First(); ok; {
		k := it.Key()
		i := bytes.IndexByte(k, '/')
		if i < 0 {
			ok = it.Next()
			continue
		}
		stream := string(k[:i])
		pk := []byte(stream + "/" + posKey)
		if it.SeekGE(pk) && bytes.Equal(it.Key(), pk) && len(it.Value()) == 40 {
			out[stream] = binary.BigEndian.Uint64(it.Value())
		}
		ok = it.SeekGE(prefixEnd([]byte(stream + "/")))
	}
	return out, it.Error()
}

func tarDir(dir string, w io.Writer) error {
	tw := tar.NewWriter(w)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			return err
		}
		st, err := f.Stat()
		if err == nil {
			err = tw.WriteHeader(&tar.Header{Name: e.Name(), Mode: 0o600, Size: st.Size(), ModTime: st.ModTime(), Typeflag: tar.TypeReg})
		}
		if err == nil {
			_, err = io.Copy(tw, f)
		}
		f.Close()
		if err != nil {
			return err
		}
	}
	return tw.Close()
}

// LoadCheckpoint replaces the store's contents with the checkpoint read
// from r and returns the positions it holds. Only a node that has not
// applied anything yet may call it; on any error the store is left empty
// and usable.
func (db *DB) LoadCheckpoint(r io.Reader) (map[string]uint64, error) {
	tmp := db.dir + ".loading"
	_ = os.RemoveAll(tmp)
	defer os.RemoveAll(tmp)
	if err := untar(r, tmp); err != nil {
		return nil, fmt.Errorf("load checkpoint: %w", err)
	}
	positions, err := readPositions(tmp)
	if err != nil {
		return nil, fmt.Errorf("load checkpoint: %w", err)
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	if err := db.p.Close(); err != nil {
		db.log.Warn("close state store", "err", err)
	}
	db.cache.Unref()
	if err := os.RemoveAll(db.dir); err != nil {
		return nil, fmt.Errorf("load checkpoint: %w", err)
	}
	if err := os.Rename(tmp, db.dir); err != nil {
		return nil, fmt.Errorf("load checkpoint: %w", err)
	}
	why, err := db.open()
	if err != nil {
		return nil, err
	}
	if why != "" {
		return nil, fmt.Errorf("load checkpoint: %s", why)
	}
	return positions, nil
}

func untar(r io.Reader, dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		name := filepath.Base(h.Name)
		if h.Typeflag != tar.TypeReg || name != h.Name || strings.HasPrefix(name, ".") {
			return fmt.Errorf("unexpected entry %q in checkpoint", h.Name)
		}
		f, err := os.OpenFile(filepath.Join(dir, name), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		_, err = io.Copy(f, tr)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
}

type discardLogger struct{}

func (discardLogger) Infof(string, ...any)           {}
func (discardLogger) Errorf(string, ...any)          {}
func (discardLogger) Fatalf(format string, a ...any) { panic(fmt.Sprintf(format, a...)) }
