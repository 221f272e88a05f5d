package httpapi

import (
	"context"
	"mime"
	"net/http"
	"strings"

	"superapp/internal/apperr"
	"superapp/internal/chat"
	"superapp/internal/cmdlog"
	"superapp/internal/ledger"
	"superapp/internal/pay"
)

type moneyCall func(ctx context.Context, user string, in pay.MoneyInput) (pay.Payment, cmdlog.Result, error)

func (s *Server) payRoutes() []route {
	p := s.cfg.Pay
	return []route{
		{method: "GET", pattern: "/v1/wallet", feature: "pay", auth: true, handle: func(c *call) error {
			return c.json(http.StatusOK, map[string]any{"balances": p.State().Balances(c.user.UserID)})
		}},
		{method: "POST", pattern: "/v1/wallet/topups", feature: "pay", auth: true, maxBody: smallBody, handle: func(c *call) error {
			return s.money(c, p.TopUp, false)
		}},
		{method: "POST", pattern: "/v1/wallet/transfers", feature: "pay", auth: true, maxBody: smallBody, handle: func(c *call) error {
			return s.money(c, p.Transfer, true)
		}},
		{method: "POST", pattern: "/v1/conversations/{id}/payments", feature: "pay", auth: true, maxBody: smallBody, handle: s.chatPayment},
		{method: "POST", pattern: "/v1/conversations/{id}/envelopes", feature: "pay", auth: true, maxBody: smallBody, handle: s.sendEnvelope},
		{method: "GET", pattern: "/v1/envelopes/{envelope_id}", feature: "pay", auth: true, handle: func(c *call) error {
			id, err := pathID(c, "envelope_id")
			if err != nil {
				return err
			}
			env, ok := p.State().EnvelopeOf(id, c.user.UserID)
			if !ok {
				return apperr.New(apperr.NotFound, "no such envelope for you")
			}
			return c.json(http.StatusOK, env)
		}},
		{method: "POST", pattern: "/v1/envelopes/{envelope_id}/claim", feature: "pay", auth: true, handle: func(c *call) error {
			id, err := pathID(c, "envelope_id")
			if err != nil {
				return err
			}
			// Only members of the conversation now may claim.
			if env, ok := p.State().EnvelopeOf(id, c.user.UserID); ok && !s.cfg.Chat.State().IsMember(env.ConversationID, c.user.UserID) {
				return apperr.New(apperr.NotFound, "no such envelope for you")
			}
			ctx, cancel := c.writeCtx()
			defer cancel()
			env, res, err := p.Claim(ctx, c.user.UserID, id)
			return s.paid(c, env, res, err, http.StatusOK)
		}},
		{method: "POST", pattern: "/v1/wallet/withdrawals", feature: "pay", auth: true, maxBody: smallBody, handle: func(c *call) error {
			var in pay.MoneyInput
			if err := c.decode(&in); err != nil {
				return err
			}
			if in.ToUser != "" {
				return apperr.Field("to_user", "a withdrawal goes to your own bank account")
			}
			ctx, cancel := c.writeCtx()
			defer cancel()
			w, res, err := p.Withdraw(ctx, c.user.UserID, in)
			return s.paid(c, w, res, err, http.StatusCreated)
		}},
		{method: "GET", pattern: "/v1/wallet/statement", feature: "pay", auth: true, handle: func(c *call) error {
			before, err := uintParam(c, "before", 0)
			if err != nil {
				return err
			}
			limit, err := limitParam(c, defaultPage, maxPage)
			if err != nil {
				return err
			}
			entries, next := p.State().Statement(c.user.UserID, c.r.URL.Query().Get("currency"), int(min(before, 1<<31)), limit)
			body := map[string]any{"entries": entries}
			if next > 0 {
				body["before"] = next
			}
			return c.json(http.StatusOK, body)
		}},
		{method: "POST", pattern: "/v1/wallet/holds", feature: "pay", auth: true, maxBody: smallBody, handle: func(c *call) error {
			var in pay.HoldInput
			if err := c.decode(&in); err != nil {
				return err
			}
			if in.Payee != "" {
				if _, ok := s.cfg.Identity.State().User(in.Payee); !ok {
					return &apperr.Error{Code: apperr.UserNotFound, Field: "payee", Message: "no such user"}
				}
				if s.cfg.Social.State().Blocked(c.user.UserID, in.Payee) {
					return &apperr.Error{Code: apperr.Blocked, Field: "payee", Message: "a block stands between you and this user"}
				}
			}
			ctx, cancel := c.writeCtx()
			defer cancel()
			h, res, err := p.PlaceHold(ctx, c.user.UserID, in)
			return s.paid(c, h, res, err, http.StatusCreated)
		}},
		{method: "GET", pattern: "/v1/wallet/holds/{hold_id}", feature: "pay", auth: true, handle: func(c *call) error {
			id, err := holdID(c)
			if err != nil {
				return err
			}
			h, ok := p.State().HoldOf(id, c.user.UserID)
			if !ok {
				return apperr.New(apperr.NotFound, "no such hold")
			}
			return c.json(http.StatusOK, h)
		}},
		{method: "POST", pattern: "/v1/wallet/holds/{hold_id}/capture", feature: "pay", auth: true, maxBody: smallBody, handle: func(c *call) error {
			id, err := holdID(c)
			if err != nil {
				return err
			}
			var in struct {
				Amount uint64 `json:"amount"`
			}
			if len(c.body) > 0 {
				if err := c.decode(&in); err != nil {
					return err
				}
			}
			ctx, cancel := c.writeCtx()
			defer cancel()
			h, res, err := p.Capture(ctx, c.user.UserID, id, in.Amount)
			return s.paid(c, h, res, err, http.StatusOK)
		}},
		{method: "POST", pattern: "/v1/wallet/holds/{hold_id}/release", feature: "pay", auth: true, handle: func(c *call) error {
			id, err := holdID(c)
			if err != nil {
				return err
			}
			ctx, cancel := c.writeCtx()
			defer cancel()
			h, res, err := p.Release(ctx, c.user.UserID, id)
			return s.paid(c, h, res, err, http.StatusOK)
		}},
		{method: "POST", pattern: "/v1/ledger/batches", feature: "ledger", maxBody: 4 << 20, handle: func(c *call) error {
			// The raw ledger is for operators and internal services: the ops
			// token is required, loopback is not enough.
			if !c.opsTokenPresented() {
				return apperr.New(apperr.Forbidden, "the batch API needs the ops token")
			}
			// application/octet-stream: ledger's binary form, 128-byte
			// records after TigerBeetle's; anything else is JSON.
			mt, _, err := mime.ParseMediaType(c.r.Header.Get("Content-Type"))
			binary := err == nil && mt == "application/octet-stream"
			var b pay.Batch
			if !binary {
				if err := c.decode(&b); err != nil {
					return err
				}
			}
			w, err := c.write()
			if err != nil {
				return err
			}
			ctx, cancel := c.writeCtx()
			defer cancel()
			var r pay.BatchResult
			var res cmdlog.Result
			if binary {
				r, res, err = p.ApplyBatchBinary(ctx, w, "ops", c.body)
			} else {
				r, res, err = p.ApplyBatch(ctx, w, "ops", b)
			}
			if err != nil {
				return err
			}
			return c.written(http.StatusOK, res, r)
		}},
	}
}

func holdID(c *call) (ledger.ID, error) { return pathID(c, "hold_id") }

func pathID(c *call, name string) (ledger.ID, error) {
	var id ledger.ID
	if err := id.UnmarshalText([]byte(c.r.PathValue(name))); err != nil {
		return id, apperr.New(apperr.NotFound, "no such %s", strings.TrimSuffix(name, "_id"))
	}
	return id, nil
}

// sendEnvelope puts money in a red envelope for the conversation's other
// members and shows it there as a card.
func (s *Server) sendEnvelope(c *call) error {
	var in pay.EnvelopeInput
	if err := c.decode(&in); err != nil {
		return err
	}
	conv := c.r.PathValue("id")
	if _, err := s.cfg.Chat.State().Conversation(conv, c.user.UserID); err != nil {
		return err
	}
	var eligible []string
	for _, u := range s.cfg.Chat.State().Members(conv) {
		if u != c.user.UserID {
			eligible = append(eligible, u)
		}
	}
	ctx, cancel := c.writeCtx()
	defer cancel()
	env, res, err := s.cfg.Pay.CreateEnvelope(ctx, c.user.UserID, conv, eligible, in)
	if err != nil {
		return s.paid(c, nil, res, err, 0)
	}
	if env.ConversationID != conv {
		return apperr.New(apperr.IdemReused, "this id was used for an envelope elsewhere")
	}
	m, mres, err := s.cfg.Chat.PostPayment(ctx, c.user.UserID, conv, "envelope/"+in.ID, in.Text,
		chat.PaymentCard{Type: "envelope", EnvelopeID: env.EnvelopeID.String(), Amount: env.Amount, Currency: env.Currency, Shares: env.Shares, Split: env.Split})
	if err != nil {
		return err
	}
	status := http.StatusCreated
	if res.Replayed && mres.Replayed {
		status = http.StatusOK
	}
	return c.json(status, map[string]any{"envelope": env, "message": m})
}

// paid answers a money write: its outcome, or the ledger's refusal as
// {"status":<code>,"error":{…}}.
func (s *Server) paid(c *call, v any, res cmdlog.Result, err error, status int) error {
	if e := apperr.From(err); err != nil && pay.IsLedgerCode(e.Code) {
		return c.json(apperr.Status(e.Code), map[string]any{"status": e.Code,
			"error": errorDetail{Code: e.Code, Message: e.Message, Field: e.Field, RequestID: c.reqID}})
	}
	if err != nil {
		return err
	}
	if res.Replayed {
		status = http.StatusOK
	}
	return c.written(status, res, v)
}

// money runs a payment: 201 {"status":"ok",…} (200 when the id was paid
// before), or the ledger's refusal as {"status":<code>,"error":{…}}.
func (s *Server) money(c *call, fn moneyCall, transfer bool) error {
	var in pay.MoneyInput
	if err := c.decode(&in); err != nil {
		return err
	}
	if transfer && in.ToUser != "" {
		if _, ok := s.cfg.Identity.State().User(in.ToUser); !ok {
			return &apperr.Error{Code: apperr.UserNotFound, Field: "to_user", Message: "no such user"}
		}
		if s.cfg.Social.State().Blocked(c.user.UserID, in.ToUser) {
			return &apperr.Error{Code: apperr.Blocked, Field: "to_user", Message: "a block stands between you and this user"}
		}
	}
	ctx, cancel := c.writeCtx()
	defer cancel()
	pm, res, err := fn(ctx, c.user.UserID, in)
	return s.paid(c, pm, res, err, http.StatusCreated)
}

// chatPayment sends money to a member of a conversation and shows it there
// as a card: the ledger first, then the card; both keyed by the client's
// id, so a retry after a failover completes what is missing, once.
func (s *Server) chatPayment(c *call) error {
	var in struct {
		pay.MoneyInput
		Text string `json:"text,omitempty"`
	}
	if err := c.decode(&in); err != nil {
		return err
	}
	conv := c.r.PathValue("id")
	to, err := s.cfg.Chat.PaymentPeer(conv, c.user.UserID, in.ToUser)
	if err != nil {
		return err
	}
	if s.cfg.Social.State().Blocked(c.user.UserID, to) {
		return &apperr.Error{Code: apperr.Blocked, Field: "to_user", Message: "a block stands between you and this user"}
	}
	in.ToUser = to
	ctx, cancel := c.writeCtx()
	defer cancel()
	pm, res, err := s.cfg.Pay.Transfer(ctx, c.user.UserID, in.MoneyInput)
	if err != nil {
		return s.paid(c, nil, res, err, 0)
	}
	if pm.To != to || pm.Amount != in.Amount {
		// The id was used for another payment: never show a card for it.
		return apperr.New(apperr.IdemReused, "this id was used for another payment")
	}
	m, mres, err := s.cfg.Chat.PostPayment(ctx, c.user.UserID, conv, "transfer/"+in.ID, in.Text,
		chat.PaymentCard{Type: "transfer", TransferID: pm.TransferID.String(), To: to, Amount: pm.Amount, Currency: pm.Currency})
	if err != nil {
		return err
	}
	status := http.StatusCreated
	if res.Replayed && mres.Replayed {
		status = http.StatusOK
	}
	ps := cmdlog.Positions{}
	ps.Add(res.Position)
	ps.Add(mres.Position)
	c.w.Header().Set(HeaderPosition, ps.String())
	return c.json(status, map[string]any{"status": pm.Status, "payment": pm, "message": m})
}
