package storetest

import (
	"io"
	"log/slog"
	"testing"

	"superapp/internal/store"
)

// OpenDefault opens an empty store in a temporary directory as a node
// opens its own (store.DefaultCacheSize of block cache), so that what a
// benchmark reads costs what it costs in production. It is closed when
// the test ends.
func OpenDefault(tb testing.TB) *store.DB {
	tb.Helper()
	db, err := store.Open(tb.TempDir(), store.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = db.Close() })
	return db
}
