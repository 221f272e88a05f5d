package chat

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"superapp/internal/apperr"
	"superapp/internal/cmdlog"
	"superapp/internal/store"
)

// Config configures a Service.
type Config struct {
	Log cmdlog.Appender
	// Store keeps the read model (the node's state store).
	Store *store.DB
	Now   func() time.Time
	// UserExists tells whether an account exists (from identity).
	UserExists func(userID string) bool
	// Blocked tells whether either user blocked the other (from social).
	Blocked func(a, b string) bool
	// Blobs stores attachments (nil: no attachments).
	Blobs  Blobs
	Logger *slog.Logger
}

// Service is chat's use cases.
type Service struct {
	state   *State
	machine *cmdlog.Machine
	sub     *cmdlog.Submitter
	exists  func(string) bool
	blocked func(a, b string) bool
	blobs   Blobs
}

// New returns a service; the node must feed Machine() the CHAT stream.
func New(cfg Config) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	space := cfg.Store.Space(Stream)
	st := NewState(space)
	m := cmdlog.NewMachine(Stream, space, st.Apply, cfg.Logger)
	m.SetLoader(st.cache.forget) // nothing else to load: the state is the store
	st.outcome = m.Outcome
	return &Service{
		state:   st,
		machine: m,
		sub:     &cmdlog.Submitter{Log: cfg.Log, Machine: m, Subject: "chat", Now: cfg.Now},
		exists:  cfg.UserExists,
		blocked: cfg.Blocked,
		blobs:   cfg.Blobs,
	}
}

// Close stops the service's writers; call it before the engine closes.
func (s *Service) Close() { s.sub.Close() }

// Machine is the state machine of the CHAT stream.
func (s *Service) Machine() *cmdlog.Machine { return s.machine }

// State is the chat read model.
func (s *Service) State() *State { return s.state }

// CreateInput is the input of Create.
type CreateInput struct {
	Members []string `json:"members"`
	Title   *string  `json:"title,omitempty"`
	// Kind is "direct" or "group"; by default a conversation with one other
	// member and no title is direct.
	Kind string `json:"kind,omitempty"`
}

// DirectID is the id of the one-to-one conversation of a and b: the same
// whoever creates it, on whichever DC.
func DirectID(a, b string) string {
	if a > b {
		a, b = b, a
	}
	h := sha256.Sum256([]byte(a + "\x00" + b))
	return "d" + hex.EncodeToString(h[:16])
}

// Create starts a conversation; a one-to-one conversation that exists is
// returned as it is (Created.Existed). Errors: invalid_field,
// user_not_found, blocked, too_many_members.
func (s *Service) Create(ctx context.Context, w cmdlog.Write, actor string, in CreateInput) (Created, cmdlog.Result, error) {
	fail := func(err error) (Created, cmdlog.Result, error) { return Created{}, cmdlog.Result{}, err }
	if len(in.Members) == 0 {
		return fail(apperr.Field("members", "name at least one other member"))
	}
	if len(in.Members)+1 > MaxMembers {
		return fail(&apperr.Error{Code: TooManyMembers, Field: "members", Message: "a group has at most 1000 members"})
	}
	var members []string
	for _, u := range in.Members {
		if u == actor || slices.Contains(members, u) {
			continue
		}
		if u == "" || !s.exists(u) {
			return fail(&apperr.Error{Code: apperr.UserNotFound, Field: "members", Message: "no user " + quote(u)})
		}
		if s.blocked(actor, u) {
			return fail(&apperr.Error{Code: apperr.Blocked, Field: "members", Message: "a block stands between you and " + quote(u)})
		}
		members = append(members, u)
	}
	if len(members) == 0 {
		return fail(apperr.Field("members", "name at least one member other than yourself"))
	}
	c := createConv{Kind: in.Kind, Members: members}
	if c.Kind == "" {
		c.Kind = Group
		if len(members) == 1 && in.Title == nil {
			c.Kind = Direct
		}
	}
	switch c.Kind {
	case Direct:
		if len(members) != 1 || in.Title != nil {
			return fail(apperr.Field("kind", "a direct conversation has exactly one other member and no title"))
		}
		c.ConversationID = DirectID(actor, members[0])
		// Creating the same one-to-one conversation twice is no error: the
		// log applies the first and answers the second with it.
		if w.ID == "" {
			w.ID = "direct/" + c.ConversationID + "/" + actor
		}
	case Group:
		c.ConversationID = "g" + cmdlog.NewID()
		if in.Title != nil {
			t, err := cleanTitle(*in.Title)
			if err != nil {
				return fail(err)
			}
			c.Title = t
		}
	default:
		return fail(apperr.Field("kind", "kind must be direct or group"))
	}
	res, err := s.sub.Submit(ctx, w, kindCreate, actor, c)
	if err != nil {
		return Created{}, res, err
	}
	var out Created
	if err := json.Unmarshal(res.Value, &out); err != nil {
		return Created{}, res, err
	}
	if res.Replayed && c.Kind == Direct {
		// Opening the same one-to-one conversation again: it exists, as it
		// is now.
		v, err := s.state.Conversation(c.ConversationID, actor)
		if err != nil {
			return Created{}, res, err
		}
		out = Created{View: v, Existed: true}
	}
	return out, res, nil
}

func quote(s string) string { return "\"" + s + "\"" }

func cleanTitle(t string) (string, *apperr.Error) {
	t = strings.TrimSpace(t)
	switch {
	case !utf8.ValidString(t):
		return "", apperr.Field("title", "title must be valid UTF-8")
	case t == "":
		return "", apperr.Field("title", "title must not be empty")
	case utf8.RuneCountInString(t) > MaxTitleRunes:
		return "", apperr.Field("title", "title must be at most %d characters", MaxTitleRunes)
	case strings.IndexFunc(t, unicode.IsControl) >= 0:
		return "", apperr.Field("title", "title must not contain control characters")
	}
	return t, nil
}

// SendInput is the input of Send.
type SendInput struct {
	ID           string `json:"id"`
	Text         string `json:"text"`
	ReplyTo      uint64 `json:"reply_to,omitempty"`
	AttachmentID string `json:"attachment_id,omitempty"`
}

var clientIDRE = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)

// sendID is the command id of a send: named after the message's client
// id, so that the same message sent again is the same command, which the
// machine applies once (and apply relies on: see State.sent).
func sendID(convID, actor, clientID string) string {
	return "msg/" + convID + "/" + actor + "/" + clientID
}

// isSendID reports whether id is sendID(convID, actor, clientID), without
// building it.
func isSendID(id, convID, actor, clientID string) bool {
	rest, ok := strings.CutPrefix(id, "msg/")
	if !ok {
		return false
	}
	if rest, ok = strings.CutPrefix(rest, convID); !ok || !strings.HasPrefix(rest, "/") {
		return false
	}
	if rest, ok = strings.CutPrefix(rest[1:], actor); !ok || !strings.HasPrefix(rest, "/") {
		return false
	}
	return rest[1:] == clientID
}

// Send sends a message. The client id makes it idempotent forever: sending
// it again returns the original message (Result.Replayed). Errors:
// invalid_field, conversation_not_found, not_member, blocked.
func (s *Service) Send(ctx context.Context, actor, convID string, in SendInput) (Message, cmdlog.Result, error) {
	fail := func(err error) (Message, cmdlog.Result, error) { return Message{}, cmdlog.Result{}, err }
	if !clientIDRE.MatchString(in.ID) {
		return fail(apperr.Field("id", "id must be 1-64 characters of letters, digits and . _ : -"))
	}
	if in.AttachmentID == "" || in.Text != "" {
		if err := checkText(in.Text); err != nil {
			return fail(err)
		}
	}
	conv, err := s.memberOf(convID, actor)
	if err != nil {
		return fail(err)
	}
	w := cmdlog.Write{ID: sendID(convID, actor, in.ID)}
	if o, seen := s.machine.Outcome(w.ID); !seen || !o.Final() {
		if peer := directPeer(conv, actor); peer != "" && s.blocked(actor, peer) {
			return fail(apperr.New(apperr.Blocked, "a block stands between you and this user"))
		}
		w.Unseen = true
	}
	res, err := s.sub.Submit(ctx, w, kindSend, actor, sendCmd{ConversationID: convID, ID: in.ID, Text: in.Text, ReplyTo: in.ReplyTo, AttachmentID: in.AttachmentID})
	if err != nil {
		return Message{}, res, err
	}
	m, err := s.sentMessage(res)
	return m, res, err
}

func checkText(t string) *apperr.Error {
	switch {
	case !utf8.ValidString(t):
		return apperr.Field("text", "text must be valid UTF-8")
	case strings.TrimSpace(t) == "":
		return apperr.Field("text", "text must not be empty")
	case utf8.RuneCountInString(t) > MaxTextRunes:
		return apperr.Field("text", "text must be at most %d characters", MaxTextRunes)
	case strings.IndexFunc(t, func(r rune) bool { return unicode.IsControl(r) && r != '\n' && r != '\t' }) >= 0:
		return apperr.Field("text", "text must not contain control characters")
	}
	return nil
}

// precheck answers a non-member at once, without a round trip to the log.
// The log checks again when it applies the command.
func (s *Service) precheck(convID, actor string) error {
	return checkMember(s.state.space, convID, actor)
}

// memberOf reads the conversation actor sends to, if actor is a member:
// one read for a conversation that is not a group, whose record holds its
// members. The log checks again when it applies the command.
func (s *Service) memberOf(convID, actor string) (*convRec, error) {
	conv, ok := loadConv(s.state.space, convID)
	if !ok {
		return nil, apperr.New(ConversationNotFound, "no such conversation")
	}
	member := conv.Members.find(actor) >= 0
	if conv.Kind == Group {
		member = isMember(s.state.space, convID, actor)
	}
	if !member {
		return nil, apperr.New(NotMember, "you are not a member of this conversation")
	}
	return conv, nil
}

// directPeer returns the other member of a one-to-one conversation ("" if
// conv is not one).
func directPeer(conv *convRec, actor string) string {
	if conv.Kind != Direct {
		return ""
	}
	for _, u := range conv.Members.ids() {
		if u != actor {
			return u
		}
	}
	return ""
}

func (s *Service) submit(ctx context.Context, w cmdlog.Write, kind, actor, convID string, cmd any, out any) (cmdlog.Result, error) {
	if err := s.precheck(convID, actor); err != nil {
		return cmdlog.Result{}, err
	}
	res, err := s.sub.Submit(ctx, w, kind, actor, cmd)
	if err != nil {
		return res, err
	}
	return res, json.Unmarshal(res.Value, out)
}

// Delete deletes the actor's own message for everyone. Errors:
// conversation_not_found, not_member, message_not_found, not_sender.
func (s *Service) Delete(ctx context.Context, w cmdlog.Write, actor, convID string, seq uint64) (Message, cmdlog.Result, error) {
	var m Message
	res, err := s.submit(ctx, w, kindDelete, actor, convID, seqCmd{ConversationID: convID, Seq: seq}, &m)
	return m, res, err
}

// Read marks the conversation read up to seq (for all the actor's devices).
func (s *Service) Read(ctx context.Context, w cmdlog.Write, actor, convID string, seq uint64) (Receipt, cmdlog.Result, error) {
	return s.receipt(ctx, w, kindRead, actor, convID, seq)
}

// Delivered acknowledges that the actor's device received messages up to seq.
func (s *Service) Delivered(ctx context.Context, w cmdlog.Write, actor, convID string, seq uint64) (Receipt, cmdlog.Result, error) {
	return s.receipt(ctx, w, kindDelivered, actor, convID, seq)
}

func (s *Service) receipt(ctx context.Context, w cmdlog.Write, kind, actor, convID string, seq uint64) (Receipt, cmdlog.Result, error) {
	if seq == 0 {
		return Receipt{}, cmdlog.Result{}, apperr.Field("seq", "seq must be a message sequence (1 or more)")
	}
	var r Receipt
	res, err := s.submit(ctx, w, kind, actor, convID, seqCmd{ConversationID: convID, Seq: seq}, &r)
	return r, res, err
}

// AddMembers adds users to a group (admins only). Errors: user_not_found,
// blocked, not_admin, too_many_members.
func (s *Service) AddMembers(ctx context.Context, w cmdlog.Write, actor, convID string, users []string) (View, cmdlog.Result, error) {
	if len(users) == 0 || len(users) > MaxMembers {
		return View{}, cmdlog.Result{}, apperr.Field("users", "name 1 to %d users", MaxMembers)
	}
	for _, u := range users {
		if u == "" || !s.exists(u) {
			return View{}, cmdlog.Result{}, &apperr.Error{Code: apperr.UserNotFound, Field: "users", Message: "no user " + quote(u)}
		}
		if s.blocked(actor, u) {
			return View{}, cmdlog.Result{}, &apperr.Error{Code: apperr.Blocked, Field: "users", Message: "a block stands between you and " + quote(u)}
		}
	}
	var v View
	res, err := s.submit(ctx, w, kindAdd, actor, convID, membersCmd{ConversationID: convID, Users: users}, &v)
	return v, res, err
}

// RemoveMember removes a member (admins), or the actor leaves (user == actor).
func (s *Service) RemoveMember(ctx context.Context, w cmdlog.Write, actor, convID, user string) (View, cmdlog.Result, error) {
	var v View
	res, err := s.submit(ctx, w, kindRemove, actor, convID, membersCmd{ConversationID: convID, UserID: user}, &v)
	return v, res, err
}

// Rename retitles a group (admins).
func (s *Service) Rename(ctx context.Context, w cmdlog.Write, actor, convID, title string) (View, cmdlog.Result, error) {
	t, aerr := cleanTitle(title)
	if aerr != nil {
		return View{}, cmdlog.Result{}, aerr
	}
	var v View
	res, err := s.submit(ctx, w, kindRename, actor, convID, membersCmd{ConversationID: convID, Title: t}, &v)
	return v, res, err
}

// SetAdmin makes a member an admin or not (the owner only).
func (s *Service) SetAdmin(ctx context.Context, w cmdlog.Write, actor, convID, user string, admin bool) (View, cmdlog.Result, error) {
	var v View
	res, err := s.submit(ctx, w, kindRole, actor, convID, membersCmd{ConversationID: convID, UserID: user, Admin: admin}, &v)
	return v, res, err
}

// PaymentPeer checks that actor may pay in a conversation and returns the
// payee: the other member of a one-to-one conversation, or to (a member)
// in a group. Errors: conversation_not_found, not_member, invalid_field.
func (s *Service) PaymentPeer(convID, actor, to string) (string, error) {
	r := s.state.snapshot()
	defer r.Close()
	conv, _, err := forMember(r, convID, actor)
	if err != nil {
		return "", err
	}
	if to == "" && conv.Kind == Direct {
		for _, u := range loadRoster(r, conv).ids() {
			if u != actor {
				to = u
			}
		}
	}
	if to == "" || to == actor {
		return "", apperr.Field("to_user", "name the member to pay")
	}
	if !isMember(r, convID, to) {
		return "", &apperr.Error{Code: NotMember, Field: "to_user", Message: "the payee is not a member of this conversation"}
	}
	return to, nil
}

// PostPayment puts a committed transfer's card in the conversation. The
// card's id follows from the payment's client id, so posting it again
// (a retry after a failover) shows it once.
func (s *Service) PostPayment(ctx context.Context, actor, convID, clientID, text string, card PaymentCard) (Message, cmdlog.Result, error) {
	// One card per payment key: a hash keeps distinct keys distinct
	// whatever their length.
	sum := sha256.Sum256([]byte(clientID))
	id := "pay-" + hex.EncodeToString(sum[:16])
	w := cmdlog.Write{ID: sendID(convID, actor, id)}
	res, err := s.sub.Submit(ctx, w, kindSend, actor, sendCmd{ConversationID: convID, ID: id, Text: text, Payment: &card})
	if err != nil {
		return Message{}, res, err
	}
	m, err := s.sentMessage(res)
	return m, res, err
}

// sentMessage reads the message a send's outcome names, as it is now.
func (s *Service) sentMessage(res cmdlog.Result) (Message, error) {
	var ref sentRef
	if err := json.Unmarshal(res.Value, &ref); err != nil {
		return Message{}, fmt.Errorf("send outcome: %w", err)
	}
	var m Message
	if !s.state.space.GetJSON(msgKey(ref.ConversationID, ref.Seq), &m) {
		return Message{}, fmt.Errorf("send outcome names message %d of %s, which is not stored", ref.Seq, ref.ConversationID)
	}
	return m, nil
}
