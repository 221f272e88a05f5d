package chat

import (
	"encoding/json"
	"slices"
	"strconv"
	"time"

	"superapp/internal/apperr"
	"superapp/internal/cmdlog"
	"superapp/internal/store"
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

// Apply applies one CHAT command to the entry's batch. It is
// deterministic. The command's events are written to its recipients'
// feeds in the same batch and pushed live once the batch is committed.
func (s *State) Apply(seq uint64, e *cmdlog.Envelope) (any, *apperr.Error) {
	s.tx.Tx = s.space.Tx()
	tx := &s.tx
	s.cache.begin(tx.Tx)
	s.pending = s.pending[:0]
	v, err := s.apply(tx, e)
	if len(s.pending) > 0 {
		writeFeeds(tx.Tx, e.Cursor, s.pending)
		ds := slices.Clone(s.pending)
		tx.AfterCommit(func() {
			if fn := s.notifier(); fn != nil {
				fn(ds)
			}
		})
	}
	clear(s.pending)
	s.pending = s.pending[:0]
	return v, err
}

func decode(e *cmdlog.Envelope, v any) *apperr.Error {
	if err := json.Unmarshal(e.Data, v); err != nil {
		return apperr.New(apperr.Malformed, "bad command")
	}
	return nil
}

func (s *State) apply(tx *batch, e *cmdlog.Envelope) (any, *apperr.Error) {
	switch e.Kind {
	case kindCreate:
		var c createConv
		if err := decode(e, &c); err != nil {
			return nil, err
		}
		return s.create(tx, e, c)
	case kindSend:
		var c sendCmd
		if err := decode(e, &c); err != nil {
			return nil, err
		}
		return s.send(tx, e, c)
	case kindRead, kindDelivered:
		var c seqCmd
		if err := decode(e, &c); err != nil {
			return nil, err
		}
		return s.receipt(tx, e, c)
	case kindDelete:
		var c seqCmd
		if err := decode(e, &c); err != nil {
			return nil, err
		}
		return s.deleteMessage(tx, e, c)
	case kindAttach:
		var c attachCmd
		if err := decode(e, &c); err != nil {
			return nil, err
		}
		return s.attach(tx, e, c)
	case kindAdd, kindRemove, kindRename, kindRole:
		var c membersCmd
		if err := decode(e, &c); err != nil {
			return nil, err
		}
		return s.manage(tx, e, c)
	}
	return nil, apperr.New(apperr.Invalid, "unknown command %q", e.Kind)
}

func (s *State) create(tx *batch, e *cmdlog.Envelope, c createConv) (any, *apperr.Error) {
	if old, ok := s.conv(tx, c.ConversationID); ok {
		if c.Kind == Direct && s.roster(tx, old).find(e.Actor) >= 0 {
			return Created{View: view(tx, c.ConversationID, e.Actor), Existed: true}, nil
		}
		return nil, apperr.New(apperr.Conflict, "conversation id in use")
	}
	conv := &convRec{ID: c.ConversationID, Kind: c.Kind, Title: c.Title, CreatedAt: e.At, UpdatedAt: e.At}
	role := "owner"
	if c.Kind == Direct {
		role = "member"
	}
	r := make(roster, 0, 1+len(c.Members))
	seen := make(map[string]bool, 1+len(c.Members)) // a membership test, never iterated
	for i, u := range append([]string{e.Actor}, c.Members...) {
		if seen[u] {
			continue // the service names each member once; a set all the same
		}
		seen[u] = true
		if i > 0 {
			role = "member"
		}
		r = s.addMember(tx, conv, r, u, role, e.At)
	}
	s.putRoster(tx, conv, r, r.ids()...)
	everyone := r.ids()
	s.emit(&Event{Cursor: e.Cursor, Type: EvJoined, ConversationID: conv.ID, At: e.At}, everyone)
	if c.Kind == Group {
		s.system(tx, e, conv, everyone, &System{Event: "created", Users: slices.Clone(everyone), Title: c.Title})
	}
	s.putConv(tx, conv)
	return Created{View: view(tx, conv.ID, e.Actor)}, nil
}

// addMember appends user to r and writes their receipts and place in
// their list of conversations; the caller saves the roster (naming user
// as changed) and conv.
func (s *State) addMember(tx *batch, conv *convRec, r roster, user, role string, at time.Time) roster {
	rc := receiptRec{Read: conv.Last, Delivered: conv.Last, Base: conv.Counted}
	if conv.Kind != Group {
		// In the record, in the members' order: a conversation that is
		// not a group gets its members when it is created, all at once.
		conv.Receipts = append(slices.Clip(conv.Receipts), rc)
	} else {
		tx.Set(receiptKey(conv.ID, user), rc.encode())
	}
	tx.SetBlind(joinedKey(user, conv.ID), nil) // only queries read it
	return append(r, rosterEntry{User: user, memberRec: memberRec{Role: role, Joined: at, From: conv.Last}})
}

// system appends a system message and tells the members (users); the
// caller saves conv.
func (s *State) system(tx *batch, e *cmdlog.Envelope, conv *convRec, users []string, sys *System) {
	m := &Message{ConversationID: conv.ID, ID: "system-" + strconv.FormatUint(e.Cursor, 10), Seq: conv.Last + 1,
		Sender: e.Actor, Kind: KindSystem, System: sys, SentAt: e.At}
	conv.Last = m.Seq
	conv.UpdatedAt = e.At
	tx.SetJSON(msgKey(conv.ID, m.Seq), m)
	s.emit(&Event{Cursor: e.Cursor, Type: EvMessage, ConversationID: conv.ID, Message: m, At: e.At}, users)
}

func (s *State) send(tx *batch, e *cmdlog.Envelope, c sendCmd) (any, *apperr.Error) {
	conv, r, me, err := s.forMember(tx, c.ConversationID, e.Actor)
	if err != nil {
		return nil, err
	}
	ck := clientKey(conv.ID, e.Actor, c.ID)
	named := isSendID(e.ID, conv.ID, e.Actor, c.ID)
	if seq, ok := s.sent(tx, conv, e.Actor, c.ID, ck, named); ok {
		return sentRef{ConversationID: conv.ID, ID: c.ID, Seq: seq, Sender: e.Actor}, nil
	}
	if c.ReplyTo > 0 {
		if c.ReplyTo > conv.Last || c.ReplyTo <= me.From {
			return nil, &apperr.Error{Code: apperr.Invalid, Field: "reply_to", Message: "no such message to reply to"}
		}
	}
	var att *Attachment
	if c.AttachmentID != "" {
		var a Attachment
		if !tx.GetJSON(attKey(conv.ID, c.AttachmentID), &a) || a.Uploader != e.Actor {
			return nil, &apperr.Error{Code: apperr.Invalid, Field: "attachment_id", Message: "upload the attachment to this conversation first"}
		}
		att = &a
	}
	kind := KindText
	if c.Payment != nil {
		if c.Payment.To != "" && r.find(c.Payment.To) < 0 {
			return nil, &apperr.Error{Code: NotMember, Field: "to_user", Message: "the payee is not a member of this conversation"}
		}
		kind = KindPayment
	}
	m := &Message{ConversationID: conv.ID, ID: c.ID, Seq: conv.Last + 1, Sender: e.Actor, Kind: kind,
		Text: c.Text, ReplyTo: c.ReplyTo, Attachment: att, Payment: c.Payment, SentAt: e.At}
	conv.Last = m.Seq
	conv.Counted++ // one more unread for every other member
	conv.UpdatedAt = e.At
	raw, jerr := json.Marshal(m)
	if jerr != nil {
		panic("chat: encode message: " + jerr.Error()) // only our own types
	}
	tx.Set(msgKey(conv.ID, m.Seq), raw)
	if named {
		s.cache.named[ck] = m.Seq // its outcome, not yet committed
	} else {
		tx.Set(ck, []byte(store.Seq(m.Seq)))
		conv.ForeignIDs = true
	}
	if att != nil {
		tx.Set(attMsgKey(conv.ID, att.ID, m.Seq), nil)
	}
	// The sender has read everything up to their own message.
	setReceipt(tx, conv, e.Actor, &receiptRec{Read: m.Seq, Delivered: m.Seq, Base: conv.Counted})
	s.putConv(tx, conv)
	s.emit(&Event{Cursor: e.Cursor, Type: EvMessage, ConversationID: conv.ID, Message: m, At: e.At}, r.ids())
	return sentRef{ConversationID: conv.ID, ID: c.ID, Seq: m.Seq, Sender: e.Actor}, nil
}

// sentRef is a send's outcome: which message it made. The message itself
// is stored once, under its key; the sender reads it there.
type sentRef struct {
	ConversationID string `json:"conversation_id"`
	ID             string `json:"id"`
	Seq            uint64 `json:"seq"`
	Sender         string `json:"sender"`
}

// sent finds the message sender already sent to conv with client id (ck
// is its client key), if any. The service names every send after its
// client id (sendID) and the machine applies a command id once it
// succeeded, never again: a named send's message is found by its outcome,
// and needs no key of its own. A send named otherwise (only tests make
// them) keeps its client key, and marks the conversation (ForeignIDs).
// So a named send looks up nothing unless the conversation is marked,
// and a fresh send, the common case, reads nothing.
func (s *State) sent(tx *batch, conv *convRec, sender, id, ck string, named bool) (uint64, bool) {
	if !named || conv.ForeignIDs {
		if at, ok := tx.Get(ck); ok {
			return store.ParseSeq(string(at)), true
		}
	}
	if named {
		return 0, false // the machine would not have applied it again
	}
	if seq, ok := s.cache.named[ck]; ok {
		return seq, true // a named send of this entry
	}
	o, ok := s.outcome(sendID(conv.ID, sender, id))
	if !ok || o.Err != nil {
		return 0, false
	}
	var m sentRef // older stores hold the whole message: the same fields
	if json.Unmarshal(o.Value, &m) != nil || m.ConversationID != conv.ID || m.Sender != sender || m.ID != id || m.Seq == 0 {
		return 0, false // not a send's outcome: that id named another command
	}
	return m.Seq, true
}

func (s *State) deleteMessage(tx *batch, e *cmdlog.Envelope, c seqCmd) (any, *apperr.Error) {
	conv, r, me, err := s.forMember(tx, c.ConversationID, e.Actor)
	if err != nil {
		return nil, err
	}
	if c.Seq == 0 || c.Seq > conv.Last || c.Seq <= me.From {
		return nil, apperr.New(MessageNotFound, "no such message")
	}
	var m Message
	tx.GetJSON(msgKey(conv.ID, c.Seq), &m)
	if m.Kind != KindText || m.Sender != e.Actor {
		return nil, apperr.New(NotSender, "only the sender can delete a message for everyone")
	}
	if m.DeletedAt == nil {
		at := e.At
		m.DeletedAt, m.Text = &at, ""
		if a := m.Attachment; a != nil {
			m.Attachment = nil
			tx.Delete(attMsgKey(conv.ID, a.ID, m.Seq))
			if !sharedAfter(tx, conv.ID, a.ID, 0) {
				tx.Delete(attKey(conv.ID, a.ID)) // no one may download it any more
			}
		}
		tx.SetJSON(msgKey(conv.ID, m.Seq), &m)
		// It no longer counts for those who had not read it.
		inRecord := false
		for _, mb := range members(tx, conv, r) {
			if mb.User != m.Sender && mb.Read < m.Seq && mb.From < m.Seq {
				mb.Unread--
				inRecord = setReceipt(tx, conv, mb.User, &mb.receiptRec) || inRecord
			}
		}
		if inRecord {
			s.putConv(tx, conv)
		}
		s.emit(&Event{Cursor: e.Cursor, Type: EvDeleted, ConversationID: conv.ID, Seq: m.Seq, At: e.At}, r.ids())
	}
	return m, nil
}

// Receipt is the outcome of a read or delivered receipt.
type Receipt struct {
	ConversationID string `json:"conversation_id"`
	ReadSeq        uint64 `json:"read_seq"`
	DeliveredSeq   uint64 `json:"delivered_seq"`
	Unread         int    `json:"unread"`
}

func (s *State) receipt(tx *batch, e *cmdlog.Envelope, c seqCmd) (any, *apperr.Error) {
	conv, r, mr, err := s.forMember(tx, c.ConversationID, e.Actor)
	if err != nil {
		return nil, err
	}
	if c.Seq > conv.Last {
		return nil, &apperr.Error{Code: apperr.Invalid, Field: "seq", Message: "seq is past the last message"}
	}
	me := receiptOf(tx, conv, e.Actor)
	others := func() []string {
		return slices.DeleteFunc(r.ids(), func(u string) bool { return u == e.Actor })
	}
	switch {
	case e.Kind == kindRead && c.Seq > me.Read:
		me.Read = c.Seq
		me.Delivered = max(me.Delivered, c.Seq)
		me.Unread, me.Base = unreadAfter(tx, conv.ID, e.Actor, me.Read, mr.From), conv.Counted
		s.putReceipt(tx, conv, e.Actor, me)
		unread := me.Unread
		s.emit(&Event{Cursor: e.Cursor, Type: EvRead, ConversationID: conv.ID, UserID: e.Actor, Seq: c.Seq, At: e.At}, others())
		s.emit(&Event{Cursor: e.Cursor, Type: EvRead, ConversationID: conv.ID, UserID: e.Actor, Seq: c.Seq, Unread: &unread, At: e.At}, []string{e.Actor})
	case e.Kind == kindDelivered && c.Seq > me.Delivered:
		me.Delivered = c.Seq
		s.putReceipt(tx, conv, e.Actor, me)
		s.emit(&Event{Cursor: e.Cursor, Type: EvDelivered, ConversationID: conv.ID, UserID: e.Actor, Seq: c.Seq, At: e.At}, others())
	}
	return Receipt{ConversationID: conv.ID, ReadSeq: me.Read, DeliveredSeq: me.Delivered, Unread: me.unread(conv)}, nil
}

func (s *State) manage(tx *batch, e *cmdlog.Envelope, c membersCmd) (any, *apperr.Error) {
	conv, r, me, err := s.forMember(tx, c.ConversationID, e.Actor)
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
		in := make(map[string]bool, len(r)+len(c.Users)) // a membership test, never iterated
		for _, m := range r {
			in[m.User] = true
		}
		for _, u := range c.Users {
			if !in[u] {
				in[u] = true
				added = append(added, u)
			}
		}
		if len(r)+len(added) > MaxMembers {
			return nil, &apperr.Error{Code: TooManyMembers, Field: "users", Message: "a group has at most 1000 members"}
		}
		if len(added) > 0 {
			r = slices.Clip(r) // appending must not write into the cached roster
			for _, u := range added {
				r = s.addMember(tx, conv, r, u, "member", e.At)
			}
			s.putRoster(tx, conv, r, added...)
			s.emit(&Event{Cursor: e.Cursor, Type: EvJoined, ConversationID: conv.ID, At: e.At}, added)
			s.system(tx, e, conv, r.ids(), &System{Event: "joined", Users: added})
		}
	case kindRemove:
		i := r.find(c.UserID)
		if i < 0 {
			return nil, &apperr.Error{Code: NotMember, Field: "user_id", Message: "that user is not a member"}
		}
		target := r[i]
		leaving := c.UserID == e.Actor
		if !leaving && (!isAdmin || target.Role == "owner" || (target.Role == "admin" && me.Role != "owner")) {
			return nil, apperr.New(NotAdmin, "you may not remove this member")
		}
		event := "removed"
		if leaving {
			event = "left"
		}
		s.system(tx, e, conv, r.ids(), &System{Event: event, Users: []string{c.UserID}})
		r = r.without(c.UserID)
		tx.Delete(memberKey(conv.ID, c.UserID))
		tx.Delete(receiptKey(conv.ID, c.UserID))
		tx.Delete(joinedKey(c.UserID, conv.ID))
		s.emit(&Event{Cursor: e.Cursor, Type: EvLeft, ConversationID: conv.ID, UserID: c.UserID, At: e.At}, []string{c.UserID})
		var heir []string
		if target.Role == "owner" && len(r) > 0 {
			// The oldest admin, else the oldest member, owns it now.
			next := 0
			if j := slices.IndexFunc(r, func(m rosterEntry) bool { return m.Role == "admin" }); j >= 0 {
				next = j
			}
			r[next].Role = "owner"
			heir = []string{r[next].User}
		}
		s.putRoster(tx, conv, r, heir...)
	case kindRename:
		if !isAdmin {
			return nil, apperr.New(NotAdmin, "only admins can rename the conversation")
		}
		conv.Title = c.Title
		users := r.ids()
		s.emit(&Event{Cursor: e.Cursor, Type: EvRenamed, ConversationID: conv.ID, Title: c.Title, At: e.At}, users)
		s.system(tx, e, conv, users, &System{Event: "renamed", Title: c.Title})
	case kindRole:
		i := r.find(c.UserID)
		if me.Role != "owner" {
			return nil, apperr.New(NotAdmin, "only the owner can appoint admins")
		}
		if i < 0 || r[i].Role == "owner" {
			return nil, &apperr.Error{Code: NotMember, Field: "user_id", Message: "that user is not a member the owner can change"}
		}
		r = slices.Clone(r)
		r[i].Role = "member"
		if c.Admin {
			r[i].Role = "admin"
		}
		s.putRoster(tx, conv, r, c.UserID)
		s.emit(&Event{Cursor: e.Cursor, Type: EvMembers, ConversationID: conv.ID, UserID: c.UserID, At: e.At}, r.ids())
	}
	s.putConv(tx, conv)
	return view(tx, conv.ID, e.Actor), nil
}
