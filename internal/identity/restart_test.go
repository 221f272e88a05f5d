package identity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"superapp/internal/store"
	"superapp/internal/store/storetest"
	"superapp/internal/store/storetest/streamtest"
)

// noLog commits nothing: a node restarted on its own disk must not need
// to write to answer.
type noLog struct{}

func (noLog) Append(context.Context, string, string, []byte) (uint64, error) {
	return 0, errors.New("no quorum")
}

func restartService(db *store.DB) *Service {
	return New(Config{Log: noLog{}, Store: db, Secret: []byte("cluster-secret"), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
}

// view is every query's answer about the given users and sessions.
func view(t *testing.T, st *State, users, sessions []string) string {
	t.Helper()
	var out []any
	for _, u := range users {
		usr, ok := st.User(u)
		out = append(out, usr, ok, st.Sessions(u, false), st.Sessions(u, true))
		for _, l := range accountLogins(usr.Phone, usr.Email) {
			lu, hash, ok := st.userByLogin(l)
			out = append(out, lu, hash, ok)
		}
	}
	for _, id := range sessions {
		ss, ok := st.session(id)
		out = append(out, ss, ok, ss.Gen, ss.Pos, st.SessionLive(ss.UserID, id))
	}
	nu, ns := st.Counts()
	k, ok := st.latestKeys()
	out = append(out, nu, ns, k, ok)
	b, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestRestartResumes applies a history through a machine on a store, then
// starts a fresh state and machine on the same store: it answers every
// query as before and as a node that replayed the whole stream, and both
// go on to the same digest.
func TestRestartResumes(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	k, err := newKeyBundle()
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := k.seal([]byte("cluster-secret"))
	if err != nil {
		t.Fatal(err)
	}
	name, status := "Minji", "at work"
	one := func(kind, actor string, d time.Duration, data any) []byte {
		e := env(kind, actor, at.Add(d), data)
		b, _ := json.Marshal(&e)
		return b
	}
	var history [][]byte
	history = append(history,
		one(kindAddKeys, "", 0, sealed),
		streamtest.Batch(
			one(kindCreateAccount, "", time.Second, createAccount{UserID: "u1", Email: "a@x.io", Name: "A", PasswordHash: "h1"}),
			one(kindCreateAccount, "", time.Second, createAccount{UserID: "u2", Phone: "+821012345678", Name: "B", PasswordHash: "h2"}),
			one(kindCreateAccount, "", time.Second, createAccount{UserID: "u3", Email: "a@x.io", Name: "C", PasswordHash: "h3"}), // login taken
			one(kindCreateSession, "u1", time.Second, createSession{SessionID: "s1", Device: "phone"}),
			one(kindCreateSession, "u1", time.Second, createSession{SessionID: "s2", Device: "laptop"}),
		),
		one(kindCreateSession, "u2", 2*time.Second, createSession{SessionID: "s3", Device: "tablet", Address: "10.0.0.1"}),
		one(kindRefreshSession, "", 3*time.Second, refreshSession{SessionID: "s1", Gen: 0}),
		one(kindRefreshSession, "", 4*time.Second, refreshSession{SessionID: "s3", Gen: 0}),
		one(kindRefreshSession, "", 5*time.Second, refreshSession{SessionID: "s3", Gen: 0}), // reuse: revoked
		one(kindRevokeSession, "u1", 6*time.Second, revokeSession{SessionID: "s2"}),
		one(kindUpdateProfile, "u1", 7*time.Second, updateProfile{Name: &name, Status: &status}),
		one(kindAddKeys, "", 8*time.Second, sealedKeys{Kid: "second", Sealed: []byte("x")}), // first writer won
	)
	more := [][]byte{
		one(kindCreateAccount, "", 10*time.Second, createAccount{UserID: "u4", Email: "d@x.io", Name: "D", PasswordHash: "h4"}),
		one(kindCreateSession, "u4", 11*time.Second, createSession{SessionID: "s4", Device: "phone"}),
		one(kindRefreshSession, "", 12*time.Second, refreshSession{SessionID: "s1", Gen: 1}),
		one(kindRevokeSession, "u2", 13*time.Second, revokeSession{SessionID: "s1"}),                  // not theirs
		one(kindCreateSession, "u1", 14*time.Second, createSession{SessionID: "s1", Device: "again"}), // id in use
	}
	users := []string{"u1", "u2", "u3", "u4"}
	sessions := []string{"s1", "s2", "s3", "s4"}

	db := storetest.Open(t)
	first := restartService(db)
	streamtest.Restore(t, first.Machine(), 0)
	streamtest.Apply(first.Machine(), 1, history)
	before := view(t, first.State(), users, sessions)
	first.Close()

	again := restartService(db)
	streamtest.Restore(t, again.Machine(), uint64(len(history)))
	replayed := restartService(storetest.Open(t))
	streamtest.Restore(t, replayed.Machine(), 0)
	streamtest.Apply(replayed.Machine(), 1, history)
	for _, s := range []*Service{again, replayed} {
		t.Cleanup(s.Close)
		if got := view(t, s.State(), users, sessions); got != before {
			t.Fatalf("after restart:\n%s\nbefore:\n%s", got, before)
		}
		// The keys come from the store: nothing to write.
		if err := s.EnsureKeys(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	streamtest.SameDigest(t, again.Machine(), replayed.Machine())
	streamtest.Apply(again.Machine(), uint64(len(history)+1), more)
	streamtest.Apply(replayed.Machine(), uint64(len(history)+1), more)
	streamtest.SameDigest(t, again.Machine(), replayed.Machine())
	v1, v2 := view(t, again.State(), users, sessions), view(t, replayed.State(), users, sessions)
	if v1 != v2 {
		t.Fatalf("restarted:\n%s\nreplayed:\n%s", v1, v2)
	}
	// Spot checks that the history did what it says.
	st := again.State()
	if u, ok := st.User("u1"); !ok || u.Name != "Minji" || u.Status != "at work" {
		t.Fatalf("u1: %+v %v", u, ok)
	}
	if _, ok := st.User("u3"); ok {
		t.Fatal("u3 made with a taken login")
	}
	if got := fmt.Sprint(len(st.Sessions("u1", true)), len(st.Sessions("u1", false))); got != "2 1" {
		t.Fatalf("u1 sessions all/live: %s", got)
	}
	if ss := st.Sessions("u1", true); ss[0].ID != "s2" || ss[1].ID != "s1" || ss[1].Gen != 2 {
		t.Fatalf("u1 sessions newest first: %+v", ss)
	}
	if st.SessionLive("u2", "s3") {
		t.Fatal("s3 live after its refresh token was reused")
	}
	if u, s := st.Counts(); u != 3 || s != 2 {
		t.Fatalf("counts: %d users, %d live sessions", u, s)
	}
	if k, _ := st.latestKeys(); k.Kid != sealed.Kid {
		t.Fatalf("keys: %s, want %s", k.Kid, sealed.Kid)
	}
}
