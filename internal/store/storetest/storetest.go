// Package storetest opens throw-away state stores for tests.
package storetest

import (
	"io"
	"log/slog"
	"testing"

	"superapp/internal/store"
)

// Open opens an empty store in a temporary directory, closed when the
// test ends.
func Open(tb testing.TB) *store.DB {
	tb.Helper()
	db, err := store.Open(tb.TempDir(), store.Options{CacheSize: 8 << 20, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = db.Close() })
	return db
}

// Space opens an empty store and returns the space of stream.
func Space(tb testing.TB, stream string) *store.Space {
	tb.Helper()
	return Open(tb).Space(stream)
}
