package identity

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
	return New(Config{Store: storetest.OpenDefault(tb), Secret: []byte("s"), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
}

// BenchmarkApply measures what every node does for a user's life in the
// IDENTITY stream: sign-up, login, one refresh and one profile change, one
// entry each.
func BenchmarkApply(b *testing.B) {
	s := benchService(b)
	m := s.Machine()
	at := time.Unix(1_800_000_000, 0).UTC()
	seq := uint64(0)
	apply := func(data []byte) {
		seq++
		m.Apply(seq, data, 0)
	}
	name := "B"
	for i := 0; b.Loop(); i++ {
		u, sid := "u"+strconv.Itoa(i), "s"+strconv.Itoa(i)
		b.StopTimer()
		es := [][]byte{
			streamtest.Entry(b, kindCreateAccount, "", at, createAccount{UserID: u, Email: u + "@x.io", Name: "A", PasswordHash: "h"}),
			streamtest.Entry(b, kindCreateSession, u, at, createSession{SessionID: sid, Device: "phone"}),
			streamtest.Entry(b, kindRefreshSession, "", at, refreshSession{SessionID: sid, Gen: 0}),
			streamtest.Entry(b, kindUpdateProfile, u, at, updateProfile{Name: &name}),
		}
		b.StartTimer()
		for _, e := range es {
			apply(e)
		}
	}
}

// BenchmarkReads measures what an authenticated request reads: the user,
// the session, and a login lookup, among 10,000 users.
func BenchmarkReads(b *testing.B) {
	s := benchService(b)
	m := s.Machine()
	at := time.Unix(1_800_000_000, 0).UTC()
	const n = 10_000
	var batch [][]byte
	seq := uint64(0)
	for i := range n {
		u := "u" + strconv.Itoa(i)
		batch = append(batch,
			streamtest.Entry(b, kindCreateAccount, "", at, createAccount{UserID: u, Email: u + "@x.io", Name: "A", PasswordHash: "h"}),
			streamtest.Entry(b, kindCreateSession, u, at, createSession{SessionID: "s" + strconv.Itoa(i), Device: "phone"}))
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
		if _, ok := st.User("u" + k); !ok {
			b.Fatal("no user")
		}
		if !st.SessionLive("u"+k, "s"+k) {
			b.Fatal("no session")
		}
		if _, _, ok := st.userByLogin(loginKey("email", "u"+k+"@x.io")); !ok {
			b.Fatal("no login")
		}
	}
}
