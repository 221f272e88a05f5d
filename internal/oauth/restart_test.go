package oauth_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"superapp/internal/cmdlog"
	"superapp/internal/oauth"
	"superapp/internal/store"
	"superapp/internal/store/storetest"
	"superapp/internal/store/storetest/streamtest"
)

// recLog is memLog that also keeps every entry, to replay it elsewhere.
type recLog struct {
	mu       sync.Mutex
	entries  [][]byte
	machines []*cmdlog.Machine
}

func (l *recLog) Append(_ context.Context, _, _ string, data []byte) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries = append(l.entries, data)
	for _, m := range l.machines {
		m.Apply(uint64(len(l.entries)), data, 0)
	}
	return uint64(len(l.entries)), nil
}

// noLog commits nothing: the followers below never write.
type noLog struct{}

func (noLog) Append(context.Context, string, string, []byte) (uint64, error) {
	return 0, errors.New("no quorum")
}

// ids are what a view asks about.
type ids struct {
	owners, users, clients, requests, grants []string
}

func view(t *testing.T, st *oauth.State, now time.Time, q ids) string {
	t.Helper()
	var out []any
	for _, o := range q.owners {
		out = append(out, st.ClientsOf(o))
	}
	for _, u := range q.users {
		out = append(out, st.GrantsOf(u, now))
	}
	for _, id := range q.clients {
		c, ok := st.Client(id)
		out = append(out, c, ok)
	}
	for _, id := range q.requests {
		r, ok := st.Request(id)
		out = append(out, r, ok)
	}
	for _, id := range q.grants {
		g, ok := st.Grant(id)
		out = append(out, g, ok)
	}
	all, n := st.RevokedSince(0)
	tail, m := st.RevokedSince(1)
	out = append(out, all, n, tail, m, st.RevokedGrants())
	b, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestRestartResumes drives logins through one node while a second
// follows the stream on its own store; the second is then started afresh
// on that store: it answers every query as before and as a node that
// replayed the whole stream, and all go on to the same digest.
func TestRestartResumes(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	log := &recLog{}
	// mk starts a node on db, which holds the stream up to entry at.
	mk := func(l cmdlog.Appender, db *store.DB, at uint64) *oauth.Service {
		s := oauth.New(oauth.Config{Log: l, Store: db, Secret: []byte("cluster-secret"), Now: clk.Now, Logger: quiet})
		streamtest.Restore(t, s.Machine(), at)
		return s
	}
	driver := mk(log, storetest.Open(t), 0)
	t.Cleanup(driver.Close)
	db := storetest.Open(t)
	follower := mk(noLog{}, db, 0)
	log.machines = []*cmdlog.Machine{driver.Machine(), follower.Machine()}
	if err := driver.EnsureKeys(ctx); err != nil {
		t.Fatal(err)
	}
	q := ids{owners: []string{"dev", "dev2"}, users: []string{"alice", "bob"}}
	login := func(user string, cr oauth.Credentials, code string, scopes ...string) (oauth.Request, oauth.Grant) {
		t.Helper()
		r, err := driver.CreateRequest(ctx, oauth.NewRequest{ClientID: cr.ID, RedirectURI: "https://app.example/cb", Scopes: scopes,
			State: "s", Nonce: "n", CodeChallenge: challenge, CodeChallengeMethod: "S256"})
		if err != nil {
			t.Fatal(err)
		}
		r, _, err = driver.Approve(ctx, cmdlog.Write{}, user, "sess", r.ID)
		if err != nil {
			t.Fatal(err)
		}
		g, err := driver.Redeem(ctx, r.ApprovedID, code)
		if err != nil {
			t.Fatal(err)
		}
		q.requests = append(q.requests, r.ID, r.ApprovedID)
		q.grants = append(q.grants, g.ID)
		return r, g
	}
	register := func(owner, name string) oauth.Credentials {
		t.Helper()
		cr, _, err := driver.RegisterClient(ctx, cmdlog.Write{}, owner, oauth.ClientInput{Name: name, RedirectURIs: []string{"https://app.example/cb"}, Scopes: []string{"profile", "friends"}})
		if err != nil {
			t.Fatal(err)
		}
		q.clients = append(q.clients, cr.ID)
		return cr
	}

	// The history: two apps, logins, a rotation, refreshes, revocations,
	// a denied request and requests old enough to be purged.
	a, b := register("dev", "A"), register("dev2", "B")
	if _, _, err := driver.RotateSecret(ctx, cmdlog.Write{}, "dev", a.ID); err != nil {
		t.Fatal(err)
	}
	_, g1 := login("alice", a, "c1", "openid", "profile", "offline_access")
	rt, _ := driver.RefreshToken(g1)
	if _, err := driver.Refresh(ctx, g1.ID, 0, rt, []string{"openid", "offline_access"}); err != nil {
		t.Fatal(err)
	}
	login("alice", b, "c2", "openid")
	_, g3 := login("bob", a, "c3", "openid", "offline_access")
	if _, _, err := driver.RevokeGrant(ctx, cmdlog.Write{}, "bob", g3.ID); err != nil {
		t.Fatal(err)
	}
	denied, err := driver.CreateRequest(ctx, oauth.NewRequest{ClientID: b.ID, RedirectURI: "https://app.example/cb", Scopes: []string{"openid"},
		CodeChallenge: challenge, CodeChallengeMethod: "S256"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := driver.Deny(ctx, cmdlog.Write{}, "bob", "s", denied.ID); err != nil {
		t.Fatal(err)
	}
	q.requests = append(q.requests, denied.ID)
	clk.Advance(2 * time.Hour) // the requests so far are purged by the next command
	login("bob", b, "c4", "openid", "offline_access")
	if err := driver.RevokeAll(ctx, "alice", a.ID); err != nil {
		t.Fatal(err)
	}
	before := view(t, follower.State(), clk.Now(), q)
	follower.Close()

	// The follower starts again on its own store; another node replays.
	restarted := mk(noLog{}, db, uint64(len(log.entries)))
	t.Cleanup(restarted.Close)
	replayed := mk(noLog{}, storetest.Open(t), 0)
	t.Cleanup(replayed.Close)
	streamtest.Apply(replayed.Machine(), 1, log.entries)
	for _, s := range []*oauth.Service{restarted, replayed} {
		if got := view(t, s.State(), clk.Now(), q); got != before {
			t.Fatalf("after restart:\n%s\nbefore:\n%s", got, before)
		}
		// The keys come from the store: nothing to write.
		if err := s.EnsureKeys(ctx); err != nil {
			t.Fatal(err)
		}
		if err := s.CheckSecret(ctx, b.ID, b.ClientSecret); err != nil {
			t.Fatal(err)
		}
	}

	// More history, followed by both.
	log.mu.Lock()
	log.machines = []*cmdlog.Machine{driver.Machine(), restarted.Machine(), replayed.Machine()}
	log.mu.Unlock()
	_, g5 := login("alice", b, "c5", "openid", "offline_access")
	rt5, _ := driver.RefreshToken(g5)
	if _, err := driver.Refresh(ctx, g5.ID, 0, rt5, nil); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Minute)
	if _, err := driver.Refresh(ctx, g5.ID, 0, rt5, nil); err == nil { // a reuse: revokes
		t.Fatal("reused refresh token accepted")
	}
	register("dev2", "C")
	clk.Advance(2 * time.Hour)
	login("bob", a, "c6", "openid")

	_, d := driver.Machine().Digest()
	for _, s := range []*oauth.Service{restarted, replayed} {
		if _, got := s.Machine().Digest(); got != d {
			t.Fatalf("digests differ: %s, driver %s", got, d)
		}
	}
	want := view(t, driver.State(), clk.Now(), q)
	for _, s := range []*oauth.Service{restarted, replayed} {
		if got := view(t, s.State(), clk.Now(), q); got != want {
			t.Fatalf("after more entries:\n%s\nwant:\n%s", got, want)
		}
	}

	// Spot checks that the history did what it says.
	st := restarted.State()
	if _, ok := st.Request(denied.ID); ok {
		t.Fatal("a request two hours old is kept")
	}
	revoked, n := st.RevokedSince(0)
	if n != 3 || len(revoked) != 3 || revoked[0].ID != g3.ID || revoked[1].ID != g1.ID || revoked[2].ID != g5.ID {
		t.Fatalf("revocations: %d %+v", n, revoked)
	}
	if got := st.ClientsOf("dev2"); len(got) != 2 || got[0].ID != b.ID {
		t.Fatalf("dev2's apps: %+v", got)
	}
	if c, _ := st.Client(a.ID); c.SecretVersion != 2 {
		t.Fatalf("rotation lost: %+v", c)
	}
	if gs := st.GrantsOf("alice", clk.Now()); len(gs) != 0 {
		t.Fatalf("alice's live grants: %+v", gs)
	}
}
