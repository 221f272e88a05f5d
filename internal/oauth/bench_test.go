package oauth

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

// BenchmarkApply measures one "Login with superapp" in the OAUTH stream:
// request, approval, redemption, one refresh and a revocation, one entry
// each, with requests purged as they age.
func BenchmarkApply(b *testing.B) {
	s := benchService(b)
	m := s.Machine()
	at := time.Unix(1_800_000_000, 0).UTC()
	m.Apply(1, streamtest.Entry(b, kindRegister, "dev", at, registerClient{Nonce: "c", Name: "A", RedirectURIs: []string{"https://a/cb"}, Scopes: []string{"profile"}, SecretHash: "h"}), 0)
	seq := uint64(1)
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		at = at.Add(time.Second)
		n := "r" + strconv.Itoa(i)
		s1, s2, s3 := seq+1, seq+2, seq+3
		rid := n + "." + strconv.FormatUint(s1, 10)
		approved := n + "." + strconv.FormatUint(s2, 10)
		gid := "g" + strconv.Itoa(i) + "." + strconv.FormatUint(s3, 10)
		es := [][]byte{
			streamtest.Entry(b, kindRequest, "", at, createRequest{Nonce: n, ClientID: "c.1", RedirectURI: "https://a/cb", Scopes: []string{"openid", "offline_access"}, CodeChallenge: "x"}),
			streamtest.Entry(b, kindApprove, "alice", at, decide{RequestID: rid, SessionID: "s"}),
			streamtest.Entry(b, kindRedeem, "", at, redeem{RequestID: approved, GrantNonce: "g" + strconv.Itoa(i)}),
			streamtest.Entry(b, kindRefresh, "", at, refresh{GrantID: gid, Gen: 0}),
			streamtest.Entry(b, kindRevoke, "alice", at, revoke{GrantID: gid, Reason: "revoked_by_user"}),
		}
		b.StartTimer()
		for _, e := range es {
			seq++
			m.Apply(seq, e, 0)
		}
	}
	b.StopTimer()
	if g, ok := s.State().Grant("g0.4"); !ok || g.RevokedAt == nil {
		b.Fatalf("first grant: %+v %v", g, ok)
	}
}

// BenchmarkReads measures what a mini-app's API call reads: its client
// and its grant, among 10,000 grants.
func BenchmarkReads(b *testing.B) {
	s := benchService(b)
	m := s.Machine()
	at := time.Unix(1_800_000_000, 0).UTC()
	m.Apply(1, streamtest.Entry(b, kindRegister, "dev", at, registerClient{Nonce: "c", Name: "A", RedirectURIs: []string{"https://a/cb"}, Scopes: []string{"profile"}, SecretHash: "h"}), 0)
	seq := uint64(1)
	const n = 10_000
	gids := make([]string, n)
	for i := range n {
		nn := "r" + strconv.Itoa(i)
		s1, s2, s3 := seq+1, seq+2, seq+3
		gids[i] = "g" + strconv.Itoa(i) + "." + strconv.FormatUint(s3, 10)
		for _, e := range [][]byte{
			streamtest.Entry(b, kindRequest, "", at, createRequest{Nonce: nn, ClientID: "c.1", RedirectURI: "https://a/cb", Scopes: []string{"openid"}, CodeChallenge: "x"}),
			streamtest.Entry(b, kindApprove, "u"+strconv.Itoa(i), at, decide{RequestID: nn + "." + strconv.FormatUint(s1, 10)}),
			streamtest.Entry(b, kindRedeem, "", at, redeem{RequestID: nn + "." + strconv.FormatUint(s2, 10), GrantNonce: "g" + strconv.Itoa(i)}),
		} {
			seq++
			m.Apply(seq, e, 0)
		}
	}
	st := s.State()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, ok := st.Client("c.1"); !ok {
			b.Fatal("no client")
		}
		if _, ok := st.Grant(gids[i*7919%n]); !ok {
			b.Fatal("no grant")
		}
	}
}
