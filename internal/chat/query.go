package chat

import (
	"net/http"
	"sort"
	"time"

	"superapp/internal/apperr"
	"superapp/internal/store"
)

// Chat's error codes.
const (
	ConversationNotFound = "conversation_not_found"
	NotMember            = "not_member"
	NotAdmin             = "not_admin"
	NotSender            = "not_sender"
	MessageNotFound      = "message_not_found"
	TooManyMembers       = "too_many_members"
)

func init() {
	apperr.Register(ConversationNotFound, http.StatusNotFound)
	apperr.Register(NotMember, http.StatusForbidden)
	apperr.Register(NotAdmin, http.StatusForbidden)
	apperr.Register(NotSender, http.StatusForbidden)
	apperr.Register(MessageNotFound, http.StatusNotFound)
	apperr.Register(TooManyMembers, http.StatusUnprocessableEntity)
}

// View is a conversation as one member sees it.
type View struct {
	ConversationID string    `json:"conversation_id"`
	Kind           string    `json:"kind"`
	Title          string    `json:"title,omitempty"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
	LastSeq        uint64    `json:"last_seq"`
	ReadSeq        uint64    `json:"read_seq"`
	Unread         int       `json:"unread"`
	Members        []Member  `json:"members"`
	LastMessage    *Message  `json:"last_message,omitempty"`
}

// view reads conversation id as user sees it (a non-member sees no read
// position and no last message): through the entry's batch in apply, else
// through a snapshot, so that the roster, the receipts and the record are
// of one moment.
func view(r reader, id, user string) View {
	conv, _ := loadConv(r, id)
	ms := members(r, conv, loadRoster(r, conv))
	v := View{ConversationID: conv.ID, Kind: conv.Kind, Title: conv.Title, CreatedAt: conv.CreatedAt, UpdatedAt: conv.UpdatedAt,
		LastSeq: conv.Last, Members: make([]Member, 0, len(ms))}
	for _, m := range ms {
		v.Members = append(v.Members, m.view())
		if m.User == user {
			v.ReadSeq, v.Unread = m.Read, m.unread(conv)
			if conv.Last > m.From {
				var last Message
				r.GetJSON(msgKey(id, conv.Last), &last)
				v.LastMessage = &last
			}
		}
	}
	return v
}

// Conversation returns a conversation as user sees it. Errors:
// conversation_not_found, not_member.
func (s *State) Conversation(id, user string) (View, error) {
	r := s.snapshot()
	defer r.Close()
	if err := checkMember(r, id, user); err != nil {
		return View{}, err
	}
	return view(r, id, user), nil
}

// checkMember answers whether user is a member of conversation id with
// one read when they are. Errors: conversation_not_found, not_member.
func checkMember(r reader, id, user string) error {
	if isMember(r, id, user) {
		return nil
	}
	if _, ok := r.Get(convKey(id)); !ok {
		return apperr.New(ConversationNotFound, "no such conversation")
	}
	return apperr.New(NotMember, "you are not a member of this conversation")
}

// Conversations lists user's conversations, most recently active first.
func (s *State) Conversations(user string) []View {
	out, _ := s.ConversationsAt(user)
	return out
}

// ConversationsAt is Conversations with the cursor of the user's feed they
// reflect, read at the same moment: a new device shows the list, then
// opens the event stream from that cursor and misses nothing, without
// replaying the whole feed.
func (s *State) ConversationsAt(user string) ([]View, uint64) {
	r := s.snapshot()
	defer r.Close()
	var cursor uint64
	fp := feedPrefix(user)
	r.Scan(fp, "", true, func(k string, _ []byte) bool {
		cursor = store.ParseSeq(k[len(fp):])
		return false
	})
	p := joinedPrefix(user)
	var ids []string
	r.Scan(p, "", false, func(k string, _ []byte) bool {
		ids = append(ids, k[len(p):])
		return true
	})
	out := []View{}
	for _, id := range ids {
		out = append(out, view(r, id, user))
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].UpdatedAt.Equal(out[j].UpdatedAt) {
			return out[i].UpdatedAt.After(out[j].UpdatedAt)
		}
		return out[i].ConversationID < out[j].ConversationID
	})
	return out, cursor
}

// Page selects messages: after a sequence (forward) or before one
// (backward, for history); Limit is capped by the caller.
type Page struct {
	After  uint64
	Before uint64
	Limit  int
}

// Messages returns a page of the messages user can see, in ascending
// order, and whether more lie beyond the page. Errors:
// conversation_not_found, not_member.
func (s *State) Messages(id, user string, p Page) ([]Message, bool, error) {
	r := s.snapshot()
	defer r.Close()
	conv, me, err := forMember(r, id, user)
	if err != nil {
		return nil, false, err
	}
	lo, hi := max(p.After, me.From), conv.Last // seqs in (lo, hi]
	more := false
	if p.Before > 0 {
		hi = min(hi, p.Before-1)
		if hi > lo && hi-lo > uint64(p.Limit) {
			lo, more = hi-uint64(p.Limit), true
		}
	} else if hi > lo && hi-lo > uint64(p.Limit) {
		hi, more = lo+uint64(p.Limit), true
	}
	out := []Message{}
	if hi <= lo {
		return out, more, nil
	}
	r.Scan(msgPrefix(id), msgKey(id, lo+1), false, func(k string, v []byte) bool {
		var m Message
		decodeScanned(r, k, v, &m)
		if m.Seq > hi {
			return false
		}
		out = append(out, m)
		return m.Seq < hi
	})
	return out, more, nil
}

// IsMember reports whether user is a member of conversation id.
func (s *State) IsMember(id, user string) bool { return isMember(s.space, id, user) }

// Members lists the members of a conversation in join order (nil if none).
func (s *State) Members(id string) []string {
	r := s.snapshot()
	defer r.Close()
	ro := rosterOf(r, id)
	if len(ro) == 0 {
		return nil
	}
	return ro.ids()
}
