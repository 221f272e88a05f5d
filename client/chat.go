package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Conversation is a conversation as the user sees it.
type Conversation struct {
	ConversationID string    `json:"conversation_id"`
	Kind           string    `json:"kind"`
	Title          string    `json:"title,omitempty"`
	LastSeq        uint64    `json:"last_seq"`
	ReadSeq        uint64    `json:"read_seq"`
	Unread         int       `json:"unread"`
	Members        []Member  `json:"members"`
	LastMessage    *Message  `json:"last_message,omitempty"`
	UpdatedAt      time.Time `json:"updated_at"`
	Existed        bool      `json:"existed,omitempty"`
}

// Member is a conversation member.
type Member struct {
	UserID       string `json:"user_id"`
	Role         string `json:"role"`
	ReadSeq      uint64 `json:"read_seq"`
	DeliveredSeq uint64 `json:"delivered_seq"`
}

// Message is a chat message.
type Message struct {
	ConversationID string       `json:"conversation_id"`
	ID             string       `json:"id"`
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

// System is what a system message reports.
type System struct {
	Event string   `json:"event"`
	Users []string `json:"users,omitempty"`
	Title string   `json:"title,omitempty"`
}

// Event is one entry of the user's event feed.
type Event struct {
	Cursor         uint64   `json:"cursor"`
	Type           string   `json:"type"`
	ConversationID string   `json:"conversation_id"`
	Message        *Message `json:"message,omitempty"`
	UserID         string   `json:"user_id,omitempty"`
	Seq            uint64   `json:"seq,omitempty"`
	Unread         *int     `json:"unread,omitempty"`
	Title          string   `json:"title,omitempty"`
}

// Receipt is the user's read state of a conversation.
type Receipt struct {
	ReadSeq      uint64 `json:"read_seq"`
	DeliveredSeq uint64 `json:"delivered_seq"`
	Unread       int    `json:"unread"`
}

func convPath(id string, rest ...string) string {
	p := "/v1/conversations/" + url.PathEscape(id)
	for _, r := range rest {
		p += "/" + r
	}
	return p
}

// CreateConversation starts a conversation with members (a one-to-one
// conversation when one member and no title).
func (c *Client) CreateConversation(ctx context.Context, members []string, title *string) (Conversation, error) {
	body := map[string]any{"members": members}
	if title != nil {
		body["title"] = *title
	}
	var conv Conversation
	err := c.Do(ctx, Request{Method: http.MethodPost, Path: "/v1/conversations", Body: body}, &conv)
	return conv, err
}

// Conversations lists the user's conversations.
func (c *Client) Conversations(ctx context.Context) ([]Conversation, error) {
	var out struct {
		Conversations []Conversation `json:"conversations"`
	}
	err := c.Do(ctx, Request{Method: http.MethodGet, Path: "/v1/conversations"}, &out)
	return out.Conversations, err
}

// Conversation returns one conversation.
func (c *Client) Conversation(ctx context.Context, id string) (Conversation, error) {
	var conv Conversation
	err := c.Do(ctx, Request{Method: http.MethodGet, Path: convPath(id)}, &conv)
	return conv, err
}

// Send sends a message with a client-chosen id; sending the same id again
// (after a failover, say) returns the original message.
func (c *Client) Send(ctx context.Context, convID, id, text string, replyTo uint64) (Message, error) {
	body := map[string]any{"id": id, "text": text}
	if replyTo > 0 {
		body["reply_to"] = replyTo
	}
	var m Message
	err := c.Do(ctx, Request{Method: http.MethodPost, Path: convPath(convID, "messages"), Body: body}, &m)
	return m, err
}

// Messages returns messages after a sequence (after > 0 or both 0) or
// before one (history), and whether there are more.
func (c *Client) Messages(ctx context.Context, convID string, after, before uint64, limit int) ([]Message, bool, error) {
	q := url.Values{}
	if after > 0 {
		q.Set("after", strconv.FormatUint(after, 10))
	}
	if before > 0 {
		q.Set("before", strconv.FormatUint(before, 10))
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out struct {
		Messages []Message `json:"messages"`
		More     bool      `json:"more"`
	}
	err := c.Do(ctx, Request{Method: http.MethodGet, Path: convPath(convID, "messages") + "?" + q.Encode()}, &out)
	return out.Messages, out.More, err
}

// DeleteMessage deletes the user's own message for everyone.
func (c *Client) DeleteMessage(ctx context.Context, convID string, seq uint64) (Message, error) {
	var m Message
	err := c.Do(ctx, Request{Method: http.MethodDelete, Path: convPath(convID, "messages", strconv.FormatUint(seq, 10))}, &m)
	return m, err
}

// MarkRead marks the conversation read up to seq.
func (c *Client) MarkRead(ctx context.Context, convID string, seq uint64) (Receipt, error) {
	var r Receipt
	err := c.Do(ctx, Request{Method: http.MethodPost, Path: convPath(convID, "read"), Body: map[string]uint64{"seq": seq}}, &r)
	return r, err
}

// MarkDelivered acknowledges receipt up to seq.
func (c *Client) MarkDelivered(ctx context.Context, convID string, seq uint64) (Receipt, error) {
	var r Receipt
	err := c.Do(ctx, Request{Method: http.MethodPost, Path: convPath(convID, "delivered"), Body: map[string]uint64{"seq": seq}}, &r)
	return r, err
}

// AddMembers adds users to a group.
func (c *Client) AddMembers(ctx context.Context, convID string, users []string) (Conversation, error) {
	var conv Conversation
	err := c.Do(ctx, Request{Method: http.MethodPost, Path: convPath(convID, "members"), Body: map[string]any{"users": users}}, &conv)
	return conv, err
}

// RemoveMember removes a member, or leaves when user is the caller.
func (c *Client) RemoveMember(ctx context.Context, convID, user string) (Conversation, error) {
	var conv Conversation
	err := c.Do(ctx, Request{Method: http.MethodDelete, Path: convPath(convID, "members", url.PathEscape(user))}, &conv)
	return conv, err
}

// Rename retitles a group.
func (c *Client) Rename(ctx context.Context, convID, title string) (Conversation, error) {
	var conv Conversation
	err := c.Do(ctx, Request{Method: http.MethodPatch, Path: convPath(convID), Body: map[string]string{"title": title}}, &conv)
	return conv, err
}

// SetAdmin makes a member an admin, or not.
func (c *Client) SetAdmin(ctx context.Context, convID, user string, admin bool) (Conversation, error) {
	method := http.MethodPut
	if !admin {
		method = http.MethodDelete
	}
	var conv Conversation
	err := c.Do(ctx, Request{Method: method, Path: convPath(convID, "admins", url.PathEscape(user))}, &conv)
	return conv, err
}

// Sync returns the events after cursor, the cursor to continue from and
// whether more are waiting.
func (c *Client) Sync(ctx context.Context, cursor uint64, limit int) ([]Event, uint64, bool, error) {
	var out struct {
		Events []Event `json:"events"`
		Cursor uint64  `json:"cursor"`
		More   bool    `json:"more"`
	}
	path := fmt.Sprintf("/v1/sync?cursor=%d", cursor)
	if limit > 0 {
		path += "&limit=" + strconv.Itoa(limit)
	}
	err := c.Do(ctx, Request{Method: http.MethodGet, Path: path}, &out)
	return out.Events, out.Cursor, out.More, err
}

// Attachment is an uploaded file or image.
type Attachment struct {
	ID          string `json:"attachment_id"`
	Name        string `json:"name"`
	ContentType string `json:"content_type"`
	Size        int64  `json:"size"`
	SHA256      string `json:"sha256"`
}

// Upload stores an attachment in a conversation; send it with
// SendAttachment.
func (c *Client) Upload(ctx context.Context, convID, name, contentType string, data []byte) (Attachment, error) {
	var a Attachment
	err := c.Do(ctx, Request{Method: http.MethodPost, Path: convPath(convID, "attachments") + "?name=" + url.QueryEscape(name),
		Raw: data, ContentType: contentType}, &a)
	return a, err
}

// SendAttachment sends a message carrying an uploaded attachment.
func (c *Client) SendAttachment(ctx context.Context, convID, id, text, attachmentID string) (Message, error) {
	var m Message
	err := c.Do(ctx, Request{Method: http.MethodPost, Path: convPath(convID, "messages"),
		Body: map[string]any{"id": id, "text": text, "attachment_id": attachmentID}}, &m)
	return m, err
}

// Download returns an attachment's bytes.
func (c *Client) Download(ctx context.Context, convID, attachmentID string) ([]byte, error) {
	var b []byte
	err := c.Do(ctx, Request{Method: http.MethodGet, Path: convPath(convID, "attachments", url.PathEscape(attachmentID))}, &b)
	return b, err
}

// PaymentCard is money shown in a conversation: a transfer or an envelope.
type PaymentCard struct {
	Type       string `json:"type"`
	TransferID string `json:"transfer_id,omitempty"`
	EnvelopeID string `json:"envelope_id,omitempty"`
	To         string `json:"to_user,omitempty"`
	Amount     uint64 `json:"amount"`
	Currency   string `json:"currency"`
}
