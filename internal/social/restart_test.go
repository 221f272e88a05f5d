package social

import (
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"superapp/internal/apperr"
	"superapp/internal/store"
	"superapp/internal/store/storetest"
	"superapp/internal/store/storetest/streamtest"
)

func restartService(db *store.DB) *Service {
	return New(Config{Store: db, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), UserExists: func(string) bool { return true }})
}

// view is every query's answer about users.
func view(t *testing.T, st *State, users []string) string {
	t.Helper()
	var out []any
	for _, u := range users {
		in, outgoing := st.Requests(u)
		out = append(out, st.Friends(u), in, outgoing, st.Blocks(u))
		for _, o := range users {
			out = append(out, st.AreFriends(u, o), st.Blocked(u, o), st.HasBlocked(u, o))
		}
	}
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
	n := 0
	one := func(kind, actor, other string) []byte {
		n++
		return entry(t, kind, actor, other, at.Add(time.Duration(n)*time.Second))
	}
	history := [][]byte{
		one(kindRequest, "a", "b"),
		one(kindRequest, "a", "c"),
		streamtest.Batch(one(kindRequest, "b", "a"), one(kindRequest, "d", "a"), one(kindAccept, "c", "a")), // b asked back: friends
		one(kindRequest, "e", "a"),
		one(kindDecline, "a", "e"),
		one(kindRequest, "a", "e"),
		one(kindCancel, "a", "e"),
		one(kindRequest, "c", "d"),
		one(kindBlock, "d", "c"),   // ends c's request
		one(kindRequest, "c", "d"), // refused: blocked
		one(kindRequest, "e", "b"),
		one(kindBlock, "e", "b"),
		one(kindUnblock, "e", "b"),
		one(kindRemove, "c", "a"),
		one(kindRequest, "c", "a"),
	}
	more := [][]byte{
		one(kindAccept, "a", "c"),
		one(kindBlock, "a", "b"),  // ends a friendship
		one(kindRemove, "a", "b"), // refused: not friends any more
		one(kindAccept, "a", "d"),
		one(kindRequest, "e", "d"),
	}
	users := []string{"a", "b", "c", "d", "e"}

	db := storetest.Open(t)
	first := restartService(db)
	streamtest.Restore(t, first.Machine(), 0)
	streamtest.Apply(first.Machine(), 1, history)
	before := view(t, first.State(), users)
	first.Close()

	again := restartService(db)
	streamtest.Restore(t, again.Machine(), uint64(len(history)))
	replayed := restartService(storetest.Open(t))
	streamtest.Restore(t, replayed.Machine(), 0)
	streamtest.Apply(replayed.Machine(), 1, history)
	for _, s := range []*Service{again, replayed} {
		t.Cleanup(s.Close)
		if got := view(t, s.State(), users); got != before {
			t.Fatalf("after restart:\n%s\nbefore:\n%s", got, before)
		}
	}
	streamtest.Apply(again.Machine(), uint64(len(history)+1), more)
	streamtest.Apply(replayed.Machine(), uint64(len(history)+1), more)
	streamtest.SameDigest(t, again.Machine(), replayed.Machine())
	if v1, v2 := view(t, again.State(), users), view(t, replayed.State(), users); v1 != v2 {
		t.Fatalf("restarted:\n%s\nreplayed:\n%s", v1, v2)
	}

	// Spot checks that the history did what it says.
	st := again.State()
	friends := func(u string) (ids []string) {
		for _, f := range st.Friends(u) {
			ids = append(ids, f.UserID)
		}
		return ids
	}
	if got, _ := json.Marshal(friends("a")); string(got) != `["c","d"]` {
		t.Fatalf("a's friends: %s", got)
	}
	if !st.Blocked("b", "a") || !st.HasBlocked("a", "b") || st.HasBlocked("b", "a") || st.AreFriends("a", "b") {
		t.Fatal("a's block of b")
	}
	if !st.Blocked("c", "d") || st.Blocked("e", "b") {
		t.Fatal("blocks")
	}
	if in, out := st.Requests("d"); len(in) != 1 || in[0].From != "e" || len(out) != 0 {
		t.Fatalf("d's requests: %+v %+v", in, out)
	}
	if in, out := st.Requests("a"); len(in) != 0 || len(out) != 0 {
		t.Fatalf("a's requests: %+v %+v", in, out)
	}
	if o, _ := again.Machine().Outcome(firstID(t, history[9])); o.Err == nil || o.Err.Code != apperr.Blocked {
		t.Fatalf("request past a block: %+v", o)
	}
}

func firstID(t *testing.T, entry []byte) string {
	t.Helper()
	var e struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(entry, &e); err != nil {
		t.Fatal(err)
	}
	return e.ID
}
