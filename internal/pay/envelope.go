package pay

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"time"

	"superapp/internal/apperr"
	"superapp/internal/cmdlog"
	"superapp/internal/ledger"
	"superapp/internal/store"
)

// A red envelope splits an amount among the first members of a group who
// claim it, equally or at random; each member claims once; what is left
// after a day goes back to the sender. The money waits in the envelope's
// own ledger account meanwhile.

// Envelope limits.
const (
	MaxEnvelopeShares = 100
	EnvelopeLifetime  = 24 * time.Hour
)

// Envelope error codes.
const (
	EnvelopeEmpty   = "envelope_empty"
	AlreadyClaimed  = "already_claimed"
	EnvelopeExpired = "envelope_expired"
)

func init() {
	apperr.Register(EnvelopeEmpty, http.StatusConflict)
	apperr.Register(AlreadyClaimed, http.StatusConflict)
	apperr.Register(EnvelopeExpired, http.StatusGone)
}

// Envelope is a red envelope's state.
type Envelope struct {
	EnvelopeID     ledger.ID         `json:"envelope_id"`
	ConversationID string            `json:"conversation_id"`
	Sender         string            `json:"sender"`
	Amount         uint64            `json:"amount"`
	Currency       string            `json:"currency"`
	Shares         int               `json:"shares"`
	Split          string            `json:"split"` // equal or random
	Remaining      uint64            `json:"remaining"`
	Claims         map[string]uint64 `json:"claims"`
	Status         string            `json:"status"` // open, emptied, returned
	ExpiresAt      time.Time         `json:"expires_at"`
}

// envelopeRecord is an envelope as the store keeps it: with the members
// who may claim it, which its view does not show.
type envelopeRecord struct {
	Envelope
	Eligible []string `json:"eligible"`
}

// openEnvelope is an envelope still open, in State.open and envopen/.
type openEnvelope struct {
	cursor  uint64 // the command that made it: its place in envopen/
	id      ledger.ID
	expires time.Time
}

func (o openEnvelope) encode() []byte {
	return binary.BigEndian.AppendUint64(append([]byte(nil), o.id[:]...), uint64(o.expires.UnixNano()))
}

func decodeOpenEnvelope(k string, v []byte) openEnvelope {
	if len(v) != 24 {
		panic(store.Failure{Err: fmt.Errorf("pay: open envelope %q: %d bytes", k, len(v))})
	}
	o := openEnvelope{cursor: store.ParseSeq(k[len(openEnvelopePrefix):]), expires: time.Unix(0, int64(binary.BigEndian.Uint64(v[16:]))).UTC()}
	copy(o.id[:], v)
	return o
}

const (
	kindEnvelope = "envelope.create"
	kindClaim    = "envelope.claim"
)

type envelopeCmd struct {
	ID       ledger.ID `json:"id"`
	ClientID string    `json:"client_id"`
	Conv     string    `json:"conversation_id"`
	Amount   uint64    `json:"amount"`
	Currency string    `json:"currency"`
	Shares   int       `json:"shares"`
	Split    string    `json:"split"`
	Eligible []string  `json:"eligible"`
}

func escrowID(envelope ledger.ID) ledger.ID { return ledger.IDFrom("envelope/" + envelope.String()) }

func (s *State) createEnvelope(now int64, e *cmdlog.Envelope, c envelopeCmd) (any, *apperr.Error) {
	tx := s.tx()
	var old envelopeRecord
	if tx.GetJSON(envelopeKey(c.ID), &old) {
		return old.Envelope, nil
	}
	sp, err := s.withinLimits(e.Actor, c.Currency, c.Amount, e.At)
	if err != nil {
		return nil, err
	}
	s.ensureWallet(now, e.Actor, c.Currency)
	escrow := escrowID(c.ID)
	s.l.CreateAccounts(now, []ledger.Account{{ID: escrow, Currency: c.Currency, Code: CodeEnvelope, Flags: ledger.DebitsMustNotExceedCredits}})
	t := ledger.Transfer{ID: c.ID, DebitAccountID: WalletID(e.Actor, c.Currency), CreditAccountID: escrow, Amount: c.Amount, Currency: c.Currency}
	if st := s.l.CreateTransfers(now, []ledger.Transfer{t})[0]; st != ledger.OK {
		return nil, refusal(st)
	}
	s.book(sp)
	env := envelopeRecord{Envelope: Envelope{EnvelopeID: c.ID, ConversationID: c.Conv, Sender: e.Actor, Amount: c.Amount, Currency: c.Currency,
		Shares: c.Shares, Split: c.Split, Remaining: c.Amount, Claims: map[string]uint64{}, Status: "open",
		ExpiresAt: e.At.Add(EnvelopeLifetime)}, Eligible: c.Eligible}
	tx.SetJSON(envelopeKey(c.ID), env)
	o := openEnvelope{cursor: e.Cursor, id: c.ID, expires: env.ExpiresAt}
	s.open = append(s.open, o)
	tx.Set(openEnvelopeKey(o.cursor), o.encode())
	s.record(e.Actor, Entry{TransferID: c.ID, Kind: "envelope", Amount: c.Amount, Currency: c.Currency, ClientID: c.ClientID, At: e.At})
	return env.Envelope, nil
}

func (s *State) claim(now int64, e *cmdlog.Envelope, id ledger.ID) (any, *apperr.Error) {
	tx := s.tx()
	var env envelopeRecord
	if !tx.GetJSON(envelopeKey(id), &env) || !slices.Contains(env.Eligible, e.Actor) {
		return nil, apperr.New(apperr.NotFound, "no such envelope for you")
	}
	if _, ok := env.Claims[e.Actor]; ok {
		return nil, apperr.New(AlreadyClaimed, "you claimed this envelope already")
	}
	switch env.Status {
	case "returned":
		return nil, apperr.New(EnvelopeExpired, "the envelope expired; its money went back")
	case "emptied":
		return nil, apperr.New(EnvelopeEmpty, "every share was claimed")
	}
	left := env.Shares - len(env.Claims)
	share := env.Remaining / uint64(left)
	if env.Split == "random" && left > 1 {
		// Deterministic on every node: drawn from the envelope and the
		// claim's rank. Between 1 and twice the mean, leaving at least 1
		// for each share still to come.
		// The claim's own log position joins in, so no one can tell in
		// advance which rank draws the most.
		var pos [8]byte
		binary.BigEndian.PutUint64(pos[:], e.Cursor)
		h := sha256.Sum256(append(append(id[:], byte(len(env.Claims))), pos[:]...))
		limit := min(2*env.Remaining/uint64(left), env.Remaining-uint64(left-1))
		share = 1 + binary.BigEndian.Uint64(h[:8])%max(limit, 1)
	}
	if left == 1 {
		share = env.Remaining
	}
	s.ensureWallet(now, e.Actor, env.Currency)
	tid := ledger.IDFrom("claim/" + id.String() + "/" + e.Actor)
	t := ledger.Transfer{ID: tid, DebitAccountID: escrowID(id), CreditAccountID: WalletID(e.Actor, env.Currency), Amount: share, Currency: env.Currency}
	if st := s.l.CreateTransfers(now, []ledger.Transfer{t})[0]; st != ledger.OK {
		return nil, refusal(st)
	}
	env.Claims[e.Actor] = share
	env.Remaining -= share
	if len(env.Claims) == env.Shares {
		env.Status = "emptied"
		s.closeEnvelope(id)
	}
	tx.SetJSON(envelopeKey(id), env)
	s.record(e.Actor, Entry{TransferID: tid, Kind: "received", Amount: share, Currency: env.Currency, Counterparty: env.Sender, At: e.At})
	return env.Envelope, nil
}

// closeEnvelope takes an envelope off the open list.
func (s *State) closeEnvelope(id ledger.ID) {
	for i, o := range s.open {
		if o.id == id {
			s.tx().Delete(openEnvelopeKey(o.cursor))
			s.open = slices.Delete(s.open, i, i+1)
			return
		}
	}
}

// expireEnvelopes sends what is left of expired envelopes back.
func (s *State) expireEnvelopes(now int64, at time.Time) {
	keep := s.open[:0]
	for _, o := range s.open {
		if at.Before(o.expires) {
			keep = append(keep, o)
			continue
		}
		tx, id := s.tx(), o.id
		tx.Delete(openEnvelopeKey(o.cursor))
		var env envelopeRecord
		if !tx.GetJSON(envelopeKey(id), &env) || env.Status != "open" {
			continue // emptied ones leave the list when emptied
		}
		if env.Remaining > 0 {
			tid := ledger.IDFrom("return/" + id.String())
			s.l.CreateTransfers(now, []ledger.Transfer{{ID: tid, DebitAccountID: escrowID(id), CreditAccountID: WalletID(env.Sender, env.Currency), Amount: env.Remaining, Currency: env.Currency}})
			s.record(env.Sender, Entry{TransferID: tid, Kind: "returned", Amount: env.Remaining, Currency: env.Currency, At: at})
			env.Remaining = 0
		}
		env.Status = "returned"
		tx.SetJSON(envelopeKey(id), env)
	}
	s.open = keep
}

// EnvelopeOf returns an envelope to its sender or an eligible member.
func (s *State) EnvelopeOf(id ledger.ID, user string) (Envelope, bool) {
	var env envelopeRecord
	if !s.space.GetJSON(envelopeKey(id), &env) || (env.Sender != user && !slices.Contains(env.Eligible, user)) {
		return Envelope{}, false
	}
	return env.Envelope, true
}

// EnvelopeInput is a red envelope as a sender asks for it.
type EnvelopeInput struct {
	ID       string `json:"id"`
	Amount   uint64 `json:"amount"`
	Currency string `json:"currency"`
	Shares   int    `json:"shares"`
	Split    string `json:"split"`
	Text     string `json:"text,omitempty"`
}

// CreateEnvelope puts amount in an envelope for the members (eligible:
// the conversation's members but the sender).
func (s *Service) CreateEnvelope(ctx context.Context, user, conv string, eligible []string, in EnvelopeInput) (Envelope, cmdlog.Result, error) {
	mi := MoneyInput{ID: in.ID, Amount: in.Amount, Currency: in.Currency}
	if err := mi.check(); err != nil {
		return Envelope{}, cmdlog.Result{}, err
	}
	if in.Split == "" {
		in.Split = "equal"
	}
	switch {
	case in.Split != "equal" && in.Split != "random":
		return Envelope{}, cmdlog.Result{}, apperr.Field("split", "split is equal or random")
	case in.Shares < 1 || in.Shares > MaxEnvelopeShares:
		return Envelope{}, cmdlog.Result{}, apperr.Field("shares", "shares must be 1 to %d", MaxEnvelopeShares)
	case in.Shares > len(eligible):
		return Envelope{}, cmdlog.Result{}, apperr.Field("shares", "more shares than members who could claim them")
	case uint64(in.Shares) > in.Amount:
		return Envelope{}, cmdlog.Result{}, apperr.Field("amount", "every share needs at least 1")
	}
	c := envelopeCmd{ID: TransferID(user, "envelope/"+in.ID), ClientID: in.ID, Conv: conv, Amount: in.Amount,
		Currency: mi.Currency, Shares: in.Shares, Split: in.Split, Eligible: eligible}
	res, err := s.sub.Submit(ctx, write("envelope/"+user+"/"+in.ID, conv, in.Amount, mi.Currency, in.Shares, in.Split), kindEnvelope, user, c)
	if err != nil {
		return Envelope{}, res, err
	}
	var env Envelope
	err = json.Unmarshal(res.Value, &env)
	return env, res, err
}

// Claim takes the user's share of an envelope, once.
func (s *Service) Claim(ctx context.Context, user string, id ledger.ID) (Envelope, cmdlog.Result, error) {
	if _, ok := s.state.EnvelopeOf(id, user); !ok {
		return Envelope{}, cmdlog.Result{}, apperr.New(apperr.NotFound, "no such envelope for you")
	}
	res, err := s.sub.Submit(ctx, cmdlog.Write{ID: "claim/" + id.String() + "/" + user}, kindClaim, user, struct {
		ID ledger.ID `json:"id"`
	}{id})
	if err != nil {
		return Envelope{}, res, err
	}
	var env Envelope
	err = json.Unmarshal(res.Value, &env)
	return env, res, err
}
