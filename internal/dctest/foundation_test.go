package dctest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"superapp/client"
	"superapp/internal/dctest"
	"superapp/internal/engine"
)

const password = "violet-harbor-tangent-91"

type member struct {
	login string
	id    string
	home  string // the DC it signed up through
	c     *client.Client
}

// TestIdentityFire is the Foundation's fire drill: users and friendships made
// through all three DCs survive the SIGKILL of the DC leading the identity
// stream, and a DC rebuilt from an empty disk catches up and serves them.
func TestIdentityFire(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c := dctest.Start(t)

	// Every stream is R3 with exactly one replica per DC.
	for _, spec := range engine.Streams {
		info := c.StreamInfo(ctx, spec.Name)
		if info.Config.Replicas != 3 {
			t.Fatalf("%s: replicas %d, want 3", spec.Name, info.Config.Replicas)
		}
		dcs := []string{info.Cluster.Leader}
		for _, r := range info.Cluster.Replicas {
			dcs = append(dcs, r.Name)
		}
		slices.Sort(dcs)
		if !slices.Equal(dcs, dctest.Names) {
			t.Fatalf("%s: replicas on %v, want one on each of %v", spec.Name, dcs, dctest.Names)
		}
	}

	// Nobody reaches a stream without the cluster secret.
	if nc, err := nats.Connect("nats://"+c.DC("dc1").NATSAddr, nats.MaxReconnects(0)); err == nil {
		nc.Close()
		t.Fatal("anonymous NATS connection accepted")
	} else if !strings.Contains(strings.ToLower(err.Error()), "authorization") {
		t.Fatalf("anonymous NATS connection: %v, want an authorization error", err)
	}
	if nc, err := nats.Connect("nats://"+c.DC("dc1").NATSAddr, nats.UserInfo(engine.User, "wrong"), nats.MaxReconnects(0)); err == nil {
		nc.Close()
		t.Fatal("NATS connection with a wrong secret accepted")
	}

	// Sign up three users through each DC.
	var ms []*member
	for i := 0; i < 9; i++ {
		d := c.DCs[i%3]
		m := &member{login: fmt.Sprintf("fire%d@example.com", i), home: d.Name}
		m.c = client.New(rotate(c.URLs(), i%3))
		a, err := m.c.SignUp(ctx, m.login, password, fmt.Sprintf("User %d", i))
		if err != nil {
			t.Fatalf("sign up %d via %s: %v", i, d.Name, err)
		}
		m.id = a.UserID
		if _, err := m.c.Login(ctx, m.login, password, "phone"); err != nil {
			t.Fatalf("login %d: %v", i, err)
		}
		ms = append(ms, m)
	}
	// Friendships: i asks i+1 through i's DC, i+1 accepts through its own.
	want := map[string][]string{}
	for i := range ms {
		a, b := ms[i], ms[(i+1)%len(ms)]
		if _, err := a.c.RequestFriend(ctx, b.id); err != nil {
			t.Fatalf("request %d->%d: %v", i, (i+1)%len(ms), err)
		}
		b.c.Observe(a.c.Position())
		if _, err := b.c.AcceptFriend(ctx, a.id); err != nil {
			t.Fatalf("accept %d->%d: %v", i, (i+1)%len(ms), err)
		}
		want[a.id] = append(want[a.id], b.id)
		want[b.id] = append(want[b.id], a.id)
	}

	// Read-your-writes across DCs: a write on dc1, read at once on dc2 and
	// dc3 with its position token, shows the write.
	for i, d := range c.DCs[1:] {
		status := fmt.Sprintf("written on dc1, read on %s", d.Name)
		writer := client.New([]string{c.DC("dc1").URL()})
		writer.UseTokens(client.Tokens{AccessToken: ms[i].c.AccessToken(), UserID: ms[i].id})
		if _, err := writer.UpdateProfile(ctx, nil, &status); err != nil {
			t.Fatal(err)
		}
		reader := client.New([]string{d.URL()})
		reader.UseTokens(client.Tokens{AccessToken: ms[i].c.AccessToken(), UserID: ms[i].id})
		reader.Observe(writer.Position())
		if me, err := reader.Me(ctx); err != nil || me.Status != status {
			t.Fatalf("read on %s after write on dc1: %v %q", d.Name, err, me.Status)
		}
	}

	// One Idempotency-Key, three DCs: one account, the original answer.
	idem := func(base string) (int, string, string) {
		req, _ := http.NewRequest("POST", base+"/v1/accounts", strings.NewReader(`{"email":"idem@example.com","password":"`+password+`","name":"Idem"}`))
		req.Header.Set("Idempotency-Key", "signup-1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var a struct {
			UserID string `json:"user_id"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&a)
		return resp.StatusCode, a.UserID, resp.Header.Get("Idempotent-Replayed")
	}
	st, idemUser, _ := idem(c.DC("dc1").URL())
	if st != http.StatusCreated || idemUser == "" {
		t.Fatalf("idempotent sign-up: %d", st)
	}
	for _, d := range c.DCs[1:] {
		if st, u, replayed := idem(d.URL()); st != http.StatusCreated || u != idemUser || replayed != "true" {
			t.Fatalf("replay on %s: %d %s replayed=%q, want the original %s", d.Name, st, u, replayed, idemUser)
		}
	}

	// A session revoked on one DC stops working on every DC within seconds,
	// and a refresh token rotates on any DC.
	tablet := client.New([]string{c.DC("dc1").URL()})
	tt, err := tablet.Login(ctx, ms[0].login, password, "tablet")
	if err != nil {
		t.Fatal(err)
	}
	onDC3 := client.New([]string{c.DC("dc3").URL()})
	onDC3.UseTokens(tt)
	if _, err := onDC3.Refresh(ctx); err != nil {
		t.Fatalf("refresh on dc3 of a dc1 session: %v", err)
	}
	onDC2 := client.New([]string{c.DC("dc2").URL()})
	onDC2.UseTokens(client.Tokens{AccessToken: onDC3.AccessToken(), UserID: ms[0].id})
	if _, err := onDC2.Me(ctx); err != nil {
		t.Fatalf("dc3-refreshed token on dc2: %v", err)
	}
	revoker := client.New([]string{c.DC("dc2").URL()})
	revoker.UseTokens(client.Tokens{AccessToken: ms[0].c.AccessToken(), UserID: ms[0].id})
	revoked := time.Now()
	if err := revoker.RevokeSession(ctx, tt.SessionID); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	for _, d := range c.DCs {
		cl := client.New([]string{d.URL()})
		cl.UseTokens(client.Tokens{AccessToken: onDC3.AccessToken(), UserID: ms[0].id})
		for {
			_, err := cl.Me(ctx)
			if client.Code(err) == "session_revoked" {
				break
			}
			if time.Since(revoked) > 5*time.Second {
				t.Fatalf("revoked session still works on %s after 5s: %v", d.Name, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	t.Logf("MEASURE revoked session refused on all three DCs %v after revoke", time.Since(revoked).Round(time.Millisecond))

	// Fire: SIGKILL the DC whose server leads the identity stream.
	victim := c.Leader(ctx, "IDENTITY")
	var survivors []string
	for _, d := range c.DCs {
		if d.Name != victim {
			survivors = append(survivors, d.URL())
		}
	}
	t.Logf("identity leader is %s: killing it", victim)
	fire := time.Now()
	c.Kill(victim)

	// Time to the first successful login through a survivor.
	probe := client.New(survivors)
	for {
		if _, err := probe.Login(ctx, ms[0].login, password, "probe"); err == nil {
			break
		} else if ctx.Err() != nil {
			t.Fatalf("no login through survivors: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("MEASURE first login through a survivor %v after SIGKILL of %s", time.Since(fire).Round(time.Millisecond), victim)

	// Every account logs in and every friendship is there; tokens issued
	// before the fire still work, also through clients that still list the
	// dead DC (first, for a third of them) and must fail over.
	for i, m := range ms {
		if me, err := m.c.Me(ctx); err != nil || me.UserID != m.id {
			t.Fatalf("user %d: failover client (home %s): %v", i, m.home, err)
		}
		old := client.New(survivors)
		old.UseTokens(client.Tokens{AccessToken: m.c.AccessToken(), UserID: m.id})
		if me, err := old.Me(ctx); err != nil || me.UserID != m.id {
			t.Fatalf("user %d: pre-fire token: %v (%s)", i, err, me.UserID)
		}
		fresh := client.New(survivors)
		if _, err := fresh.Login(ctx, m.login, password, "after-fire"); err != nil {
			t.Fatalf("user %d: login after fire: %v", i, err)
		}
		checkFriends(ctx, t, fresh, m, want[m.id])
	}
	// The Idempotency-Key still answers with the original after the fire.
	for _, d := range c.DCs {
		if d.Name == victim {
			continue
		}
		if st, u, _ := idem(d.URL()); st != http.StatusCreated || u != idemUser {
			t.Fatalf("replay on %s after the fire: %d %s, want %s", d.Name, st, u, idemUser)
		}
	}

	// Writes go on: a new friendship through the survivors.
	a, b := client.New(survivors), client.New(survivors)
	if _, err := a.Login(ctx, ms[0].login, password, "w"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Login(ctx, ms[4].login, password, "w"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.RequestFriend(ctx, ms[4].id); err != nil {
		t.Fatalf("request after fire: %v", err)
	}
	b.Observe(a.Position())
	if _, err := b.AcceptFriend(ctx, ms[0].id); err != nil {
		t.Fatalf("accept after fire: %v", err)
	}
	want[ms[0].id] = append(want[ms[0].id], ms[4].id)
	want[ms[4].id] = append(want[ms[4].id], ms[0].id)

	// Rebuild the burnt DC from an empty disk.
	c.Wipe(victim)
	c.Restart(victim)
	// It must say it is not ready, and why, before it has caught up.
	var reasons []string
	for len(reasons) == 0 {
		var rd struct {
			Status  string   `json:"status"`
			Reasons []string `json:"reasons"`
		}
		req, _ := http.NewRequest("GET", c.DC(victim).URL()+"/readyz", nil)
		req.Header.Set("Authorization", "Bearer "+c.OpsToken()) // the reasons are for operators
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			time.Sleep(5 * time.Millisecond)
			continue
		}
		_ = json.NewDecoder(resp.Body).Decode(&rd)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatalf("rebuilt %s ready at once, before catching up", victim)
		}
		if resp.StatusCode != http.StatusServiceUnavailable || rd.Status != "not_ready" {
			t.Fatalf("readyz of rebuilding %s: %d %+v", victim, resp.StatusCode, rd)
		}
		reasons = rd.Reasons
	}
	t.Logf("rebuilding %s not ready: %v", victim, reasons)
	took := c.WaitReady(victim, 2*time.Minute)
	t.Logf("MEASURE wiped %s caught up and ready %v after restart", victim, took.Round(time.Millisecond))

	// All three DCs hold the same state: same positions, same digests.
	c.WaitConverged(ctx)

	rebuilt := []string{c.DC(victim).URL()}
	for i, m := range ms {
		cl := client.New(rebuilt)
		if _, err := cl.Login(ctx, m.login, password, "rebuilt"); err != nil {
			t.Fatalf("user %d: login on rebuilt %s: %v", i, victim, err)
		}
		checkFriends(ctx, t, cl, m, want[m.id])
	}
}

func checkFriends(ctx context.Context, t *testing.T, cl *client.Client, m *member, want []string) {
	t.Helper()
	fs, err := cl.Friends(ctx)
	if err != nil {
		t.Fatalf("%s friends: %v", m.login, err)
	}
	var got []string
	for _, f := range fs {
		got = append(got, f.UserID)
	}
	w := slices.Clone(want)
	slices.Sort(got)
	slices.Sort(w)
	if !slices.Equal(got, w) {
		t.Fatalf("%s friends on %s: %v, want %v", m.login, cl.Endpoint(), got, w)
	}
}

func rotate(s []string, k int) []string { return append(slices.Clone(s[k:]), s[:k]...) }

// TestPeersNeedSecret: a node given --peers refuses to start without a
// cluster secret.
func TestPeersNeedSecret(t *testing.T) {
	bin := dctest.Binary(t)
	cmd := exec.Command(bin, "serve", "--data", t.TempDir(), "--http", "127.0.0.1:0",
		"--cluster-listen", "127.0.0.1:0", "--peers", "127.0.0.1:1")
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatal("started without a cluster secret")
	}
	if !strings.Contains(string(out), "--cluster-secret is required") {
		t.Fatalf("output %q does not name --cluster-secret", out)
	}
}
