// Package chat is superapp's messaging: conversations (one-to-one and
// groups), messages with a gapless per-conversation sequence, receipts,
// unread counts and each user's event feed, from which devices sync and
// the real-time push is fed. Its state is derived only from the CHAT
// stream, so every DC orders every conversation the same way.
//
// It must never let a non-member read or write a conversation, never store
// a message twice for one client id, never keep in memory what grows with
// history (its read model lives in the node's store), and never import
// net/http or the NATS client.
package chat

import (
	"sync"
	"time"

	"superapp/internal/cmdlog"
	"superapp/internal/store"
)

// Stream is the name of the chat stream.
const Stream = "CHAT"

// Limits.
const (
	MaxMembers    = 1000
	MaxTextRunes  = 4096
	MaxTitleRunes = 100
	MaxClientID   = 64
)

// Conversation kinds.
const (
	Direct = "direct"
	Group  = "group"
)

// Message kinds.
const (
	KindText   = "text"
	KindSystem = "system"
	// KindPayment is a money transfer's card; only the server makes them,
	// after the ledger committed the transfer.
	KindPayment = "payment"
)

// Message is one message of a conversation.
type Message struct {
	ConversationID string       `json:"conversation_id"`
	ID             string       `json:"id"` // the sender's client id
	Seq            uint64       `json:"seq"`
	Sender         string       `json:"sender"`
	Kind           string       `json:"kind"`
	Text           string       `json:"text"`
	ReplyTo        uint64       `json:"reply_to,omitempty"`
	Attachment     *Attachment  `json:"attachment,omitempty"`
	Payment        *PaymentCard `json:"payment,omitempty"`
	System         *System      `json:"system,omitempty"`
	SentAt         time.Time    `json:"sent_at"`
	DeletedAt      *time.Time   `json:"deleted_at,omitempty"`
}

// PaymentCard shows money in a conversation: a transfer to a member, or a
// red envelope for the first members who claim it.
type PaymentCard struct {
	Type       string `json:"type"` // transfer or envelope
	TransferID string `json:"transfer_id,omitempty"`
	EnvelopeID string `json:"envelope_id,omitempty"`
	To         string `json:"to_user,omitempty"`
	Amount     uint64 `json:"amount"`
	Currency   string `json:"currency"`
	Shares     int    `json:"shares,omitempty"`
	Split      string `json:"split,omitempty"`
}

// System describes a system message: a join, leave, removal or rename.
type System struct {
	Event string   `json:"event"` // created, joined, left, removed, renamed
	Users []string `json:"users,omitempty"`
	Title string   `json:"title,omitempty"`
}

// Member is one member of a conversation.
type Member struct {
	UserID string    `json:"user_id"`
	Role   string    `json:"role"` // owner, admin, member
	Joined time.Time `json:"joined_at"`
	// From is the last sequence before the member joined: they see the
	// messages after it.
	From      uint64 `json:"-"`
	Read      uint64 `json:"read_seq"`
	Delivered uint64 `json:"delivered_seq"`
}

// Event is what a user's devices learn: through sync and the live push.
type Event struct {
	// Cursor is the CHAT stream position of the change; a device that has
	// seen an event has seen every event of the user below its cursor.
	Cursor         uint64    `json:"cursor"`
	Type           string    `json:"type"`
	ConversationID string    `json:"conversation_id"`
	Message        *Message  `json:"message,omitempty"`
	UserID         string    `json:"user_id,omitempty"`
	Seq            uint64    `json:"seq,omitempty"`
	Unread         *int      `json:"unread,omitempty"`
	Title          string    `json:"title,omitempty"`
	At             time.Time `json:"at"`
}

// Event types.
const (
	EvMessage   = "message"
	EvDeleted   = "message.deleted"
	EvRead      = "receipt.read"
	EvDelivered = "receipt.delivered"
	EvMembers   = "conversation.members"
	EvRenamed   = "conversation.renamed"
	EvJoined    = "conversation.joined" // you were added (or created it)
	EvLeft      = "conversation.left"   // you left or were removed
	EvTyping    = "typing"              // ephemeral: never in a feed
)

// Delivery is an event for a set of users.
type Delivery struct {
	Event *Event
	Users []string
}

// State is the chat read model. It lives in the node's store (see
// keys.go): nothing of it is kept in memory but a bounded cache of the
// records apply uses most (see recordCache), so a node restarted on its
// own disk resumes at the next entry. It is safe for concurrent use:
// queries read the committed store while one goroutine applies.
type State struct {
	space *store.Space
	// tx is the batch of the entry being applied (only the applying
	// goroutine touches it).
	tx batch
	// pending collects the deliveries of the command being applied (bounded
	// by one command's events); only the applying goroutine touches it.
	pending []Delivery
	// cache holds records apply reads again; see recordCache.
	cache recordCache
	// outcome is the machine's (New sets it): what a command id came to,
	// which State.sent asks.
	outcome func(id string) (cmdlog.Outcome, bool)

	mu     sync.Mutex // guards notify
	notify func([]Delivery)
}

// NewState returns the state kept in space (the CHAT stream's).
func NewState(space *store.Space) *State { return &State{space: space, tx: batch{space: space}} }

// Notify sets the function told, after each applied entry is committed,
// of the events it produced and their recipients (the live push).
func (s *State) Notify(fn func([]Delivery)) {
	s.mu.Lock()
	s.notify = fn
	s.mu.Unlock()
}

func (s *State) notifier() func([]Delivery) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.notify
}

// emit records an event for users; the command's feeds are written, and
// the live push scheduled, once the command is applied.
func (s *State) emit(ev *Event, users []string) {
	s.pending = append(s.pending, Delivery{Event: ev, Users: users})
}
