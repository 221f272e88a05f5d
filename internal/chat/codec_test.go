package chat

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"superapp/internal/store"
	"superapp/internal/store/storetest"
)

// TestTimesKeepWhatJSONShows: a time read back from a record is the same
// instant and shows the same in JSON, zone offset included.
func TestTimesKeepWhatJSONShows(t *testing.T) {
	for _, tm := range []time.Time{
		{},
		t0,
		t0.Add(123456789 * time.Nanosecond),
		time.Date(1969, 12, 31, 23, 59, 59, 999, time.UTC),
		t0.In(time.FixedZone("KST", 9*3600)),
		t0.In(time.FixedZone("", -(3*3600 + 30*60))),
		t0.In(time.FixedZone("LMT", 517)), // not whole minutes
		t0.Local(),
	} {
		e := newEncoder()
		e.time(tm)
		d := newDecoder(e.b)
		got := d.time()
		if err := d.done(); err != nil {
			t.Fatalf("%v: %v", tm, err)
		}
		want, _ := json.Marshal(tm)
		shown, _ := json.Marshal(got)
		if !got.Equal(tm) || string(shown) != string(want) {
			t.Fatalf("%s came back as %s", want, shown)
		}
	}
}

// TestRecordsComeBackWhole: every record reads back as it was written,
// and a record cut short or of another format is corrupt.
func TestRecordsComeBackWhole(t *testing.T) {
	members := roster{
		{User: "alice", memberRec: memberRec{Role: "member", Joined: t0, From: 0}},
		{User: "bob", memberRec: memberRec{Role: "member", Joined: t0.Add(time.Minute), From: 3}},
	}
	direct := convRec{ID: "d1", Kind: Direct, CreatedAt: t0, UpdatedAt: t0.Add(time.Hour), Last: 7, Counted: 6,
		ForeignIDs: true, Members: members, Receipts: []receiptRec{{Read: 7, Delivered: 7, Base: 6}, {Read: 2, Delivered: 5, Unread: -1, Base: 1}}}
	group := convRec{ID: "g1", Kind: Group, Title: "Trip", CreatedAt: t0, UpdatedAt: t0, Last: 1}
	for _, c := range []convRec{direct, group} {
		raw := c.encode()
		var got convRec
		if err := got.decode(raw); err != nil || !reflect.DeepEqual(normal(got), normal(c)) {
			t.Fatalf("conv %+v came back as %+v (%v)", c, got, err)
		}
		for _, bad := range [][]byte{nil, raw[:len(raw)-1], append([]byte{2}, raw[1:]...), append(raw, 0)} {
			if err := got.decode(bad); !errors.Is(err, errCorrupt) {
				t.Fatalf("conv %q: %v", bad, err)
			}
		}
	}
	// A group's receipts are records of their own; a conversation that
	// is not one has one per member.
	for _, c := range []convRec{
		{ID: "g2", Kind: Group, Members: members[:1], Receipts: []receiptRec{{}}},
		{ID: "d2", Kind: Direct, Members: members, Receipts: []receiptRec{{}}},
	} {
		var got convRec
		if err := got.decode(c.encode()); !errors.Is(err, errCorrupt) {
			t.Fatalf("conv %+v: %v", c, err)
		}
	}
	ro, err := decodeRoster(members.encode())
	if err != nil || !reflect.DeepEqual(normal(convRec{Members: ro}), normal(convRec{Members: members})) {
		t.Fatalf("roster came back as %+v (%v)", ro, err)
	}
	rc := receiptRec{Read: 9, Delivered: 12, Unread: -2, Base: 40}
	var rg receiptRec
	if err := rg.decode(rc.encode()); err != nil || rg != rc {
		t.Fatalf("receipt came back as %+v (%v)", rg, err)
	}
	unread := 3
	fes := []feedEvent{
		{Type: EvMessage, Conv: "g1", Msg: 4, At: t0, AtOfMsg: true},
		{Type: EvMessage, Conv: "g1", Msg: 5, At: t0.In(time.FixedZone("", 3600))},
		{Type: EvRead, Conv: "d1", UserID: "bob", Seq: 9, Unread: &unread, At: t0},
		{Type: EvRenamed, Conv: "g1", Title: "Trip to Jeju", At: t0},
		{Type: "something.new", Conv: "g1", At: t0},
	}
	got, err := decodeFeedEvents(encodeFeedEvents(fes))
	if err != nil || len(got) != len(fes) {
		t.Fatalf("feed came back as %+v (%v)", got, err)
	}
	for i := range fes {
		want := fes[i]
		if want.AtOfMsg {
			want.At = time.Time{} // the message's, not stored
		}
		if gj, _ := json.Marshal(got[i]); string(gj) != string(must(json.Marshal(want))) {
			t.Fatalf("feed event %d came back as %s, want %s", i, gj, must(json.Marshal(want)))
		}
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// normal makes records comparable: times by what JSON shows.
func normal(c convRec) string {
	b, _ := json.Marshal(c)
	return string(b)
}

// TestUndecodableRecordBreaksTheStore: a record that cannot be read stops
// the query (store.Failure) and marks the store broken, so the next start
// rebuilds it instead of reading it again.
func TestUndecodableRecordBreaksTheStore(t *testing.T) {
	db := storetest.Open(t)
	n := newNode(t, db)
	n.entry(t, cmd(kindCreate, "alice", 0, createConv{ConversationID: "g", Kind: Group, Members: []string{"bob"}}))
	space := db.Space(Stream)
	tx := space.Begin()
	tx.Set(rosterKey("g"), []byte{codecV1, 0xff})
	tx.Commit()
	defer func() {
		if _, ok := recover().(store.Failure); !ok {
			t.Fatal("an undecodable roster did not fail the store")
		}
		if db.Failed() == nil {
			t.Fatal("the store is not marked broken")
		}
	}()
	n.st.Members("g")
}
