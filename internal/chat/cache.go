package chat

import (
	"slices"

	"superapp/internal/apperr"
	"superapp/internal/store"
)

// recordCache keeps the records commands read again: conversations'
// records and groups' rosters. Under load an entry holds many sends to
// the same busy conversations, and the next entry more of them.
//
// It has two layers. entry holds what the entry being applied read and
// wrote: bounded by the commands of one entry (cmdlog caps an entry at
// 512), and replaced when the next entry begins. Once the entry is
// committed its records join hot, which holds those of the conversations
// that committed entries used last: at most hotConvs conversations and
// hotMembers members in all (beyond that it starts over). An entry that
// is not committed (the store failed under it) never joins hot, and
// Restore empties both.
//
// Writes go to the entry's batch first and then here, and reads hand out
// copies (a roster is never modified in place), so the cache never holds
// what the store (with the entry's batch) does not. Only the applying
// goroutine uses it.
type recordCache struct {
	tx         *store.Tx // the entry's batch: a new one for every entry, and every try of one
	entry, hot records
	hotMembers int // members in hot's records
	// named maps the client keys of the named sends the entry stored to
	// their seqs: their outcomes are not committed yet (see State.sent).
	// Bounded by the entry's commands.
	named map[string]uint64
}

// The bounds of the hot layer: ~10 MB at most, and a node's busy
// conversations fit.
const (
	hotConvs   = 4096
	hotMembers = 64 << 10
)

type records struct {
	convs   map[string]convRec
	rosters map[string]roster
}

func newRecords() records {
	return records{convs: map[string]convRec{}, rosters: map[string]roster{}}
}

// members counts the members the records hold.
func (r records) members() int {
	n := 0
	for _, c := range r.convs {
		n += len(c.Members)
	}
	for _, ro := range r.rosters {
		n += len(ro)
	}
	return n
}

// begin starts the entry whose batch tx is, if it is a new one: its
// records join the hot layer once the batch is committed.
func (c *recordCache) begin(tx *store.Tx) {
	if c.tx == tx {
		return
	}
	c.tx = tx
	entry := newRecords()
	c.entry = entry
	if c.named == nil {
		c.named = map[string]uint64{}
	}
	clear(c.named)
	tx.AfterCommit(func() { c.keep(entry) })
}

// keep adds a committed entry's records to the hot layer.
func (c *recordCache) keep(e records) {
	n := e.members()
	if c.hot.convs == nil || len(c.hot.convs)+len(e.convs) > hotConvs || c.hotMembers+n > hotMembers {
		c.hot, c.hotMembers = newRecords(), 0
	}
	for id, conv := range e.convs {
		if old, ok := c.hot.convs[id]; ok {
			c.hotMembers -= len(old.Members)
		}
		c.hot.convs[id] = conv
	}
	for id, r := range e.rosters {
		c.hotMembers -= len(c.hot.rosters[id])
		c.hot.rosters[id] = r
	}
	c.hotMembers += n
}

// forget empties the cache: the store may have been replaced.
func (c *recordCache) forget() { *c = recordCache{} }

// conv reads a conversation's record; the caller may modify it (but not
// its Members or Receipts in place: they are the cache's).
func (s *State) conv(tx *batch, id string) (*convRec, bool) {
	if c, ok := s.cache.entry.convs[id]; ok {
		return &c, true
	}
	if c, ok := s.cache.hot.convs[id]; ok {
		return &c, true
	}
	c, ok := loadConv(tx, id)
	if ok {
		s.cache.entry.convs[id] = *c
	}
	return c, ok
}

// putConv writes a conversation's record.
func (s *State) putConv(tx *batch, c *convRec) {
	tx.Set(convKey(c.ID), c.encode())
	s.cache.entry.convs[c.ID] = *c
}

// roster reads a conversation's members; the caller must not modify it.
func (s *State) roster(tx *batch, conv *convRec) roster {
	if conv.Kind != Group {
		return conv.Members
	}
	if r, ok := s.cache.entry.rosters[conv.ID]; ok {
		return r
	}
	if r, ok := s.cache.hot.rosters[conv.ID]; ok {
		return r
	}
	r := loadRoster(tx, conv)
	s.cache.entry.rosters[conv.ID] = r
	return r
}

// putRoster writes a conversation's members (a new slice, never one
// roster returned) and the member records that changed: changed lists
// the users whose entry is new or different. The caller saves conv,
// which holds the members of a conversation that is not a group.
func (s *State) putRoster(tx *batch, conv *convRec, r roster, changed ...string) {
	if conv.Kind != Group {
		conv.Members = r
	} else {
		tx.Set(rosterKey(conv.ID), r.encode())
		s.cache.entry.rosters[conv.ID] = r
	}
	for _, u := range changed {
		if i := r.find(u); i >= 0 {
			// Only queries read a member's record: apply reads the roster.
			tx.SetBlind(memberKey(conv.ID, u), r[i].encode())
		}
	}
}

// forMember returns the conversation, its members and the actor's entry
// if actor is a member. Errors: conversation_not_found, not_member.
func (s *State) forMember(tx *batch, id, actor string) (*convRec, roster, *rosterEntry, *apperr.Error) {
	conv, ok := s.conv(tx, id)
	if !ok {
		return nil, nil, nil, apperr.New(ConversationNotFound, "no such conversation")
	}
	r := s.roster(tx, conv)
	i := r.find(actor)
	if i < 0 {
		return nil, nil, nil, apperr.New(NotMember, "you are not a member of this conversation")
	}
	me := r[i]
	return conv, r, &me, nil
}

// without returns the roster less user (a new slice).
func (r roster) without(user string) roster {
	return slices.DeleteFunc(slices.Clone(r), func(m rosterEntry) bool { return m.User == user })
}

// setReceipt writes user's receipts: in conv's record if it holds them
// (then it reports true, and the caller saves conv), else under their key.
func setReceipt(tx *batch, conv *convRec, user string, rc *receiptRec) (inRecord bool) {
	if conv.Kind == Group {
		tx.Set(receiptKey(conv.ID, user), rc.encode())
		return false
	}
	i := conv.Members.find(user)
	rs := slices.Clone(conv.Receipts) // the cache's copy shares the slice
	rs[i] = *rc
	conv.Receipts = rs
	return true
}

// putReceipt writes user's receipts and, if it holds them, conv.
func (s *State) putReceipt(tx *batch, conv *convRec, user string, rc *receiptRec) {
	if setReceipt(tx, conv, user, rc) {
		s.putConv(tx, conv)
	}
}
