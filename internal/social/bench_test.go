package social

import (
	"encoding/json"
	"io"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"superapp/internal/cmdlog"
	"superapp/internal/store"
)

func benchService(tb testing.TB) *Service {
	tb.Helper()
	return New(Config{Store: benchStore(tb), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), UserExists: func(string) bool { return true }})
}

func entry(tb testing.TB, kind, actor, other string, at time.Time) []byte {
	tb.Helper()
	raw, _ := json.Marshal(target{UserID: other})
	b, err := json.Marshal(&cmdlog.Envelope{ID: cmdlog.NewID(), Kind: kind, Actor: actor, At: at, Data: raw})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// BenchmarkApply measures a friendship's life in the SOCIAL stream:
// request, accept, block, unblock, one entry each.
func BenchmarkApply(b *testing.B) {
	s := benchService(b)
	m := s.Machine()
	at := time.Unix(1_800_000_000, 0).UTC()
	seq := uint64(0)
	for i := 0; b.Loop(); i++ {
		a, c := "a"+strconv.Itoa(i), "b"+strconv.Itoa(i)
		b.StopTimer()
		es := [][]byte{entry(b, kindRequest, a, c, at), entry(b, kindAccept, c, a, at), entry(b, kindBlock, a, c, at), entry(b, kindUnblock, a, c, at)}
		b.StartTimer()
		for _, e := range es {
			seq++
			m.Apply(seq, e, 0)
		}
	}
}

// BenchmarkReads measures the checks other features make before one user
// reaches another (Blocked, AreFriends) and a friend list, among 10,000
// friendships.
func BenchmarkReads(b *testing.B) {
	s := benchService(b)
	m := s.Machine()
	at := time.Unix(1_800_000_000, 0).UTC()
	const n = 10_000
	var batch []json.RawMessage
	seq := uint64(0)
	for i := range n {
		a, c := "a"+strconv.Itoa(i), "b"+strconv.Itoa(i)
		batch = append(batch, entry(b, kindRequest, a, c, at), entry(b, kindAccept, c, a, at))
		if len(batch) >= 200 || i == n-1 {
			raw, _ := json.Marshal(batch)
			seq++
			m.Apply(seq, raw, 0)
			batch = batch[:0]
		}
	}
	st := s.State()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		k := strconv.Itoa(i * 7919 % n)
		if st.Blocked("a"+k, "b"+k) || !st.AreFriends("a"+k, "b"+k) {
			b.Fatal("wrong relationship")
		}
		if len(st.Friends("a"+k)) != 1 {
			b.Fatal("no friend")
		}
	}
}

// benchStore is a store as a node opens it (its default block cache), so
// that reads cost what they cost in production.
func benchStore(tb testing.TB) *store.DB {
	tb.Helper()
	db, err := store.Open(tb.TempDir(), store.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = db.Close() })
	return db
}
