package miniapp

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"superapp/internal/apperr"
	"superapp/internal/chat"
	"superapp/internal/cmdlog"
	"superapp/internal/ledger"
	"superapp/internal/oauth"
	"superapp/internal/pay"
	"superapp/internal/store"
)

// DefaultRequestTTL is how long a user has to decide on a pay request.
const DefaultRequestTTL = 24 * time.Hour

// Limits.
const (
	MaxDescriptionRunes = 200
	maxRequestTTL       = 7 * 24 * time.Hour
)

// Config configures a Service.
type Config struct {
	Log cmdlog.Appender
	// Store keeps the read model (the node's state store).
	Store  *store.DB
	OAuth  *oauth.Service
	Pay    *pay.Service
	Chat   *chat.Service
	DC     string
	Now    func() time.Time
	Logger *slog.Logger
	// Sender posts webhooks (nil: deliveries are recorded, never sent).
	Sender Sender
	// Retry is the webhook retry schedule (zero: DefaultRetry).
	Retry Retry
}

// Service is the mini-app platform's pay requests, notifications and
// webhooks. It is safe for concurrent use.
type Service struct {
	cfg     Config
	state   *State
	machine *cmdlog.Machine
	sub     *cmdlog.Submitter
	now     func() time.Time
	log     *slog.Logger
	w       *worker
}

// New returns a service; the node must feed Machine() the MINIAPP stream
// and call Start once the streams have caught up.
func New(cfg Config) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.Retry = cfg.Retry.WithDefaults()
	space := cfg.Store.Space(Stream)
	st := NewState(space)
	m := cmdlog.NewMachine(Stream, space, st.Apply, cfg.Logger)
	m.SetLoader(st.load)
	s := &Service{cfg: cfg, state: st, machine: m, now: cfg.Now, log: cfg.Logger,
		sub: &cmdlog.Submitter{Log: cfg.Log, Machine: m, Subject: "miniapp", Now: cfg.Now}}
	s.w = newWorker(s)
	return s
}

// Machine is the state machine of the MINIAPP stream.
func (s *Service) Machine() *cmdlog.Machine { return s.machine }

// State is the mini-app read model.
func (s *Service) State() *State { return s.state }

// Now is the service's clock.
func (s *Service) Now() time.Time { return s.now() }

// Close stops the delivery worker and the writers; call it before the
// engine closes.
func (s *Service) Close() {
	s.w.stop()
	s.sub.Close()
}

// Start runs the webhook delivery worker until Close.
func (s *Service) Start() { s.w.start() }

var keyRE = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)
var currencyRE = regexp.MustCompile(`^[A-Z]{3}$`)

// PayRequestInput is a pay request as a mini-app asks for it.
type PayRequestInput struct {
	ID          string `json:"id"`
	UserID      string `json:"user_id,omitempty"`
	Amount      uint64 `json:"amount"`
	Currency    string `json:"currency,omitempty"`
	Description string `json:"description"`
	// Capture is "immediate" (default: paid on approval) or "hold" (held
	// on approval; the mini-app captures or releases it).
	Capture string `json:"capture,omitempty"`
	// ExpiresIn is how long the user has to decide, in seconds (default a day).
	ExpiresIn uint32 `json:"expires_in,omitempty"`
}

func (in *PayRequestInput) check() *apperr.Error {
	if in.Currency == "" {
		in.Currency = "KRW"
	}
	if in.Capture == "" {
		in.Capture = CaptureImmediate
	}
	in.Description = strings.TrimSpace(in.Description)
	switch {
	case !keyRE.MatchString(in.ID):
		return apperr.Field("id", "id must be 1-64 characters of letters, digits and . _ : -")
	case in.Amount == 0 || in.Amount > pay.MaxAmount:
		return apperr.Field("amount", "amount must be a positive integer in minor units, at most %d", pay.MaxAmount)
	case !currencyRE.MatchString(in.Currency):
		return apperr.Field("currency", "currency must be an ISO 4217 code such as KRW")
	case in.Description == "" || !utf8.ValidString(in.Description) || utf8.RuneCountInString(in.Description) > MaxDescriptionRunes ||
		strings.IndexFunc(in.Description, unicode.IsControl) >= 0:
		return apperr.Field("description", "description must be 1 to %d characters without control characters", MaxDescriptionRunes)
	case in.Capture != CaptureImmediate && in.Capture != CaptureHold:
		return apperr.Field("capture", "capture must be immediate or hold")
	case time.Duration(in.ExpiresIn)*time.Second > maxRequestTTL:
		return apperr.Field("expires_in", "a pay request lasts at most %d seconds", int(maxRequestTTL/time.Second))
	}
	return nil
}

func decode[T any](res cmdlog.Result) (T, error) {
	var v T
	err := json.Unmarshal(res.Value, &v)
	return v, err
}

func fingerprint(parts ...any) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%v\x00", p)
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// hasWebhook reports whether a mini-app registered a webhook URL.
func (s *Service) hasWebhook(clientID string) bool {
	cl, ok := s.cfg.OAuth.State().Client(clientID)
	return ok && cl.WebhookURL != ""
}

// CreatePayRequest records a mini-app's request that user pay it. The
// mini-app's id makes it idempotent forever; the caller has checked that
// the user granted the mini-app the pay scope. Errors: invalid_field,
// idempotency_key_reused (the id was used for another request).
func (s *Service) CreatePayRequest(ctx context.Context, clientID, user string, in PayRequestInput) (PayRequest, cmdlog.Result, error) {
	if err := in.check(); err != nil {
		return PayRequest{}, cmdlog.Result{}, err
	}
	ttl := DefaultRequestTTL
	if in.ExpiresIn > 0 {
		ttl = time.Duration(in.ExpiresIn) * time.Second
	}
	r := PayRequest{ID: RequestID(clientID, in.ID), ClientKey: in.ID, ClientID: clientID, UserID: user, Amount: in.Amount,
		Currency: in.Currency, Description: in.Description, Capture: in.Capture, ExpiresAt: s.now().UTC().Add(ttl)}
	w := cmdlog.Write{ID: "payreq/" + r.ID, Hash: fingerprint(user, in.Amount, in.Currency, in.Description, in.Capture)}
	res, err := s.sub.Submit(ctx, w, kindCreate, clientID, createCmd{Request: r})
	if err != nil {
		return PayRequest{}, res, err
	}
	out, err := decode[PayRequest](res)
	return out, res, err
}

// payRequestSoon returns pay request id, waiting a moment if this node has
// not applied it yet (cmdlog.Soon): the mini-app may have made it a moment
// ago through another DC, and a person's approval must not fail with "no
// such pay request" for that.
func (s *Service) payRequestSoon(ctx context.Context, id string) (PayRequest, bool) {
	return cmdlog.Soon(ctx, func() (PayRequest, bool) { return s.state.PayRequest(id) })
}

// PayRequestFor returns a pay request as its user or its mini-app sees
// it. Errors: not_found (no such request, or not theirs).
func (s *Service) PayRequestFor(user, clientID, id string) (PayRequest, error) {
	r, ok := s.state.PayRequest(id)
	if !ok || (user != "" && r.UserID != user) || (clientID != "" && r.ClientID != clientID) {
		return PayRequest{}, apperr.New(apperr.NotFound, "no such pay request")
	}
	r.Status = r.StatusAt(s.now())
	return r, nil
}

// Pending lists a user's pending pay requests, newest first.
func (s *Service) Pending(user string) []PayRequest { return s.state.PendingOf(user, s.now()) }

// moveID is the pay client id of the money a request moves: derived from
// the request, so an approval retried on any DC moves the money once.
func moveID(r PayRequest) string { return "mapr." + strings.TrimPrefix(r.ID, "pr_") }

// Approve pays a pending request as its user: to the mini-app owner's
// merchant account, or as a hold for the owner to capture. The money moves
// under an id derived from the request, then the approval is recorded.
// Errors: not_found, conflict (decided already), request_expired, and the
// ledger's refusals (exceeds_credits: not enough money).
func (s *Service) Approve(ctx context.Context, user, id string) (PayRequest, cmdlog.Result, error) {
	fail := func(err error) (PayRequest, cmdlog.Result, error) { return PayRequest{}, cmdlog.Result{}, err }
	r, ok := s.payRequestSoon(ctx, id)
	if !ok || r.UserID != user {
		return fail(apperr.New(apperr.NotFound, "no such pay request"))
	}
	// Approve and decline have their own ids: whichever the log applies
	// first wins, and the other is refused (conflict) rather than answered
	// with the winner's outcome — so an approval that moved money learns
	// it lost and gives the money back.
	w := cmdlog.Write{ID: "payreq-approve/" + r.ID}
	if o, done := s.machine.Outcome(w.ID); done && o.Err == nil {
		res, err := s.sub.Submit(ctx, w, kindApprove, user, decideCmd{ID: r.ID})
		if err != nil {
			return fail(err)
		}
		out, err := decode[PayRequest](res)
		if err == nil && out.Status == StatusDeclined {
			return fail(apperr.New(apperr.Conflict, "this pay request was declined"))
		}
		return out, res, err
	}
	switch st := r.StatusAt(s.now()); st {
	case StatusPending:
	case StatusExpired:
		return fail(apperr.New(oauth.RequestExpired, "this pay request expired"))
	default:
		return fail(apperr.New(apperr.Conflict, "this pay request is %s already", st))
	}
	cl, ok := s.cfg.OAuth.State().Client(r.ClientID)
	if !ok {
		return fail(apperr.New(apperr.NotFound, "the mini-app is gone"))
	}
	if cl.Owner == user {
		return fail(apperr.New(apperr.Conflict, "you cannot pay your own mini-app"))
	}
	cmd := decideCmd{ID: r.ID, Webhook: cl.WebhookURL != ""}
	if r.Capture == CaptureHold {
		ttl := uint32(pay.MaxHold)
		h, _, err := s.cfg.Pay.PlaceHold(ctx, user, pay.HoldInput{ID: moveID(r), Payee: cl.Owner, Amount: r.Amount, Currency: r.Currency, ExpiresIn: ttl})
		if err != nil {
			return fail(err)
		}
		cmd.HoldID = h.HoldID.String()
	} else {
		if _, ok := s.cfg.Pay.State().MerchantOf(cl.Owner); !ok {
			// The developer is paid as a merchant named after the app.
			if _, _, err := s.cfg.Pay.RegisterMerchant(ctx, cl.Owner, cl.Name); err != nil {
				return fail(err)
			}
		}
		qr, err := s.cfg.Pay.StaticQR(cl.Owner)
		if err != nil {
			return fail(err)
		}
		sale, _, err := s.cfg.Pay.PayQR(ctx, user, moveID(r), qr, r.Amount, r.Currency)
		if err != nil {
			return fail(err)
		}
		cmd.PaymentID = sale.PaymentID.String()
	}
	res, err := s.sub.Submit(ctx, w, kindApprove, user, cmd)
	if err != nil {
		if apperr.From(err).Code == apperr.Conflict {
			// Declined on another device meanwhile: give the money back.
			s.undo(ctx, cl.Owner, r, cmd)
		}
		return PayRequest{}, res, err
	}
	out, err := decode[PayRequest](res)
	return out, res, err
}

// undoMoved gives back whatever money an approval of r may have moved
// under r's derived ids, found in the ledger.
func (s *Service) undoMoved(ctx context.Context, owner string, r PayRequest) {
	ps := s.cfg.Pay.State()
	hold := pay.TransferID(r.UserID, "hold/"+moveID(r))
	if h, ok := ps.HoldOf(hold, r.UserID); ok && h.Status == "pending" {
		s.undo(ctx, owner, r, decideCmd{HoldID: hold.String()})
	}
	sale := pay.TransferID(r.UserID, "qr/"+moveID(r))
	if _, ok := ps.SaleOf(sale); ok {
		s.undo(ctx, owner, r, decideCmd{PaymentID: sale.String()})
	}
}

// undo gives back money an approval moved for a request that was decided
// otherwise meanwhile. Its ids follow from the request, so doing it twice
// gives back once.
func (s *Service) undo(ctx context.Context, owner string, r PayRequest, cmd decideCmd) {
	var err error
	if cmd.HoldID != "" {
		id, perr := parseID(cmd.HoldID)
		if perr == nil {
			_, _, err = s.cfg.Pay.Release(ctx, owner, id)
		}
	} else if cmd.PaymentID != "" {
		id, perr := parseID(cmd.PaymentID)
		if perr == nil {
			_, _, err = s.cfg.Pay.Refund(ctx, owner, moveID(r), id, 0)
		}
	}
	if err != nil {
		s.log.Error("undo pay request approval", "pay_request", r.ID, "err", err)
	}
}

// Decline declines a pending request as its user. Errors: not_found,
// conflict.
func (s *Service) Decline(ctx context.Context, user, id string) (PayRequest, cmdlog.Result, error) {
	r, ok := s.payRequestSoon(ctx, id)
	if !ok || r.UserID != user {
		return PayRequest{}, cmdlog.Result{}, apperr.New(apperr.NotFound, "no such pay request")
	}
	res, err := s.sub.Submit(ctx, cmdlog.Write{ID: "payreq-decline/" + r.ID}, kindDecline, user, decideCmd{ID: r.ID, Webhook: s.hasWebhook(r.ClientID)})
	if err != nil {
		return PayRequest{}, res, err
	}
	// An approval may have moved the money and then failed to record
	// itself (its DC died, say): the decline stands, so the money goes back.
	if cl, ok := s.cfg.OAuth.State().Client(r.ClientID); ok {
		s.undoMoved(ctx, cl.Owner, r)
	}
	out, err := decode[PayRequest](res)
	if err == nil && out.Status != StatusDeclined {
		return PayRequest{}, res, apperr.New(apperr.Conflict, "this pay request was approved")
	}
	return out, res, err
}

// Capture takes an approved hold's money for the mini-app's owner, all
// (amount 0) or part. Errors: not_found, conflict.
func (s *Service) Capture(ctx context.Context, clientID, id string, amount uint64) (PayRequest, cmdlog.Result, error) {
	return s.resolve(ctx, clientID, id, StatusCaptured, amount)
}

// Release gives an approved hold's money back to the user. Errors:
// not_found, conflict.
func (s *Service) Release(ctx context.Context, clientID, id string) (PayRequest, cmdlog.Result, error) {
	return s.resolve(ctx, clientID, id, StatusReleased, 0)
}

func (s *Service) resolve(ctx context.Context, clientID, id, status string, amount uint64) (PayRequest, cmdlog.Result, error) {
	fail := func(err error) (PayRequest, cmdlog.Result, error) { return PayRequest{}, cmdlog.Result{}, err }
	r, err := s.PayRequestFor("", clientID, id)
	if err != nil {
		return fail(err)
	}
	w := cmdlog.Write{ID: "payreq-resolve/" + r.ID}
	if _, done := s.machine.Outcome(w.ID); !done {
		if r.Capture != CaptureHold || r.Status != StatusApproved {
			return fail(apperr.New(apperr.Conflict, "only an approved hold can be captured or released; this request is %s", r.Status))
		}
		cl, ok := s.cfg.OAuth.State().Client(clientID)
		if !ok {
			return fail(apperr.New(apperr.NotFound, "no such mini-app"))
		}
		hid, perr := parseID(r.HoldID)
		if perr != nil {
			return fail(apperr.New(apperr.Internal, "bad hold id"))
		}
		var h pay.Hold
		if status == StatusCaptured {
			h, _, err = s.cfg.Pay.Capture(ctx, cl.Owner, hid, amount)
		} else {
			h, _, err = s.cfg.Pay.Release(ctx, cl.Owner, hid)
		}
		if err != nil {
			return fail(err)
		}
		amount = h.Captured
		if h.Status != status {
			// The hold was resolved the other way before: record what is.
			status = h.Status
			if status != StatusCaptured && status != StatusReleased {
				return fail(apperr.New(apperr.Conflict, "the hold is %s", h.Status))
			}
		}
	}
	res, err := s.sub.Submit(ctx, w, kindResolve, clientID, decideCmd{ID: r.ID, Status: status, Captured: amount, Webhook: s.hasWebhook(clientID)})
	if err != nil {
		return PayRequest{}, res, err
	}
	out, err := decode[PayRequest](res)
	return out, res, err
}

// NotifyInput is a notification as a mini-app sends it.
type NotifyInput struct {
	ID     string `json:"id"`
	UserID string `json:"user_id,omitempty"`
	Text   string `json:"text"`
}

// Notify posts a mini-app's message into user's conversation with its
// official account. The caller has checked the chat-notify scope.
// Errors: invalid_field, not_found.
func (s *Service) Notify(ctx context.Context, clientID, user string, in NotifyInput) (chat.Message, cmdlog.Result, error) {
	cl, ok := s.cfg.OAuth.State().Client(clientID)
	if !ok {
		return chat.Message{}, cmdlog.Result{}, apperr.New(apperr.NotFound, "no such mini-app")
	}
	return s.cfg.Chat.PostOfficial(ctx, clientID, cl.Name, user, in.ID, in.Text)
}

// WebhookSecret is a mini-app's current webhook signing secret.
func (s *Service) WebhookSecret(clientID string) (string, uint64, error) {
	v := s.state.SecretVersion(clientID)
	sec, err := s.cfg.OAuth.WebhookSecret(clientID, v)
	return sec, v, err
}

// RotateWebhookSecret gives a mini-app a new webhook secret; deliveries
// are signed with it from now on. The caller checked the owner. Errors:
// conflict.
func (s *Service) RotateWebhookSecret(ctx context.Context, w cmdlog.Write, clientID string) (string, uint64, cmdlog.Result, error) {
	var version uint64
	if o, replay := s.machine.Outcome(w.ID); replay && w.ID != "" && o.Err == nil {
		var v map[string]uint64
		_ = json.Unmarshal(o.Value, &v)
		version = v["version"]
	} else {
		version = s.state.SecretVersion(clientID) + 1
	}
	res, err := s.sub.Submit(ctx, w, kindRotate, clientID, rotateCmd{ClientID: clientID, Version: version})
	if err != nil {
		return "", 0, res, err
	}
	sec, err := s.cfg.OAuth.WebhookSecret(clientID, version)
	return sec, version, res, err
}

// Deliveries lists a mini-app's latest webhook deliveries, newest first.
func (s *Service) Deliveries(clientID string) []Delivery {
	return s.state.Deliveries(clientID, maxListShown)
}

func parseID(s string) (ledger.ID, error) {
	var id ledger.ID
	err := id.UnmarshalText([]byte(s))
	return id, err
}
