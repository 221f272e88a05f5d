package social

import (
	"io"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"superapp/internal/store/storetest"
	"superapp/internal/store/storetest/streamtest"
)

func benchService(tb testing.TB) *Service {
	tb.Helper()
	return New(Config{Store: storetest.OpenDefault(tb), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), UserExists: func(string) bool { return true }})
}

// entry is an entry of one command of actor's about other.
func entry(tb testing.TB, kind, actor, other string, at time.Time) []byte {
	tb.Helper()
	return streamtest.Entry(tb, kind, actor, at, target{UserID: other})
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
	var batch [][]byte
	seq := uint64(0)
	for i := range n {
		a, c := "a"+strconv.Itoa(i), "b"+strconv.Itoa(i)
		batch = append(batch, entry(b, kindRequest, a, c, at), entry(b, kindAccept, c, a, at))
		if len(batch) >= 200 || i == n-1 {
			seq++
			m.Apply(seq, streamtest.Batch(batch...), 0)
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
