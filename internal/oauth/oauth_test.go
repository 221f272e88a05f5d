package oauth_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"superapp/internal/apperr"
	"superapp/internal/cmdlog"
	"superapp/internal/oauth"
	"superapp/internal/store/storetest"
)

// memLog is an in-memory stream: every append is applied at once by every
// machine that follows it, in the same order, as every DC's would be.
type memLog struct {
	mu       sync.Mutex
	seq      uint64
	machines []*cmdlog.Machine
}

func (l *memLog) Append(_ context.Context, _, _ string, data []byte) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seq++
	for _, m := range l.machines {
		m.Apply(l.seq, data, 0)
	}
	return l.seq, nil
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// nodes returns n services (DCs) on one log, with the keys made.
func nodes(t *testing.T, n int) ([]*oauth.Service, *clock) {
	t.Helper()
	log := &memLog{}
	clk := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	var out []*oauth.Service
	for range n {
		s := oauth.New(oauth.Config{Log: log, Store: storetest.Open(t), Secret: []byte("cluster-secret"), Now: clk.Now, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		t.Cleanup(s.Close)
		log.machines = append(log.machines, s.Machine())
		out = append(out, s)
	}
	for _, s := range out {
		if err := s.EnsureKeys(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	return out, clk
}

const challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"

// approved registers an app, makes a request on a and approves it on b.
func approved(t *testing.T, a, b *oauth.Service, scopes ...string) (oauth.Credentials, oauth.Request) {
	t.Helper()
	ctx := context.Background()
	cr, _, err := a.RegisterClient(ctx, cmdlog.Write{}, "dev", oauth.ClientInput{Name: "App", RedirectURIs: []string{"https://app.example/cb"}, Scopes: []string{"profile"}})
	if err != nil {
		t.Fatal(err)
	}
	r, err := a.CreateRequest(ctx, oauth.NewRequest{ClientID: cr.ID, RedirectURI: "https://app.example/cb", Scopes: scopes,
		State: "s", Nonce: "n", CodeChallenge: challenge, CodeChallengeMethod: "S256"})
	if err != nil {
		t.Fatal(err)
	}
	r, _, err = b.Approve(ctx, cmdlog.Write{}, "alice", "sess", r.ID)
	if err != nil {
		t.Fatal(err)
	}
	return cr, r
}

func code(err error) string {
	if err == nil {
		return ""
	}
	return apperr.From(err).Code
}

func TestCodeIsSingleUse(t *testing.T) {
	ss, clk := nodes(t, 3)
	ctx := context.Background()
	_, r := approved(t, ss[0], ss[1], "openid", "profile")
	g, err := ss[2].Redeem(ctx, r.ApprovedID, "code-1")
	if err != nil {
		t.Fatal(err)
	}
	// The same code again soon, on another DC: the client retrying.
	g2, err := ss[0].Redeem(ctx, r.ApprovedID, "code-1")
	if err != nil || g2.ID != g.ID {
		t.Fatalf("retry: %v %s, want %s", err, g2.ID, g.ID)
	}
	// Another code of the same request: a reuse, the grant is revoked.
	if _, err := ss[1].Redeem(ctx, r.ApprovedID, "code-2"); code(err) != apperr.Conflict {
		t.Fatalf("second code: %v", err)
	}
	for _, s := range ss {
		if g, _ := s.State().Grant(g.ID); g.RevokedAt == nil || g.RevokeReason != "code_reused" {
			t.Fatalf("grant not revoked everywhere: %+v", g)
		}
	}
	// The first code later: refused too.
	clk.Advance(2 * time.Minute)
	if _, err := ss[0].Redeem(ctx, r.ApprovedID, "code-1"); code(err) != apperr.SessionRevoked {
		t.Fatalf("late reuse: %v", err)
	}
}

func TestCodeReusedLateRevokes(t *testing.T) {
	ss, clk := nodes(t, 2)
	ctx := context.Background()
	_, r := approved(t, ss[0], ss[1], "openid")
	g, err := ss[0].Redeem(ctx, r.ApprovedID, "c")
	if err != nil {
		t.Fatal(err)
	}
	tokID, _ := ss[0].AccessTokenID(g)
	if _, err := ss[1].CheckAccess(ctx, tokID, "alice"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(oauth.ReplayWindow + time.Second)
	if _, err := ss[1].Redeem(ctx, r.ApprovedID, "c"); code(err) != apperr.SessionRevoked {
		t.Fatalf("reuse: %v", err)
	}
	if _, err := ss[0].CheckAccess(ctx, tokID, "alice"); code(err) != apperr.SessionRevoked {
		t.Fatalf("token of a reused code: %v", err)
	}
}

func TestCodeExpires(t *testing.T) {
	ss, clk := nodes(t, 1)
	_, r := approved(t, ss[0], ss[0], "openid")
	clk.Advance(oauth.CodeTTL + time.Second)
	if _, err := ss[0].Redeem(context.Background(), r.ApprovedID, "c"); code(err) != oauth.RequestExpired {
		t.Fatalf("late code: %v", err)
	}
}

func TestRefreshRotation(t *testing.T) {
	ss, clk := nodes(t, 3)
	ctx := context.Background()
	_, r := approved(t, ss[0], ss[1], "openid", "profile", "offline_access")
	g, err := ss[2].Redeem(ctx, r.ApprovedID, "c")
	if err != nil || !g.Offline {
		t.Fatalf("redeem: %v %+v", err, g)
	}
	rt0, _ := ss[2].RefreshToken(g)
	gid, gen, ok := ss[0].ParseRefreshToken(rt0)
	if !ok || gid != g.ID || gen != 0 {
		t.Fatalf("parse %q: %s %d %v", rt0, gid, gen, ok)
	}
	if _, _, ok := ss[0].ParseRefreshToken(rt0 + "x"); ok {
		t.Fatal("a tampered refresh token parsed")
	}
	g1, err := ss[0].Refresh(ctx, g.ID, 0, rt0, nil)
	if err != nil || g1.Gen != 1 {
		t.Fatalf("rotate: %v %d", err, g1.Gen)
	}
	rt1, _ := ss[0].RefreshToken(g1)
	// Narrowing the scopes on refresh sticks.
	g2, err := ss[1].Refresh(ctx, g.ID, 1, rt1, []string{"openid", "offline_access"})
	if err != nil || g2.Gen != 2 || g2.HasScope("profile") {
		t.Fatalf("rotate and narrow: %v %+v", err, g2)
	}
	// Widening is refused.
	rt2, _ := ss[1].RefreshToken(g2)
	if _, err := ss[1].Refresh(ctx, g.ID, 2, rt2, []string{"profile"}); code(err) != apperr.Invalid {
		t.Fatalf("widen: %v", err)
	}
	// An old generation, past the replay window: the grant ends.
	clk.Advance(2 * time.Minute)
	if _, err := ss[2].Refresh(ctx, g.ID, 1, rt1, nil); code(err) != apperr.SessionRevoked {
		t.Fatalf("reuse of gen 1: %v", err)
	}
	if _, err := ss[0].Refresh(ctx, g.ID, 2, rt2, nil); code(err) != apperr.SessionRevoked {
		t.Fatalf("current token after reuse: %v", err)
	}
}

func TestRequestDecisions(t *testing.T) {
	ss, clk := nodes(t, 2)
	ctx := context.Background()
	cr, _ := approved(t, ss[0], ss[1], "openid")
	mk := func(scopes ...string) (oauth.Request, error) {
		return ss[0].CreateRequest(ctx, oauth.NewRequest{ClientID: cr.ID, RedirectURI: "https://app.example/cb", Scopes: scopes,
			CodeChallenge: challenge, CodeChallengeMethod: "S256"})
	}
	if _, err := mk("openid", "pay"); apperr.From(err).Field != "scope" {
		t.Fatalf("unregistered scope: %v", err)
	}
	if _, err := mk("profile"); apperr.From(err).Field != "scope" {
		t.Fatalf("no openid: %v", err)
	}
	if _, err := ss[0].CreateRequest(ctx, oauth.NewRequest{ClientID: cr.ID, RedirectURI: "https://app.example/cb", Scopes: []string{"openid"},
		CodeChallenge: challenge, CodeChallengeMethod: "plain"}); apperr.From(err).Field != "code_challenge_method" {
		t.Fatalf("plain PKCE: %v", err)
	}
	r, err := mk("openid")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := ss[1].Deny(ctx, cmdlog.Write{}, "alice", "s", r.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ss[0].Approve(ctx, cmdlog.Write{}, "alice", "s", r.ID); code(err) != apperr.Conflict {
		t.Fatalf("approve after deny: %v", err)
	}
	r, _ = mk("openid")
	clk.Advance(oauth.RequestTTL)
	if _, _, err := ss[0].Approve(ctx, cmdlog.Write{}, "alice", "s", r.ID); code(err) != oauth.RequestExpired {
		t.Fatalf("late approval: %v", err)
	}
	// An hour on, any command forgets the old requests, on every node.
	clk.Advance(time.Hour)
	if _, err := mk("openid"); err != nil {
		t.Fatal(err)
	}
	for _, s := range ss {
		if _, ok := s.State().Request(r.ID); ok {
			t.Fatal("old request kept")
		}
	}
}

func TestSecrets(t *testing.T) {
	ss, _ := nodes(t, 2)
	ctx := context.Background()
	w := cmdlog.Write{ID: "dev/k1"}
	cr, _, err := ss[0].RegisterClient(ctx, w, "dev", oauth.ClientInput{Name: "A", RedirectURIs: []string{"https://a.example/cb"}})
	if err != nil {
		t.Fatal(err)
	}
	// The retry on another DC gets the same secret.
	again, res, err := ss[1].RegisterClient(ctx, w, "dev", oauth.ClientInput{Name: "A", RedirectURIs: []string{"https://a.example/cb"}})
	if err != nil || !res.Replayed || again.ClientSecret != cr.ClientSecret || again.ID != cr.ID {
		t.Fatalf("replay: %v %v %+v", err, res.Replayed, again)
	}
	if err := ss[1].CheckSecret(ctx, cr.ID, cr.ClientSecret); err != nil {
		t.Fatal(err)
	}
	if err := ss[1].CheckSecret(ctx, cr.ID, "sas1_nope"); code(err) != apperr.Unauthenticated {
		t.Fatalf("wrong secret: %v", err)
	}
	if _, _, err := ss[0].RotateSecret(ctx, cmdlog.Write{}, "mallory", cr.ID); code(err) != apperr.Forbidden {
		t.Fatalf("rotate by another: %v", err)
	}
	nc, _, err := ss[0].RotateSecret(ctx, cmdlog.Write{}, "dev", cr.ID)
	if err != nil || nc.ClientSecret == cr.ClientSecret || nc.SecretVersion != 2 {
		t.Fatalf("rotate: %v %+v", err, nc)
	}
	if err := ss[1].CheckSecret(ctx, cr.ID, cr.ClientSecret); err == nil {
		t.Fatal("old secret still works")
	}
	if err := ss[1].CheckSecret(ctx, cr.ID, nc.ClientSecret); err != nil {
		t.Fatal(err)
	}
}

// TestNodesConverge: every node that applied the same log has the same
// digest: the apply logic is deterministic.
func TestNodesConverge(t *testing.T) {
	ss, clk := nodes(t, 3)
	ctx := context.Background()
	for i := range 5 {
		_, r := approved(t, ss[i%3], ss[(i+1)%3], "openid", "offline_access")
		g, _ := ss[(i+2)%3].Redeem(ctx, r.ApprovedID, "c")
		rt, _ := ss[0].RefreshToken(g)
		_, _ = ss[1].Refresh(ctx, g.ID, 0, rt, nil)
		clk.Advance(time.Minute)
	}
	_, d0 := ss[0].Machine().Digest()
	for _, s := range ss[1:] {
		if _, d := s.Machine().Digest(); d != d0 {
			t.Fatalf("digests differ: %s %s", d, d0)
		}
	}
}
