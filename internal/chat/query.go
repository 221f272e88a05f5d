package chat

import (
	"net/http"
	"sort"
	"time"

	"superapp/internal/apperr"
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

func (c *Conversation) view(user string) View {
	v := View{ConversationID: c.ID, Kind: c.Kind, Title: c.Title, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt,
		LastSeq: c.lastSeq(), Members: make([]Member, 0, len(c.order))}
	for _, u := range c.order {
		v.Members = append(v.Members, *c.members[u])
	}
	if m := c.members[user]; m != nil {
		v.ReadSeq, v.Unread = m.Read, m.unread
		if c.lastSeq() > m.From {
			last := *c.messages[c.lastSeq()-1]
			v.LastMessage = &last
		}
	}
	return v
}

// Conversation returns a conversation as user sees it. Errors:
// conversation_not_found, not_member.
func (s *State) Conversation(id, user string) (View, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	conv, _, err := s.forMember(id, user)
	if err != nil {
		return View{}, err
	}
	return conv.view(user), nil
}

// Conversations lists user's conversations, most recently active first.
func (s *State) Conversations(user string) []View {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := []View{}
	for id := range s.joined[user] {
		out = append(out, s.convs[id].view(user))
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].UpdatedAt.Equal(out[j].UpdatedAt) {
			return out[i].UpdatedAt.After(out[j].UpdatedAt)
		}
		return out[i].ConversationID < out[j].ConversationID
	})
	return out
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
	s.mu.RLock()
	defer s.mu.RUnlock()
	conv, me, err := s.forMember(id, user)
	if err != nil {
		return nil, false, err
	}
	lo, hi := max(p.After, me.From), conv.lastSeq() // seqs in (lo, hi]
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
	for seq := lo + 1; seq <= hi; seq++ {
		out = append(out, *conv.messages[seq-1])
	}
	return out, more, nil
}

// IsMember reports whether user is a member of conversation id.
func (s *State) IsMember(id, user string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, m := s.member(id, user)
	return m != nil
}

func (s *State) member(id, user string) (*Conversation, *Member) {
	conv := s.convs[id]
	if conv == nil {
		return nil, nil
	}
	return conv, conv.members[user]
}

// Members lists the members of a conversation (nil if none).
func (s *State) Members(id string) []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	conv := s.convs[id]
	if conv == nil {
		return nil
	}
	return append([]string(nil), conv.order...)
}
