package chat

import (
	"fmt"
	"math"
	"slices"
	"time"

	"superapp/internal/store"
)

// Each user's feed is what their devices sync from: the events of every
// command that concerned them, under the command's cursor. A message event
// refers to its message instead of holding a copy: a group's message is
// stored once, not once per member, and a feed shows a deleted message as
// deleted, as the conversation does.

// feedEvent is an Event as a feed keeps it (see codec.go).
type feedEvent struct {
	Type string
	Conv string
	// Msg is the sequence of a message event's message.
	Msg    uint64
	UserID string
	Seq    uint64
	Unread *int
	Title  string
	At     time.Time
	// AtOfMsg says At is the message's SentAt, which is not stored
	// twice (every message event is).
	AtOfMsg bool
}

func toFeed(ev *Event) feedEvent {
	fe := feedEvent{Type: ev.Type, Conv: ev.ConversationID, UserID: ev.UserID, Seq: ev.Seq, Unread: ev.Unread, Title: ev.Title, At: ev.At}
	if ev.Message != nil {
		fe.Msg = ev.Message.Seq
		// Exactly the same time, zone included: what sync shows is
		// what the push showed.
		fe.AtOfMsg = ev.At == ev.Message.SentAt
	}
	return fe
}

func encodeFeed(ds []Delivery, idx []int) []byte {
	fes := make([]feedEvent, len(idx))
	for i, j := range idx {
		fes[i] = toFeed(ds[j].Event)
	}
	return encodeFeedEvents(fes)
}

// writeFeeds writes one command's deliveries to its recipients' feeds: one
// key per recipient, holding their events in the order they were emitted.
// Nothing in apply reads a feed back, so the keys are written blind (an
// append to the batch, no index).
func writeFeeds(tx *store.Tx, cursor uint64, ds []Delivery) {
	at := store.Seq(cursor)
	if len(ds) == 1 {
		raw := encodeFeed(ds, []int{0})
		writeFeedKeys(tx, ds[0].Users, at, func(int) []byte { return raw })
		return
	}
	// Which of the command's events each user gets.
	var users []string
	got := map[string][]int{} // bounded by the command's recipients
	for i, d := range ds {
		for _, u := range d.Users {
			if _, ok := got[u]; !ok {
				users = append(users, u)
			}
			if idx := got[u]; len(idx) == 0 || idx[len(idx)-1] != i {
				got[u] = append(idx, i)
			}
		}
	}
	// Most recipients get the same events: encode each selection once.
	var sels [][]int
	var encoded [][]byte
	writeFeedKeys(tx, users, at, func(i int) []byte {
		idx := got[users[i]]
		k := slices.IndexFunc(sels, func(s []int) bool { return slices.Equal(s, idx) })
		if k < 0 {
			sels, encoded = append(sels, idx), append(encoded, encodeFeed(ds, idx))
			k = len(sels) - 1
		}
		return encoded[k]
	})
}

// writeFeedKeys writes value(i) under users[i]'s feed key at cursor.
func writeFeedKeys(tx *store.Tx, users []string, cursor string, value func(i int) []byte) {
	for i, k := range feedKeys(users, cursor) {
		tx.SetBlind(k, value(i))
	}
}

// Sync returns the user's events after cursor, at most limit of them (more
// if one cursor holds more), and the cursor to resume from. It pages over
// the feed on disk, and reads the feed and the messages it refers to as of
// one moment.
func (s *State) Sync(user string, after uint64, limit int) (evs []*Event, next uint64, more bool) {
	evs, next = []*Event{}, after
	if after == math.MaxUint64 {
		return evs, next, false
	}
	r := s.snapshot()
	defer r.Close()
	p := feedPrefix(user)
	var atOfMsg []bool // which events take their time from their message
	r.Scan(p, feedKey(user, after+1), false, func(k string, v []byte) bool {
		if len(evs) >= limit {
			more = true
			return false
		}
		cursor := store.ParseSeq(k[len(p):])
		fes, err := decodeFeedEvents(v)
		if err != nil {
			r.Fail("decode "+k, err)
		}
		for _, fe := range fes {
			ev := &Event{Cursor: cursor, Type: fe.Type, ConversationID: fe.Conv, UserID: fe.UserID, Seq: fe.Seq,
				Unread: fe.Unread, Title: fe.Title, At: fe.At}
			if fe.Msg > 0 {
				// Resolved below, out of the scan: a message is read as
				// it is now.
				ev.Message = &Message{Seq: fe.Msg}
			}
			evs = append(evs, ev)
			atOfMsg = append(atOfMsg, fe.AtOfMsg)
		}
		next = cursor
		return true
	})
	for i, ev := range evs {
		if ev.Message != nil {
			var m Message
			if !r.GetJSON(msgKey(ev.ConversationID, ev.Message.Seq), &m) {
				r.Fail("sync", errMissingMessage(ev.ConversationID, ev.Message.Seq))
			}
			ev.Message = &m
			if atOfMsg[i] {
				ev.At = m.SentAt
			}
		}
	}
	return evs, next, more
}

func errMissingMessage(conv string, seq uint64) error {
	return fmt.Errorf("feed refers to message %d of %s, which is not stored", seq, conv)
}
