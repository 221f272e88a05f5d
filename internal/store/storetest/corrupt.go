package storetest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Corrupt flips 256 bytes in the middle of the largest table of the
// (closed) store in dir, or of its manifest when it has no table yet, and
// returns the file's name. A damaged log tail would not do: it reads as a
// write a crash cut short, and the store is then whole, only older.
func Corrupt(tb testing.TB, dir string) string {
	tb.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	largest := func(match func(string) bool) (string, int64) {
		best, size := "", int64(0)
		for _, e := range entries {
			if info, err := e.Info(); err == nil && match(e.Name()) && info.Size() > size {
				best, size = filepath.Join(dir, e.Name()), info.Size()
			}
		}
		return best, size
	}
	best, _ := largest(func(n string) bool { return strings.HasSuffix(n, ".sst") })
	if best == "" {
		best, _ = largest(func(n string) bool { return strings.HasPrefix(n, "MANIFEST-") })
	}
	if best == "" {
		tb.Fatalf("no table or manifest in %s", dir)
	}
	b, err := os.ReadFile(best)
	if err != nil {
		tb.Fatal(err)
	}
	for i := len(b) / 2; i < len(b)/2+256 && i < len(b); i++ {
		b[i] ^= 0x5a
	}
	if err := os.WriteFile(best, b, 0o600); err != nil {
		tb.Fatal(err)
	}
	return filepath.Base(best)
}
