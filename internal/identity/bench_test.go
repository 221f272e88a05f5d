package identity

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
	return New(Config{Store: benchStore(tb), Secret: []byte("s"), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
}

func entry(tb testing.TB, kind, actor string, at time.Time, data any) []byte {
	tb.Helper()
	raw, err := json.Marshal(data)
	if err != nil {
		tb.Fatal(err)
	}
	b, err := json.Marshal(&cmdlog.Envelope{ID: cmdlog.NewID(), Kind: kind, Actor: actor, At: at, Data: raw})
	if err != nil {
		tb.Fatal(err)
	}
	return b
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
			entry(b, kindCreateAccount, "", at, createAccount{UserID: u, Email: u + "@x.io", Name: "A", PasswordHash: "h"}),
			entry(b, kindCreateSession, u, at, createSession{SessionID: sid, Device: "phone"}),
			entry(b, kindRefreshSession, "", at, refreshSession{SessionID: sid, Gen: 0}),
			entry(b, kindUpdateProfile, u, at, updateProfile{Name: &name}),
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
	var batch []json.RawMessage
	seq := uint64(0)
	for i := range n {
		u := "u" + strconv.Itoa(i)
		batch = append(batch,
			entry(b, kindCreateAccount, "", at, createAccount{UserID: u, Email: u + "@x.io", Name: "A", PasswordHash: "h"}),
			entry(b, kindCreateSession, u, at, createSession{SessionID: "s" + strconv.Itoa(i), Device: "phone"}))
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
