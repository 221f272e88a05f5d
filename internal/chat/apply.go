package chat

import (
	"encoding/json"
	"slices"
	"strconv"
	"time"

	"superapp/internal/apperr"
	"superapp/internal/cmdlog"
)

// Command kinds in the CHAT stream.
const (
	kindCreate    = "conversation.create"
	kindAdd       = "members.add"
	kindRemove    = "members.remove"
	kindRename    = "conversation.rename"
	kindRole      = "members.role"
	kindSend      = "message.send"
	kindDelete    = "message.delete"
	kindRead      = "receipt.read"
	kindDelivered = "receipt.delivered"
	kindAttach    = "attachment.add"
)

type createConv struct {
	ConversationID string   `json:"conversation_id"`
	Kind           string   `json:"kind"`
	Title          string   `json:"title,omitempty"`
	Members        []string `json:"members"` // others than the creator
}

type membersCmd struct {
	ConversationID string   `json:"conversation_id"`
	Users          []string `json:"users,omitempty"`
	UserID         string   `json:"user_id,omitempty"`
	Admin          bool     `json:"admin,omitempty"`
	Title          string   `json:"title,omitempty"`
}

type sendCmd struct {
	ConversationID string       `json:"conversation_id"`
	ID             string       `json:"id"`
	Text           string       `json:"text"`
	ReplyTo        uint64       `json:"reply_to,omitempty"`
	AttachmentID   string       `json:"attachment_id,omitempty"`
	Payment        *PaymentCard `json:"payment,omitempty"`
}

type seqCmd struct {
	ConversationID string `json:"conversation_id"`
	Seq            uint64 `json:"seq"`
}

// Created is the outcome of creating a conversation.
type Created struct {
	View
	// Existed is true when a one-to-one conversation existed already.
	Existed bool `json:"existed"`
}

// Apply applies one CHAT command. It is deterministic.
func (s *State) Apply(seq uint64, e *cmdlog.Envelope) (any, *apperr.Error) {
	s.mu.Lock()
	s.pending = s.pending[:0]
	v, err := s.apply(seq, e)
	deliveries, notify := slices.Clone(s.pending), s.notify
	s.pending = s.pending[:0]
	s.mu.Unlock()
	if notify != nil && len(deliveries) > 0 {
		notify(deliveries)
	}
	return v, err
}

func decode(e *cmdlog.Envelope, v any) *apperr.Error {
	if err := json.Unmarshal(e.Data, v); err != nil {
		return apperr.New(apperr.Malformed, "bad command")
	}
	return nil
}

func (s *State) apply(seq uint64, e *cmdlog.Envelope) (any, *apperr.Error) {
	switch e.Kind {
	case kindCreate:
		var c createConv
		if err := decode(e, &c); err != nil {
			return nil, err
		}
		return s.create(seq, e, c)
	case kindSend:
		var c sendCmd
		if err := decode(e, &c); err != nil {
			return nil, err
		}
		return s.send(seq, e, c)
	case kindRead, kindDelivered:
		var c seqCmd
		if err := decode(e, &c); err != nil {
			return nil, err
		}
		return s.receipt(seq, e, c)
	case kindDelete:
		var c seqCmd
		if err := decode(e, &c); err != nil {
			return nil, err
		}
		return s.deleteMessage(seq, e, c)
	case kindAttach:
		var c attachCmd
		if err := decode(e, &c); err != nil {
			return nil, err
		}
		return s.attach(e, c)
	case kindAdd, kindRemove, kindRename, kindRole:
		var c membersCmd
		if err := decode(e, &c); err != nil {
			return nil, err
		}
		return s.manage(seq, e, c)
	}
	return nil, apperr.New(apperr.Invalid, "unknown command %q", e.Kind)
}

func (s *State) create(seq uint64, e *cmdlog.Envelope, c createConv) (any, *apperr.Error) {
	if old := s.convs[c.ConversationID]; old != nil {
		if c.Kind == Direct {
			if _, ok := old.members[e.Actor]; ok {
				return Created{View: old.view(e.Actor), Existed: true}, nil
			}
		}
		return nil, apperr.New(apperr.Conflict, "conversation id in use")
	}
	conv := &Conversation{ID: c.ConversationID, Kind: c.Kind, Title: c.Title, CreatedAt: e.At, UpdatedAt: e.At,
		members: map[string]*Member{}, byClient: map[string]uint64{}}
	role := "owner"
	if c.Kind == Direct {
		role = "member"
	}
	conv.addMember(e.Actor, role, e.At)
	for _, u := range c.Members {
		conv.addMember(u, "member", e.At)
	}
	s.convs[conv.ID] = conv
	for _, u := range conv.order {
		s.join(u, conv.ID)
	}
	everyone := slices.Clone(conv.order)
	s.emit(&Event{Cursor: e.Cursor, Type: EvJoined, ConversationID: conv.ID, At: e.At}, everyone)
	if c.Kind == Group {
		s.system(seq, e, conv, &System{Event: "created", Users: slices.Clone(conv.order), Title: c.Title})
	}
	return Created{View: conv.view(e.Actor)}, nil
}

func (c *Conversation) addMember(user, role string, at time.Time) {
	c.members[user] = &Member{UserID: user, Role: role, Joined: at, From: c.lastSeq(), Read: c.lastSeq(), Delivered: c.lastSeq()}
	c.order = append(c.order, user)
}

func (c *Conversation) removeMember(user string) {
	delete(c.members, user)
	c.order = slices.DeleteFunc(c.order, func(u string) bool { return u == user })
}

// system appends a system message and tells every member.
func (s *State) system(seq uint64, e *cmdlog.Envelope, conv *Conversation, sys *System) *Message {
	m := &Message{ConversationID: conv.ID, ID: "system-" + strconv.FormatUint(e.Cursor, 10), Seq: conv.lastSeq() + 1,
		Sender: e.Actor, Kind: KindSystem, System: sys, SentAt: e.At}
	conv.messages = append(conv.messages, m)
	conv.UpdatedAt = e.At
	s.emit(&Event{Cursor: e.Cursor, Type: EvMessage, ConversationID: conv.ID, Message: m, At: e.At}, slices.Clone(conv.order))
	return m
}

// forMember returns the conversation if actor is a member.
func (s *State) forMember(id, actor string) (*Conversation, *Member, *apperr.Error) {
	conv := s.convs[id]
	if conv == nil {
		return nil, nil, apperr.New(ConversationNotFound, "no such conversation")
	}
	m := conv.members[actor]
	if m == nil {
		return nil, nil, apperr.New(NotMember, "you are not a member of this conversation")
	}
	return conv, m, nil
}

func (s *State) send(seq uint64, e *cmdlog.Envelope, c sendCmd) (any, *apperr.Error) {
	conv, _, err := s.forMember(c.ConversationID, e.Actor)
	if err != nil {
		return nil, err
	}
	key := e.Actor + "/" + c.ID
	if at, ok := conv.byClient[key]; ok {
		return *conv.messages[at-1], nil
	}
	if c.ReplyTo > 0 {
		if c.ReplyTo > conv.lastSeq() || c.ReplyTo <= conv.members[e.Actor].From {
			return nil, &apperr.Error{Code: apperr.Invalid, Field: "reply_to", Message: "no such message to reply to"}
		}
	}
	var att *Attachment
	if c.AttachmentID != "" {
		a := conv.attachments[c.AttachmentID]
		if a == nil || a.Uploader != e.Actor {
			return nil, &apperr.Error{Code: apperr.Invalid, Field: "attachment_id", Message: "upload the attachment to this conversation first"}
		}
		cp := *a
		att = &cp
	}
	kind := KindText
	if c.Payment != nil {
		if c.Payment.To != "" && conv.members[c.Payment.To] == nil {
			return nil, &apperr.Error{Code: NotMember, Field: "to_user", Message: "the payee is not a member of this conversation"}
		}
		kind = KindPayment
	}
	m := &Message{ConversationID: conv.ID, ID: c.ID, Seq: conv.lastSeq() + 1, Sender: e.Actor, Kind: kind,
		Text: c.Text, ReplyTo: c.ReplyTo, Attachment: att, Payment: c.Payment, SentAt: e.At}
	conv.messages = append(conv.messages, m)
	conv.byClient[key] = m.Seq
	conv.UpdatedAt = e.At
	for _, u := range conv.order {
		mb := conv.members[u]
		if u == e.Actor {
			mb.Read, mb.Delivered, mb.unread = m.Seq, m.Seq, 0
		} else {
			mb.unread++
		}
	}
	s.emit(&Event{Cursor: e.Cursor, Type: EvMessage, ConversationID: conv.ID, Message: m, At: e.At}, slices.Clone(conv.order))
	return *m, nil
}

func (s *State) deleteMessage(seq uint64, e *cmdlog.Envelope, c seqCmd) (any, *apperr.Error) {
	conv, me, err := s.forMember(c.ConversationID, e.Actor)
	if err != nil {
		return nil, err
	}
	if c.Seq == 0 || c.Seq > conv.lastSeq() || c.Seq <= me.From {
		return nil, apperr.New(MessageNotFound, "no such message")
	}
	m := conv.messages[c.Seq-1]
	if m.Kind != KindText || m.Sender != e.Actor {
		return nil, apperr.New(NotSender, "only the sender can delete a message for everyone")
	}
	if m.DeletedAt == nil {
		at := e.At
		m.DeletedAt, m.Text = &at, ""
		if a := m.Attachment; a != nil {
			m.Attachment = nil
			if !conv.sharedAfter(a.ID, 0) {
				delete(conv.attachments, a.ID) // no one may download it any more
			}
		}
		for _, u := range conv.order {
			if mb := conv.members[u]; u != m.Sender && mb.Read < m.Seq && mb.From < m.Seq {
				mb.unread--
			}
		}
		s.emit(&Event{Cursor: e.Cursor, Type: EvDeleted, ConversationID: conv.ID, Seq: m.Seq, At: e.At}, slices.Clone(conv.order))
	}
	return *m, nil
}

// Receipt is the outcome of a read or delivered receipt.
type Receipt struct {
	ConversationID string `json:"conversation_id"`
	ReadSeq        uint64 `json:"read_seq"`
	DeliveredSeq   uint64 `json:"delivered_seq"`
	Unread         int    `json:"unread"`
}

func (s *State) receipt(seq uint64, e *cmdlog.Envelope, c seqCmd) (any, *apperr.Error) {
	conv, me, err := s.forMember(c.ConversationID, e.Actor)
	if err != nil {
		return nil, err
	}
	if c.Seq > conv.lastSeq() {
		return nil, &apperr.Error{Code: apperr.Invalid, Field: "seq", Message: "seq is past the last message"}
	}
	others := slices.DeleteFunc(slices.Clone(conv.order), func(u string) bool { return u == e.Actor })
	switch {
	case e.Kind == kindRead && c.Seq > me.Read:
		me.Read = c.Seq
		me.Delivered = max(me.Delivered, c.Seq)
		me.unread = conv.unreadAfter(e.Actor, me.Read, me.From)
		unread := me.unread
		s.emit(&Event{Cursor: e.Cursor, Type: EvRead, ConversationID: conv.ID, UserID: e.Actor, Seq: c.Seq, At: e.At}, others)
		s.emit(&Event{Cursor: e.Cursor, Type: EvRead, ConversationID: conv.ID, UserID: e.Actor, Seq: c.Seq, Unread: &unread, At: e.At}, []string{e.Actor})
	case e.Kind == kindDelivered && c.Seq > me.Delivered:
		me.Delivered = c.Seq
		s.emit(&Event{Cursor: e.Cursor, Type: EvDelivered, ConversationID: conv.ID, UserID: e.Actor, Seq: c.Seq, At: e.At}, others)
	}
	return Receipt{ConversationID: conv.ID, ReadSeq: me.Read, DeliveredSeq: me.Delivered, Unread: me.unread}, nil
}

// unreadAfter counts the messages of others after seq that user can see.
func (c *Conversation) unreadAfter(user string, seq, from uint64) int {
	n := 0
	for _, m := range c.messages[max(seq, from):] {
		if m.Kind != KindSystem && m.Sender != user && m.DeletedAt == nil {
			n++
		}
	}
	return n
}

func (s *State) manage(seq uint64, e *cmdlog.Envelope, c membersCmd) (any, *apperr.Error) {
	conv, me, err := s.forMember(c.ConversationID, e.Actor)
	if err != nil {
		return nil, err
	}
	if conv.Kind != Group {
		return nil, apperr.New(apperr.Forbidden, "a one-to-one conversation has no members to manage")
	}
	isAdmin := me.Role == "owner" || me.Role == "admin"
	switch e.Kind {
	case kindAdd:
		if !isAdmin {
			return nil, apperr.New(NotAdmin, "only admins can add members")
		}
		var added []string
		for _, u := range c.Users {
			if _, ok := conv.members[u]; !ok && !slices.Contains(added, u) {
				added = append(added, u)
			}
		}
		if len(conv.order)+len(added) > MaxMembers {
			return nil, &apperr.Error{Code: TooManyMembers, Field: "users", Message: "a group has at most 1000 members"}
		}
		if len(added) > 0 {
			for _, u := range added {
				conv.addMember(u, "member", e.At)
				s.join(u, conv.ID)
			}
			s.emit(&Event{Cursor: e.Cursor, Type: EvJoined, ConversationID: conv.ID, At: e.At}, added)
			s.system(seq, e, conv, &System{Event: "joined", Users: added})
		}
	case kindRemove:
		target := conv.members[c.UserID]
		if target == nil {
			return nil, &apperr.Error{Code: NotMember, Field: "user_id", Message: "that user is not a member"}
		}
		leaving := c.UserID == e.Actor
		if !leaving && (!isAdmin || target.Role == "owner" || (target.Role == "admin" && me.Role != "owner")) {
			return nil, apperr.New(NotAdmin, "you may not remove this member")
		}
		event := "removed"
		if leaving {
			event = "left"
		}
		s.system(seq, e, conv, &System{Event: event, Users: []string{c.UserID}})
		conv.removeMember(c.UserID)
		delete(s.joined[c.UserID], conv.ID)
		s.emit(&Event{Cursor: e.Cursor, Type: EvLeft, ConversationID: conv.ID, UserID: c.UserID, At: e.At}, []string{c.UserID})
		if target.Role == "owner" && len(conv.order) > 0 {
			// The oldest admin, else the oldest member, owns it now.
			next := conv.order[0]
			for _, u := range conv.order {
				if conv.members[u].Role == "admin" {
					next = u
					break
				}
			}
			conv.members[next].Role = "owner"
		}
	case kindRename:
		if !isAdmin {
			return nil, apperr.New(NotAdmin, "only admins can rename the conversation")
		}
		conv.Title = c.Title
		s.emit(&Event{Cursor: e.Cursor, Type: EvRenamed, ConversationID: conv.ID, Title: c.Title, At: e.At}, slices.Clone(conv.order))
		s.system(seq, e, conv, &System{Event: "renamed", Title: c.Title})
	case kindRole:
		target := conv.members[c.UserID]
		if me.Role != "owner" {
			return nil, apperr.New(NotAdmin, "only the owner can appoint admins")
		}
		if target == nil || target.Role == "owner" {
			return nil, &apperr.Error{Code: NotMember, Field: "user_id", Message: "that user is not a member the owner can change"}
		}
		target.Role = "member"
		if c.Admin {
			target.Role = "admin"
		}
		s.emit(&Event{Cursor: e.Cursor, Type: EvMembers, ConversationID: conv.ID, UserID: c.UserID, At: e.At}, slices.Clone(conv.order))
	}
	return conv.view(e.Actor), nil
}
