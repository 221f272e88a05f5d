package pay

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"superapp/internal/apperr"
	"superapp/internal/cmdlog"
	"superapp/internal/ledger"
	"superapp/internal/store"
)

// Merchants take payments at the counter two ways: the customer scans the
// merchant's QR (static: the customer types the amount; dynamic: the
// amount is in it, single use), or the merchant's point of sale scans the
// customer's one-time payment code (60 s, single use, bound to the
// customer's session, up to a limit). Merchants refund in full or in part.

// CodeMerchant is the ledger code of a merchant's account.
const CodeMerchant uint16 = 4

// Payment code rules.
const (
	PaymentCodeTTL   = 60 * time.Second
	PaymentCodeLimit = 500_000 // most one code may be charged
)

// Merchant error codes.
const (
	NotMerchant   = "not_merchant"
	CodeInvalid   = "payment_code_invalid"
	QRInvalid     = "qr_invalid"
	RefundTooMuch = "refund_exceeds_payment"
)

func init() {
	apperr.Register(NotMerchant, http.StatusForbidden)
	apperr.Register(CodeInvalid, http.StatusUnprocessableEntity)
	apperr.Register(QRInvalid, http.StatusUnprocessableEntity)
	apperr.Register(RefundTooMuch, http.StatusUnprocessableEntity)
}

// MerchantAccountID is a merchant's account in a currency.
func MerchantAccountID(merchant, currency string) ledger.ID {
	return ledger.IDFrom("merchant/" + merchant + "/" + currency)
}

// Merchant is a registered merchant (a user who sells).
type Merchant struct {
	MerchantID string    `json:"merchant_id"`
	Name       string    `json:"name"`
	Since      time.Time `json:"since"`
}

type qrCode struct {
	Merchant string
	Amount   uint64
	Currency string
	Used     bool
}

type payCode struct {
	User    string
	Session string
	Expires time.Time
	Used    bool
}

// Sale is a merchant's payment from a customer.
type Sale struct {
	PaymentID ledger.ID `json:"payment_id"`
	Merchant  string    `json:"merchant_id"`
	Customer  string    `json:"customer"`
	Amount    uint64    `json:"amount"`
	Currency  string    `json:"currency"`
	Refunded  uint64    `json:"refunded"`
	At        time.Time `json:"at"`
}

const (
	kindMerchant = "merchant.register"
	kindQR       = "merchant.qr"
	kindCode     = "code.issue"
	kindSale     = "merchant.sale"
	kindRefund   = "merchant.refund"
)

type saleCmd struct {
	ID       ledger.ID `json:"id"`
	ClientID string    `json:"client_id"`
	Merchant string    `json:"merchant"`
	Customer string    `json:"customer"`
	Amount   uint64    `json:"amount"`
	Currency string    `json:"currency"`
	QR       string    `json:"qr,omitempty"`        // dynamic QR id
	CodeHash string    `json:"code_hash,omitempty"` // payment code, hashed
	Session  string    `json:"session,omitempty"`   // the code holder's live session, as the node saw it
	Payment  ledger.ID `json:"payment_id,omitempty"`
}

func (s *State) applyMerchant(now int64, e *cmdlog.Envelope) (any, *apperr.Error) {
	switch e.Kind {
	case kindMerchant:
		var m Merchant
		if err := json.Unmarshal(e.Data, &m); err != nil {
			return nil, apperr.New(apperr.Malformed, "bad command")
		}
		tx := s.tx()
		var old Merchant
		if tx.GetJSON(merchantKey(e.Actor), &old) {
			return old, nil
		}
		m.MerchantID, m.Since = e.Actor, e.At
		tx.SetJSON(merchantKey(e.Actor), m)
		return m, nil
	case kindQR:
		var c struct {
			ID       string `json:"id"`
			Amount   uint64 `json:"amount"`
			Currency string `json:"currency"`
		}
		if err := json.Unmarshal(e.Data, &c); err != nil {
			return nil, apperr.New(apperr.Malformed, "bad command")
		}
		tx := s.tx()
		if !tx.Has(merchantKey(e.Actor)) {
			return nil, apperr.New(NotMerchant, "register as a merchant first")
		}
		tx.SetJSON(qrKey(c.ID), qrCode{Merchant: e.Actor, Amount: c.Amount, Currency: c.Currency})
		return map[string]string{"qr": qrPayload(e.Actor, c.ID)}, nil
	case kindCode:
		var c struct {
			Hash    string `json:"hash"`
			Session string `json:"session"`
		}
		if err := json.Unmarshal(e.Data, &c); err != nil {
			return nil, apperr.New(apperr.Malformed, "bad command")
		}
		s.forgetCodes(e.At)
		exp := e.At.Add(PaymentCodeTTL)
		tx := s.tx()
		tx.SetJSON(codeKey(c.Hash), payCode{User: e.Actor, Session: c.Session, Expires: exp})
		tx.Set(codeOrderKey(e.Cursor), []byte(c.Hash))
		return map[string]time.Time{"expires_at": exp}, nil
	case kindSale:
		var c saleCmd
		if err := json.Unmarshal(e.Data, &c); err != nil {
			return nil, apperr.New(apperr.Malformed, "bad command")
		}
		return s.sale(now, e, c)
	case kindRefund:
		var c saleCmd
		if err := json.Unmarshal(e.Data, &c); err != nil {
			return nil, apperr.New(apperr.Malformed, "bad command")
		}
		return s.refund(now, e, c)
	}
	return nil, apperr.New(apperr.Invalid, "unknown command %q", e.Kind)
}

func (s *State) sale(now int64, e *cmdlog.Envelope, c saleCmd) (any, *apperr.Error) {
	tx := s.tx()
	if !tx.Has(merchantKey(c.Merchant)) {
		return nil, &apperr.Error{Code: QRInvalid, Field: "qr", Message: "no such merchant"}
	}
	var used func()
	switch {
	case c.QR != "":
		var q qrCode
		if !tx.GetJSON(qrKey(c.QR), &q) || q.Merchant != c.Merchant || q.Used {
			return nil, &apperr.Error{Code: QRInvalid, Field: "qr", Message: "this QR is not valid (or was paid already)"}
		}
		c.Amount, c.Currency = q.Amount, q.Currency
		used = func() {
			q.Used = true
			tx.SetJSON(qrKey(c.QR), q)
		}
	case c.CodeHash != "":
		var pc payCode
		found := tx.GetJSON(codeKey(c.CodeHash), &pc)
		switch {
		case !found || pc.Used || !e.At.Before(pc.Expires) || pc.Session != c.Session:
			return nil, &apperr.Error{Code: CodeInvalid, Field: "code", Message: "the payment code is not valid: expired, used or unknown"}
		case c.Amount > PaymentCodeLimit:
			return nil, &apperr.Error{Code: LimitExceeded, Field: "amount", Message: fmt.Sprintf("a payment code pays at most %d", PaymentCodeLimit)}
		}
		c.Customer = pc.User
		used = func() {
			pc.Used = true
			tx.SetJSON(codeKey(c.CodeHash), pc)
		}
	}
	sp, err := s.withinLimits(c.Customer, c.Currency, c.Amount, e.At)
	if err != nil {
		return nil, err
	}
	s.ensureWallet(now, c.Customer, c.Currency)
	macct := MerchantAccountID(c.Merchant, c.Currency)
	s.l.CreateAccounts(now, []ledger.Account{{ID: macct, Currency: c.Currency, Code: CodeMerchant, Flags: ledger.DebitsMustNotExceedCredits}})
	t := ledger.Transfer{ID: c.ID, DebitAccountID: WalletID(c.Customer, c.Currency), CreditAccountID: macct, Amount: c.Amount, Currency: c.Currency}
	if st := s.l.CreateTransfers(now, []ledger.Transfer{t})[0]; st != ledger.OK {
		return nil, refusal(st)
	}
	if used != nil {
		used()
	}
	s.book(sp)
	sale := Sale{PaymentID: c.ID, Merchant: c.Merchant, Customer: c.Customer, Amount: c.Amount, Currency: c.Currency, At: e.At}
	tx.SetJSON(saleKey(c.ID), sale)
	s.appendLine(merchantLogPrefix(c.Merchant), Entry{TransferID: c.ID, Kind: "sale", Amount: c.Amount, Currency: c.Currency, Counterparty: c.Customer, ClientID: c.ClientID, At: e.At})
	s.record(c.Customer, Entry{TransferID: c.ID, Kind: "sent", Amount: c.Amount, Currency: c.Currency, Counterparty: c.Merchant, At: e.At})
	return sale, nil
}

// forgetCodes forgets the payment codes that expired an hour before at or
// more, oldest first, as far as the first one that did not.
func (s *State) forgetCodes(at time.Time) {
	tx := s.tx()
	for {
		type issued struct {
			cursor uint64
			hash   string
		}
		var next []issued
		tx.Scan(codeOrderPrefix, codeOrderKey(s.codeHead), false, func(k string, v []byte) bool {
			next = append(next, issued{store.ParseSeq(k[len(codeOrderPrefix):]), string(v)})
			return len(next) < 64
		})
		for _, c := range next {
			var pc payCode
			if tx.GetJSON(codeKey(c.hash), &pc) && at.Sub(pc.Expires) < time.Hour {
				s.codeHead = c.cursor
				return
			}
			tx.Delete(codeKey(c.hash))
			tx.Delete(codeOrderKey(c.cursor))
			s.codeHead = c.cursor + 1
		}
		if len(next) < 64 {
			return
		}
	}
}

func (s *State) refund(now int64, e *cmdlog.Envelope, c saleCmd) (any, *apperr.Error) {
	tx := s.tx()
	var sale Sale
	if !tx.GetJSON(saleKey(c.Payment), &sale) || sale.Merchant != e.Actor {
		return nil, apperr.New(apperr.NotFound, "no such payment of yours")
	}
	amount := c.Amount
	if amount == 0 {
		amount = sale.Amount - sale.Refunded
	}
	if amount == 0 || amount > sale.Amount-sale.Refunded {
		return nil, &apperr.Error{Code: RefundTooMuch, Field: "amount", Message: fmt.Sprintf("at most %d is left to refund", sale.Amount-sale.Refunded)}
	}
	t := ledger.Transfer{ID: c.ID, DebitAccountID: MerchantAccountID(sale.Merchant, sale.Currency), CreditAccountID: WalletID(sale.Customer, sale.Currency), Amount: amount, Currency: sale.Currency}
	if st := s.l.CreateTransfers(now, []ledger.Transfer{t})[0]; st != ledger.OK {
		return nil, refusal(st)
	}
	sale.Refunded += amount
	tx.SetJSON(saleKey(c.Payment), sale)
	s.appendLine(merchantLogPrefix(sale.Merchant), Entry{TransferID: c.ID, Kind: "refund", Amount: amount, Currency: sale.Currency, Counterparty: sale.Customer, At: e.At})
	s.record(sale.Customer, Entry{TransferID: c.ID, Kind: "refund", Amount: amount, Currency: sale.Currency, Counterparty: sale.Merchant, At: e.At})
	return sale, nil
}

func qrPayload(merchant, id string) string {
	v := url.Values{"m": {merchant}}
	if id != "" {
		v.Set("q", id)
	}
	return "superapp:pay?" + v.Encode()
}

func parseQR(payload string) (merchant, id string, ok bool) {
	rest, found := strings.CutPrefix(payload, "superapp:pay?")
	if !found {
		return "", "", false
	}
	v, err := url.ParseQuery(rest)
	if err != nil || v.Get("m") == "" {
		return "", "", false
	}
	return v.Get("m"), v.Get("q"), true
}

func hashCode(code string) string {
	h := sha256.Sum256([]byte("payment-code/" + code))
	return hex.EncodeToString(h[:])
}

// MerchantOf returns a merchant.
func (s *State) MerchantOf(user string) (Merchant, bool) {
	var m Merchant
	if !s.space.GetJSON(merchantKey(user), &m) {
		return Merchant{}, false
	}
	return m, true
}

// MerchantStatement returns a merchant's sales and refunds, newest first.
func (s *State) MerchantStatement(merchant string, limit int) []Entry {
	out := []Entry{}
	if limit <= 0 {
		return out
	}
	s.space.Scan(merchantLogPrefix(merchant), "", true, func(k string, v []byte) bool {
		var e Entry
		decode(k, v, &e)
		out = append(out, e)
		return len(out) < limit
	})
	return out
}

// paymentCode returns a payment code by its hash, as committed.
func (s *State) paymentCode(hash string) (payCode, bool) {
	var pc payCode
	ok := s.space.GetJSON(codeKey(hash), &pc)
	return pc, ok
}

func (s *Service) submitAs(ctx context.Context, w cmdlog.Write, kind, actor string, cmd, out any) (cmdlog.Result, error) {
	res, err := s.sub.Submit(ctx, w, kind, actor, cmd)
	if err != nil {
		return res, err
	}
	return res, json.Unmarshal(res.Value, out)
}

// RegisterMerchant makes the user a merchant.
func (s *Service) RegisterMerchant(ctx context.Context, user, name string) (Merchant, cmdlog.Result, error) {
	name = strings.TrimSpace(name)
	if name == "" || utf8.RuneCountInString(name) > 100 {
		return Merchant{}, cmdlog.Result{}, apperr.Field("name", "name must be 1 to 100 characters")
	}
	var m Merchant
	res, err := s.submitAs(ctx, cmdlog.Write{ID: "merchant/" + user}, kindMerchant, user, Merchant{Name: name}, &m)
	return m, res, err
}

// StaticQR is the merchant's fixed QR: customers type the amount.
func (s *Service) StaticQR(user string) (string, error) {
	if _, ok := s.state.MerchantOf(user); !ok {
		return "", apperr.New(NotMerchant, "register as a merchant first")
	}
	return qrPayload(user, ""), nil
}

// DynamicQR makes a single-use QR for an amount.
func (s *Service) DynamicQR(ctx context.Context, user string, amount uint64, currency string) (string, cmdlog.Result, error) {
	mi := MoneyInput{ID: "qr", Amount: amount, Currency: currency}
	if err := mi.check(); err != nil {
		return "", cmdlog.Result{}, err
	}
	var out struct {
		QR string `json:"qr"`
	}
	id := randomToken(16)
	res, err := s.submitAs(ctx, cmdlog.Write{}, kindQR, user, map[string]any{"id": id, "amount": amount, "currency": mi.Currency}, &out)
	return out.QR, res, err
}

// PayQR pays a merchant's QR; amount is needed for a static QR only.
func (s *Service) PayQR(ctx context.Context, user, id, qr string, amount uint64, currency string) (Sale, cmdlog.Result, error) {
	merchant, qid, ok := parseQR(qr)
	if !ok {
		return Sale{}, cmdlog.Result{}, &apperr.Error{Code: QRInvalid, Field: "qr", Message: "not a superapp payment QR"}
	}
	if merchant == user {
		return Sale{}, cmdlog.Result{}, &apperr.Error{Code: QRInvalid, Field: "qr", Message: "that is your own QR"}
	}
	if qid == "" {
		mi := MoneyInput{ID: id, Amount: amount, Currency: currency}
		if err := mi.check(); err != nil {
			return Sale{}, cmdlog.Result{}, err
		}
		currency = mi.Currency
	} else if !clientIDRE.MatchString(id) {
		return Sale{}, cmdlog.Result{}, apperr.Field("id", "id must be 1-64 characters of letters, digits and . _ : -")
	}
	c := saleCmd{ID: TransferID(user, "qr/"+id), ClientID: id, Merchant: merchant, Customer: user, Amount: amount, Currency: currency, QR: qid}
	var sale Sale
	res, err := s.submitAs(ctx, write("sale/"+user+"/"+id, qr, amount, currency), kindSale, user, c, &sale)
	return sale, res, err
}

// IssueCode gives the user a one-time payment code for their session.
func (s *Service) IssueCode(ctx context.Context, user, session string) (string, time.Time, cmdlog.Result, error) {
	code := randomDigits(18)
	var out struct {
		ExpiresAt time.Time `json:"expires_at"`
	}
	res, err := s.submitAs(ctx, cmdlog.Write{}, kindCode, user, map[string]any{"hash": hashCode(code), "session": session}, &out)
	return code, out.ExpiresAt, res, err
}

// Charge is a merchant's point of sale charging a customer's payment code.
// live tells whether a user's session is live (identity's view).
func (s *Service) Charge(ctx context.Context, merchant, id, code string, amount uint64, currency string, live func(user, session string) bool) (Sale, cmdlog.Result, error) {
	if _, ok := s.state.MerchantOf(merchant); !ok {
		return Sale{}, cmdlog.Result{}, apperr.New(NotMerchant, "register as a merchant first")
	}
	mi := MoneyInput{ID: id, Amount: amount, Currency: currency}
	if err := mi.check(); err != nil {
		return Sale{}, cmdlog.Result{}, err
	}
	h := hashCode(code)
	// The code may have been issued a moment ago through another DC.
	pc, found := cmdlog.Soon(ctx, func() (payCode, bool) { return s.state.paymentCode(h) })
	holder, session := pc.User, pc.Session
	// A code from a session since revoked (a lost phone) is worthless.
	if !found || !live(holder, session) {
		session = "revoked"
	}
	c := saleCmd{ID: TransferID(merchant, "charge/"+id), ClientID: id, Merchant: merchant, Amount: amount, Currency: mi.Currency, CodeHash: h, Session: session}
	var sale Sale
	res, err := s.submitAs(ctx, write("charge/"+merchant+"/"+id, h, amount, mi.Currency), kindSale, merchant, c, &sale)
	return sale, res, err
}

// Refund gives a sale's money back, all (amount 0) or part.
func (s *Service) Refund(ctx context.Context, merchant, id string, payment ledger.ID, amount uint64) (Sale, cmdlog.Result, error) {
	if !clientIDRE.MatchString(id) {
		return Sale{}, cmdlog.Result{}, apperr.Field("id", "id must be 1-64 characters of letters, digits and . _ : -")
	}
	c := saleCmd{ID: TransferID(merchant, "refund/"+id), ClientID: id, Payment: payment, Amount: amount}
	var sale Sale
	res, err := s.submitAs(ctx, write("refund/"+merchant+"/"+id, payment, amount), kindRefund, merchant, c, &sale)
	return sale, res, err
}

func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func randomDigits(n int) string {
	var b strings.Builder
	for range n {
		d, _ := rand.Int(rand.Reader, big.NewInt(10))
		b.WriteByte(byte('0' + d.Int64()))
	}
	return b.String()
}

// SaleOf returns a sale by its payment id.
func (s *State) SaleOf(id ledger.ID) (Sale, bool) {
	var sale Sale
	if !s.space.GetJSON(saleKey(id), &sale) {
		return Sale{}, false
	}
	return sale, true
}
