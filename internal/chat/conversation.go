package chat

import (
	"encoding/json"
	"slices"
	"time"

	"superapp/internal/apperr"
	"superapp/internal/store"
)

// reader is what both apply (the entry's batch, which sees its own
// writes) and queries (the committed store, or a consistent view of it)
// read through.
type reader interface {
	Get(key string) ([]byte, bool)
	GetJSON(key string, v any) bool
	Scan(prefix, start string, reverse bool, fn func(key string, value []byte) bool)
	// Fail reports a record that cannot be decoded: the store is broken
	// (it is rebuilt at the next start). It panics with store.Failure.
	Fail(what string, err error)
}

var (
	_ reader = (*batch)(nil)
	_ reader = (*store.Space)(nil)
	_ reader = snapReader{}
)

// batch is the batch of the entry being applied, which apply reads and
// writes.
type batch struct {
	*store.Tx
	space *store.Space
}

func (b *batch) Fail(what string, err error) { b.space.Fail(what, err) }

// snapReader reads a consistent view of the committed store: a query that
// reads several records (a roster, receipts, a conversation's record)
// sees them all as of one entry.
type snapReader struct {
	*store.Snapshot
	space *store.Space
}

func (r snapReader) Fail(what string, err error) { r.space.Fail(what, err) }

// snapshot opens a consistent view of the committed store; Close it.
func (s *State) snapshot() snapReader { return snapReader{s.space.Snapshot(), s.space} }

// convRec is a conversation's record.
type convRec struct {
	ID        string
	Kind      string
	Title     string
	CreatedAt time.Time
	UpdatedAt time.Time
	// Last is the last message's sequence.
	Last uint64
	// Counted is how many messages that count as unread (all but system
	// messages, deleted ones included) were ever sent: the clock of every
	// member's unread baseline.
	Counted uint64
	// ForeignIDs is set once a send that was not named after its client
	// id (see sendID) stored a message: only then must a named send look
	// its client id up (see State.sent).
	ForeignIDs bool
	// Members are the members of a conversation whose members never
	// change (one-to-one, official), and Receipts theirs, in the same
	// order: a send to it reads and writes one record. A group's roster
	// and its members' receipts are records of their own.
	Members  roster
	Receipts []receiptRec
}

// memberRec is what rarely changes of a member: it is written when they
// join and when their role changes.
type memberRec struct {
	Role   string
	Joined time.Time
	// From is the last seq before they joined.
	From uint64
}

// roster is a conversation's members in join order (at most MaxMembers):
// what a command reads to check its actor and to fan its events out, in
// one read.
type roster []rosterEntry

type rosterEntry struct {
	User string
	memberRec
}

// find returns the index of user's entry, -1 if user is not a member.
func (r roster) find(user string) int {
	return slices.IndexFunc(r, func(m rosterEntry) bool { return m.User == user })
}

// ids lists the members' ids in join order.
func (r roster) ids() []string {
	ids := make([]string, len(r))
	for i := range r {
		ids[i] = r[i].User
	}
	return ids
}

// receiptRec is what a member's receipts and sends change. The unread
// count is Unread + (the conversation's Counted - Base): another member's
// message only moves the conversation's clock, so a send writes one
// receipt (the sender's), not one per member.
type receiptRec struct {
	Read      uint64
	Delivered uint64
	// Unread was the exact unread count when the conversation's Counted
	// was Base (less the deletions since).
	Unread int
	Base   uint64
}

func (r *receiptRec) unread(c *convRec) int { return r.Unread + int(c.Counted-r.Base) }

// member is a member's records.
type member struct {
	rosterEntry
	receiptRec
}

func (m *member) view() Member {
	return Member{UserID: m.User, Role: m.Role, Joined: m.Joined, From: m.From, Read: m.Read, Delivered: m.Delivered}
}

// decodeScanned decodes a JSON value met in a scan. A record the store
// holds but cannot be read is the store failing, as for GetJSON.
func decodeScanned(r reader, key string, raw []byte, v any) {
	if err := json.Unmarshal(raw, v); err != nil {
		r.Fail("decode "+key, err)
	}
}

func loadConv(r reader, id string) (*convRec, bool) {
	k := convKey(id)
	raw, ok := r.Get(k)
	if !ok {
		return nil, false
	}
	var c convRec
	if err := c.decode(raw); err != nil {
		r.Fail("decode "+k, err)
	}
	return &c, true
}

// loadRoster reads a conversation's members.
func loadRoster(r reader, conv *convRec) roster {
	if conv.Kind != Group {
		return conv.Members
	}
	k := rosterKey(conv.ID)
	raw, ok := r.Get(k)
	if !ok {
		return nil
	}
	ro, err := decodeRoster(raw)
	if err != nil {
		r.Fail("decode "+k, err)
	}
	return ro
}

// rosterOf reads the members of conversation id (none if there is no
// such conversation).
func rosterOf(r reader, id string) roster {
	conv, ok := loadConv(r, id)
	if !ok {
		return nil
	}
	return loadRoster(r, conv)
}

// loadMember reads one member's record: one small read, whatever the
// conversation's size.
func loadMember(r reader, conv, user string) (*memberRec, bool) {
	k := memberKey(conv, user)
	raw, ok := r.Get(k)
	if !ok {
		return nil, false
	}
	var m memberRec
	if err := m.decode(raw); err != nil {
		r.Fail("decode "+k, err)
	}
	return &m, true
}

// receiptOf reads user's receipts in conv.
func receiptOf(r reader, conv *convRec, user string) *receiptRec {
	if conv.Kind != Group {
		var rc receiptRec
		if i := conv.Members.find(user); i >= 0 {
			rc = conv.Receipts[i]
		}
		return &rc
	}
	return loadReceipt(r, conv.ID, user)
}

// loadReceipt reads a group member's receipts.
func loadReceipt(r reader, conv, user string) *receiptRec {
	k := receiptKey(conv, user)
	var rc receiptRec
	if raw, ok := r.Get(k); ok {
		if err := rc.decode(raw); err != nil {
			r.Fail("decode "+k, err)
		}
	}
	return &rc
}

func isMember(r reader, conv, user string) bool {
	_, ok := r.Get(memberKey(conv, user))
	return ok
}

// forMember returns the conversation and actor's record if actor is a
// member. Errors: conversation_not_found, not_member.
func forMember(r reader, id, actor string) (*convRec, *memberRec, *apperr.Error) {
	conv, ok := loadConv(r, id)
	if !ok {
		return nil, nil, apperr.New(ConversationNotFound, "no such conversation")
	}
	m, ok := loadMember(r, id, actor)
	if !ok {
		return nil, nil, apperr.New(NotMember, "you are not a member of this conversation")
	}
	return conv, m, nil
}

// members lists a conversation's members in join order with their
// receipts.
func members(r reader, conv *convRec, ro roster) []*member {
	ms := make([]*member, len(ro))
	for i := range ro {
		// One read each in a group: the receipts' range is rewritten with
		// every message, which a scan would pay for.
		ms[i] = &member{rosterEntry: ro[i], receiptRec: *receiptOf(r, conv, ro[i].User)}
	}
	return ms
}

// sharedAfter reports whether a live message after seq carries attachment id.
func sharedAfter(r reader, conv, id string, seq uint64) bool {
	found := false
	r.Scan(attMsgPrefix(conv, id), attMsgKey(conv, id, seq+1), false, func(string, []byte) bool {
		found = true
		return false
	})
	return found
}

// unreadAfter counts the messages of others after max(seq, from) that
// user can see: what a read receipt leaves unread.
func unreadAfter(r reader, conv, user string, seq, from uint64) int {
	var m struct {
		Kind      string     `json:"kind"`
		Sender    string     `json:"sender"`
		DeletedAt *time.Time `json:"deleted_at"`
	}
	n := 0
	r.Scan(msgPrefix(conv), msgKey(conv, max(seq, from)+1), false, func(k string, v []byte) bool {
		m.Kind, m.Sender, m.DeletedAt = "", "", nil
		decodeScanned(r, k, v, &m)
		if m.Kind != KindSystem && m.Sender != user && m.DeletedAt == nil {
			n++
		}
		return true
	})
	return n
}
