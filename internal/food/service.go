package food

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"time"

	"superapp/internal/apperr"
	"superapp/internal/cmdlog"
	"superapp/internal/ledger"
	"superapp/internal/pay"
	"superapp/internal/store"
)

// Config configures a Service.
type Config struct {
	Log cmdlog.Appender
	// Store keeps the read model (the node's state store).
	Store *store.DB
	// Pay holds, splits and releases the users' money.
	Pay *pay.Service
	// DC is this node's data center: the home of the orders it takes.
	DC string
	// Secret keys the ids of the orders' holds (the cluster secret).
	Secret []byte
	Now    func() time.Time
	Logger *slog.Logger
	// TakeoverAfter is how long an order whose home is another DC may wait
	// for its money step before this node takes it (10s).
	TakeoverAfter time.Duration
	// ScanInterval is how often the settlement looks for due orders (1s).
	ScanInterval time.Duration
}

// Service is food delivery's use cases and the settlement of its orders.
type Service struct {
	cfg     Config
	log     *slog.Logger
	state   *State
	machine *cmdlog.Machine
	sub     *cmdlog.Submitter
	pay     *pay.Service
	settle  *settler

	mu        sync.RWMutex
	listeners []func([]Push)

	stop context.CancelFunc
	wg   sync.WaitGroup
}

// New returns a service; the node must feed Machine() the FOOD stream and
// call Start.
func New(cfg Config) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.TakeoverAfter == 0 {
		cfg.TakeoverAfter = 10 * time.Second
	}
	if cfg.ScanInterval == 0 {
		cfg.ScanInterval = time.Second
	}
	space := cfg.Store.Space(Stream)
	st := NewState(space)
	m := cmdlog.NewMachine(Stream, space, st.Apply, cfg.Logger)
	s := &Service{cfg: cfg, log: cfg.Logger.With("feature", "food"), state: st, machine: m, pay: cfg.Pay,
		sub: &cmdlog.Submitter{Log: cfg.Log, Machine: m, Subject: "food", Now: cfg.Now}}
	s.settle = newSettler(s)
	st.Observe(s.observe)
	m.SetLoader(s.load)
	return s
}

// resumeWindow is how long before the last order ended an ended order is
// still handed to the settlement after a restart. Settling takes seconds
// while the ledger is up; the window covers a cluster that stopped right
// after orders ended, without holding days of order ids in memory.
const resumeWindow = time.Hour

// load hands the settlement, when the node restores the machine, the
// orders whose money may still have to move: no replayed change tells it
// of them any more. Nothing else of food is held in memory.
func (s *Service) load() {
	for _, id := range s.state.unsettled(resumeWindow) {
		s.settle.Track(id, s.cfg.ScanInterval)
	}
}

// Machine is the state machine of the FOOD stream.
func (s *Service) Machine() *cmdlog.Machine { return s.machine }

// State is the food read model.
func (s *Service) State() *State { return s.state }

// Notify adds a function told of the frames for users' devices; it must
// not block.
func (s *Service) Notify(fn func([]Push)) {
	s.mu.Lock()
	s.listeners = append(s.listeners, fn)
	s.mu.Unlock()
}

func (s *Service) observe(ps []Push, cs []Change) {
	s.mu.RLock()
	ls := s.listeners
	s.mu.RUnlock()
	for _, fn := range ls {
		fn(ps)
	}
	for _, c := range cs {
		switch c.Kind {
		case kindPlace, kindReject, kindCancel, kindDeliver:
			s.settle.Track(c.OrderID, s.cfg.ScanInterval)
		}
	}
}

// Start runs the settlement until ctx ends or Close.
func (s *Service) Start(ctx context.Context) error {
	ctx, s.stop = context.WithCancel(ctx)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.settle.Run(ctx)
	}()
	return nil
}

// Close stops the settlement and the writers; call it before the engine
// closes.
func (s *Service) Close() {
	if s.stop != nil {
		s.stop()
	}
	s.wg.Wait()
	s.sub.Close()
}

func (s *Service) caughtUp() bool {
	ok, _ := s.machine.CaughtUp()
	if ok && s.pay != nil {
		ok, _ = s.pay.Machine().CaughtUp()
	}
	return ok
}

var clientIDRE = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)

func checkID(field, id string) error {
	if !clientIDRE.MatchString(id) {
		return apperr.Field(field, "%s must be 1-64 characters of letters, digits and . _ : -", field)
	}
	return nil
}

func fingerprint(v ...any) string {
	b, _ := json.Marshal(v)
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:16])
}

// Written says where a write landed: positions to read it elsewhere, and
// whether it had been applied before.
type Written struct {
	Positions cmdlog.Positions
	Replayed  bool
}

func (w *Written) add(res cmdlog.Result) {
	if w.Positions == nil {
		w.Positions = cmdlog.Positions{}
	}
	w.Positions.Add(res.Position)
	w.Replayed = w.Replayed || res.Replayed
}

func (s *Service) submit(ctx context.Context, w cmdlog.Write, kind, actor string, cmd, out any) (Written, error) {
	var wr Written
	res, err := s.sub.Submit(ctx, w, kind, actor, cmd)
	if err != nil {
		return wr, err
	}
	wr.add(res)
	if out != nil {
		if err := json.Unmarshal(res.Value, out); err != nil {
			return wr, fmt.Errorf("decode %s outcome: %w", kind, err)
		}
	}
	return wr, nil
}

// StoreInput is a store as a merchant creates it.
type StoreInput struct {
	ID          string  `json:"id"`
	Name        string  `json:"name"`
	Hours       []Hours `json:"hours"`
	DeliveryFee uint64  `json:"delivery_fee"`
}

// CreateStore opens a store for a registered merchant; the client id makes
// it idempotent. Errors: invalid_field, not_merchant.
func (s *Service) CreateStore(ctx context.Context, merchant string, in StoreInput) (StoreView, Written, error) {
	if err := checkID("id", in.ID); err != nil {
		return StoreView{}, Written{}, err
	}
	name, aerr := validName("name", in.Name, 100)
	if aerr != nil {
		return StoreView{}, Written{}, aerr
	}
	if len(in.Hours) == 0 || len(in.Hours) > 28 {
		return StoreView{}, Written{}, apperr.Field("hours", "hours lists 1 to 28 opening periods")
	}
	for i, h := range in.Hours {
		if err := h.check(i); err != nil {
			return StoreView{}, Written{}, err
		}
	}
	if in.DeliveryFee > MaxDeliveryFee {
		return StoreView{}, Written{}, apperr.Field("delivery_fee", "delivery_fee is at most %d", MaxDeliveryFee)
	}
	if _, ok := s.pay.State().MerchantOf(merchant); !ok {
		return StoreView{}, Written{}, apperr.New(pay.NotMerchant, "register as a merchant first")
	}
	var v StoreView
	c := storeCmd{StoreID: StoreID(merchant, in.ID), Name: name, Hours: in.Hours, DeliveryFee: in.DeliveryFee}
	w, err := s.submit(ctx, cmdlog.Write{ID: "store/" + c.StoreID, Hash: fingerprint(c)}, kindStore, merchant, c, &v)
	if err != nil {
		return StoreView{}, w, err
	}
	v, _ = s.state.Store(c.StoreID, s.cfg.Now())
	return v, w, nil
}

// ItemInput is an item as a merchant puts it in the catalogue; a missing
// stock means unlimited.
type ItemInput struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Price uint64 `json:"price"`
	Stock *int64 `json:"stock"`
}

// PutItem adds an item to the merchant's store or replaces it (price,
// stock). Errors: invalid_field, not_found, forbidden (not your store).
func (s *Service) PutItem(ctx context.Context, w cmdlog.Write, merchant, storeID string, in ItemInput) (Item, Written, error) {
	if err := checkID("id", in.ID); err != nil {
		return Item{}, Written{}, err
	}
	name, aerr := validName("name", in.Name, 100)
	if aerr != nil {
		return Item{}, Written{}, aerr
	}
	switch {
	case in.Price == 0 || in.Price > MaxPrice:
		return Item{}, Written{}, apperr.Field("price", "price is 1 to %d won", MaxPrice)
	case in.Stock != nil && (*in.Stock < 0 || *in.Stock > 1_000_000):
		return Item{}, Written{}, apperr.Field("stock", "stock is 0 to 1000000, or absent for unlimited")
	}
	var it Item
	wr, err := s.submit(ctx, w, kindItem, merchant, itemCmd{StoreID: storeID, Item: Item{ID: in.ID, Name: name, Price: in.Price, Stock: in.Stock}}, &it)
	return it, wr, err
}

// CartInput sets how many of an item the cart holds (0 removes it).
type CartInput struct {
	ItemID   string `json:"item_id"`
	Quantity *int64 `json:"quantity"`
}

// SetCart changes the user's cart at a store. Errors: invalid_field,
// not_found.
func (s *Service) SetCart(ctx context.Context, w cmdlog.Write, user, storeID string, in CartInput) (Cart, Written, error) {
	if in.ItemID == "" {
		return Cart{}, Written{}, apperr.Field("item_id", "item_id is required")
	}
	if in.Quantity == nil {
		return Cart{}, Written{}, apperr.Field("quantity", "quantity is required")
	}
	var c Cart
	wr, err := s.submit(ctx, w, kindCart, user, cartCmd{StoreID: storeID, ItemID: in.ItemID, Quantity: *in.Quantity}, &c)
	return c, wr, err
}

// CheckoutInput is a checkout of the user's cart at a store.
type CheckoutInput struct {
	ID      string `json:"id"`
	StoreID string `json:"store_id"`
	Address string `json:"address"`
}

// holdClient is the client id of an order's hold, keyed with the cluster's
// secret: a customer who could work it out could place a hold of their own
// under it beforehand, to an accomplice, and have the order delivered
// unpaid.
func (s *Service) holdClient(orderID string) string {
	return pay.ServiceHoldID(s.cfg.Secret, "food-", "food-hold/"+orderID)
}

// Checkout orders what the user's cart holds: the order takes its stock
// (all or nothing), and the total with the delivery fee is held on the
// user's wallet for the order until it is delivered (captured) or
// cancelled (released). The client id makes it idempotent. Errors:
// invalid_field, not_found, cart_empty, store_closed, out_of_stock,
// price_changed, idempotency_key_reused, the ledger's refusals
// (exceeds_credits: not enough money; limit_exceeded), unavailable.
func (s *Service) Checkout(ctx context.Context, user string, in CheckoutInput) (View, Written, error) {
	var out Written
	if err := checkID("id", in.ID); err != nil {
		return View{}, out, err
	}
	if in.StoreID == "" {
		return View{}, out, apperr.Field("store_id", "store_id is required")
	}
	addr, aerr := validName("address", in.Address, 200)
	if aerr != nil {
		return View{}, out, aerr
	}
	id := OrderID(user, in.ID)
	if o, ok := s.state.Order(id); ok {
		if o.StoreID != in.StoreID || o.Address != addr {
			return View{}, out, apperr.New(apperr.IdemReused, "this id was used for another order")
		}
		out.Replayed = true
		if !o.Ended() {
			if _, ok := s.pay.State().HoldOf(o.HoldID, user); !ok {
				if err := s.placeHold(ctx, o, &out); err != nil {
					return View{}, out, err
				}
			}
		}
		return s.view(id, user), out, nil
	}
	cart, ok := s.state.CartOf(user, in.StoreID)
	if !ok {
		return View{}, out, apperr.New(apperr.NotFound, "no such store")
	}
	if len(cart.Lines) == 0 {
		return View{}, out, &apperr.Error{Code: CartEmpty, Message: "the cart is empty"}
	}
	if err := s.affords(user, cart.Total); err != nil {
		return View{}, out, err
	}
	c := placeCmd{OrderID: id, StoreID: in.StoreID, Address: addr, Lines: cart.Lines, FoodTotal: cart.FoodTotal, DeliveryFee: cart.DeliveryFee,
		HoldID: pay.TransferID(user, "hold/"+s.holdClient(id)), DC: s.cfg.DC}
	var o Order
	w, err := s.submit(ctx, cmdlog.Write{ID: "order/" + id, Hash: fingerprint(in.StoreID, addr)}, kindPlace, user, c, &o)
	out.Positions = w.Positions
	if err != nil {
		return View{}, out, err
	}
	if err := s.placeHold(ctx, &o, &out); err != nil {
		return View{}, out, err
	}
	return s.view(id, user), out, nil
}

// placeHold holds an order's total; if the ledger refuses, the order is
// cancelled (its stock goes back) and the refusal returned.
func (s *Service) placeHold(ctx context.Context, o *Order, out *Written) error {
	in := pay.HoldInput{ID: s.holdClient(o.ID), Payee: EscrowUser, Amount: o.Total, Currency: o.Currency, ExpiresIn: pay.MaxHold}
	_, res, err := s.pay.PlaceHold(ctx, o.User, in)
	if err == nil {
		out.add(res)
		return nil
	}
	if !pay.IsLedgerCode(apperr.From(err).Code) {
		return err
	}
	if w, cerr := s.submit(ctx, cmdlog.Write{ID: "cancel/" + o.ID + "/system"}, kindCancel, "", orderCmd{OrderID: o.ID, System: true, Reason: "payment_failed"}, nil); cerr != nil {
		s.log.Warn("cancel an order whose hold was refused", "order", o.ID, "err", cerr)
	} else {
		for k, v := range w.Positions {
			out.add(cmdlog.Result{Position: cmdlog.Position{Stream: k, Seq: v}})
		}
	}
	return err
}

// affords checks, from this node's ledger, that the user can pay total.
func (s *Service) affords(user string, total uint64) error {
	if total > pay.PerTransferLimit {
		return &apperr.Error{Code: pay.LimitExceeded, Field: "store_id", Message: fmt.Sprintf("this order holds %d won, more than %d", total, pay.PerTransferLimit)}
	}
	for _, b := range s.pay.State().Balances(user) {
		if b.Currency == Currency && b.Available >= total {
			return nil
		}
	}
	return &apperr.Error{Code: ledger.ExceedsCredits, Message: fmt.Sprintf("this order holds %d won: not enough money in the wallet", total)}
}

// view is an order as user sees it, with its payment for the user and the
// merchant.
func (s *Service) view(id, user string) View {
	o, ok := s.state.OrderFor(id, user)
	if !ok {
		return View{}
	}
	v := View{Order: *o}
	if user == o.Courier && user != o.User && user != o.Merchant {
		v.HoldID = ledger.ID{}
		return v
	}
	p := &Payment{HoldID: o.HoldID.String(), Status: "missing"}
	if h, ok := s.pay.State().HoldOf(o.HoldID, o.User); ok {
		p.Status, p.Captured = h.Status, h.Captured
	}
	v.Payment = p
	return v
}

// Order returns an order to its user, merchant or courier. Errors:
// not_found.
func (s *Service) Order(id, user string) (View, error) {
	if _, ok := s.state.OrderFor(id, user); !ok {
		return View{}, apperr.New(apperr.NotFound, "no such order")
	}
	return s.view(id, user), nil
}

// MyOrders lists the user's orders, newest first.
func (s *Service) MyOrders(user string) []*Order { return s.state.UserOrders(user, 100) }

// StoreOrders lists a store's orders to its merchant. Errors: not_found,
// forbidden.
func (s *Service) StoreOrders(merchant, storeID string) ([]*Order, error) {
	owner, ok := s.state.StoreOwner(storeID)
	if !ok {
		return nil, apperr.New(apperr.NotFound, "no such store")
	}
	if owner != merchant {
		return nil, apperr.New(apperr.Forbidden, "this is not your store")
	}
	return s.state.StoreOrders(storeID, 200), nil
}

// Claimable lists the orders an online courier may claim. Errors:
// courier_offline.
func (s *Service) Claimable(courier string) ([]*Order, error) {
	if !s.state.Courier(courier) {
		return nil, &apperr.Error{Code: CourierOffline, Message: "go online as a courier first"}
	}
	out := s.state.Claimable(100)
	for _, o := range out {
		// Before a courier claims an order it sees the store and what the
		// delivery pays, not who ordered what, or where they live.
		o.HoldID, o.User, o.Address, o.Lines = ledger.ID{}, "", "", nil
	}
	return out, nil
}

// Stores lists the stores (only those open now if openOnly).
func (s *Service) Stores(openOnly bool) []StoreView { return s.state.Stores(s.cfg.Now(), openOnly) }

// Store returns a store with its catalogue. Errors: not_found.
func (s *Service) Store(id string) (StoreView, error) {
	v, ok := s.state.Store(id, s.cfg.Now())
	if !ok {
		return StoreView{}, apperr.New(apperr.NotFound, "no such store")
	}
	return v, nil
}

// Search finds items by name. Errors: invalid_field.
func (s *Service) Search(q string) ([]Hit, error) {
	q = strings.TrimSpace(q)
	if q == "" || len(q) > 100 {
		return nil, apperr.Field("q", "q must be 1 to 100 bytes")
	}
	return s.state.Search(q, s.cfg.Now(), 50), nil
}

// Cart returns the user's cart at a store. Errors: not_found.
func (s *Service) Cart(user, storeID string) (Cart, error) {
	c, ok := s.state.CartOf(user, storeID)
	if !ok {
		return Cart{}, apperr.New(apperr.NotFound, "no such store")
	}
	return c, nil
}

// SetCourier puts the user online (or offline) as a courier.
func (s *Service) SetCourier(ctx context.Context, w cmdlog.Write, user string, online bool) (Written, error) {
	kind := kindOffline
	if online {
		kind = kindOnline
	}
	return s.submit(ctx, w, kind, user, struct{}{}, nil)
}

// step runs a party's step on an order: one per order, kind and user, so
// a retry (or a second tap) returns the first outcome.
func (s *Service) step(ctx context.Context, kind, user, orderID string, c orderCmd) (View, Written, error) {
	if _, ok := s.state.Order(orderID); !ok || user == "" {
		return View{}, Written{}, apperr.New(apperr.NotFound, "no such order")
	}
	c.OrderID = orderID
	w, err := s.submit(ctx, cmdlog.Write{ID: kind + "/" + orderID + "/" + user}, kind, user, c, nil)
	if err != nil {
		return View{}, w, err
	}
	switch kind {
	case kindReject, kindCancel, kindDeliver:
		// Settle now, so the caller sees the money moved; the settlement
		// loop finishes what this could not.
		if err := s.settle.Run1(ctx, orderID, true); err != nil {
			if ctx.Err() == nil {
				s.log.Info("settle after "+kind, "order", orderID, "err", err)
			}
		} else {
			w.add(cmdlog.Result{Position: cmdlog.Position{Stream: pay.Stream, Seq: s.pay.Machine().Applied()}})
		}
	}
	return s.view(orderID, user), w, nil
}

// reason checks a free-text reason.
func reason(r string) error {
	if len(r) > 200 {
		return apperr.Field("reason", "reason is at most 200 bytes")
	}
	return nil
}

// Accept, Preparing and Ready move the merchant's order on. Errors:
// not_found, forbidden, conflict.
func (s *Service) Accept(ctx context.Context, merchant, orderID string) (View, Written, error) {
	if o, ok := s.state.Order(orderID); ok && o.Merchant == merchant {
		if h, ok := s.pay.State().HoldOf(o.HoldID, o.User); !ok || h.Status != "pending" || h.Payee != EscrowUser || h.Amount != o.Total {
			return View{}, Written{}, &apperr.Error{Code: PaymentPending, Message: "the customer's payment is not confirmed yet; retry shortly", RetryAfter: 1}
		}
	}
	return s.step(ctx, kindAccept, merchant, orderID, orderCmd{})
}

// Preparing says the merchant started on the order.
func (s *Service) Preparing(ctx context.Context, merchant, orderID string) (View, Written, error) {
	return s.step(ctx, kindPreparing, merchant, orderID, orderCmd{})
}

// Ready says the order waits for its courier.
func (s *Service) Ready(ctx context.Context, merchant, orderID string) (View, Written, error) {
	return s.step(ctx, kindReady, merchant, orderID, orderCmd{})
}

// Reject turns a placed order down; its hold is released.
func (s *Service) Reject(ctx context.Context, merchant, orderID, why string) (View, Written, error) {
	if err := reason(why); err != nil {
		return View{}, Written{}, err
	}
	return s.step(ctx, kindReject, merchant, orderID, orderCmd{Reason: why})
}

// Cancel cancels an order: by its user before the store accepted it, by
// its merchant until a courier picked it up; the hold is released in full.
// Errors: not_found, forbidden, conflict.
func (s *Service) Cancel(ctx context.Context, user, orderID, why string) (View, Written, error) {
	if err := reason(why); err != nil {
		return View{}, Written{}, err
	}
	return s.step(ctx, kindCancel, user, orderID, orderCmd{Reason: why})
}

// Claim gives an accepted order to the online courier who claims it
// first. Errors: not_found, courier_offline, already_claimed, conflict.
func (s *Service) Claim(ctx context.Context, courier, orderID string) (View, Written, error) {
	return s.step(ctx, kindClaim, courier, orderID, orderCmd{})
}

// Pickup says the courier has the order.
func (s *Service) Pickup(ctx context.Context, courier, orderID string) (View, Written, error) {
	return s.step(ctx, kindPickup, courier, orderID, orderCmd{})
}

// Deliver completes the order: the hold is captured and split between the
// merchant, the courier (the delivery fee) and the platform.
func (s *Service) Deliver(ctx context.Context, courier, orderID string) (View, Written, error) {
	return s.step(ctx, kindDeliver, courier, orderID, orderCmd{})
}

// RefundInput is a merchant's refund of a delivered order (amount 0: all
// that is left).
type RefundInput struct {
	ID     string `json:"id"`
	Amount uint64 `json:"amount"`
}

// Refund gives the user back part or all of what the merchant was paid
// for a delivered order, through pay's refund of the merchant's sale.
// Errors: invalid_field, not_found, forbidden, conflict,
// refund_exceeds_payment.
func (s *Service) Refund(ctx context.Context, merchant, orderID string, in RefundInput) (View, Written, error) {
	var out Written
	if err := checkID("id", in.ID); err != nil {
		return View{}, out, err
	}
	o, ok := s.state.Order(orderID)
	if !ok {
		return View{}, out, apperr.New(apperr.NotFound, "no such order")
	}
	if o.Merchant != merchant {
		if _, seen := s.state.OrderFor(orderID, merchant); seen || s.state.Courier(merchant) {
			return View{}, out, apperr.New(apperr.Forbidden, "only the store's merchant may refund")
		}
		return View{}, out, apperr.New(apperr.NotFound, "no such order")
	}
	if o.Status != StatusDelivered {
		return View{}, out, apperr.New(apperr.Conflict, "the order is %s: cancel it instead", o.Status)
	}
	// A retry of a refund that went through is answered as it was: what is
	// left to refund now says nothing about it ("all" was resolved then).
	if done, ok := s.machine.Outcome("refund/" + orderID + "/" + in.ID); ok && done.Err == nil {
		if in.Amount != 0 && done.Hash != fingerprint(in.Amount) {
			return View{}, out, apperr.New(apperr.IdemReused, "this id was used for another refund")
		}
		out.Replayed = true
		return s.view(orderID, merchant), out, nil
	}
	left := o.FoodTotal - o.PlatformFee - o.Refunded
	if in.Amount == 0 {
		in.Amount = left
	}
	if in.Amount == 0 || in.Amount > left {
		return View{}, out, apperr.Field("amount", "at most %d is left to refund", left)
	}
	client := "food-" + hashID(orderID+"/"+in.ID)
	_, res, err := s.pay.Refund(ctx, merchant, client, pay.SplitTransferID(o.HoldID, 1), in.Amount)
	if err != nil {
		return View{}, out, err
	}
	out.add(res)
	w, err := s.submit(ctx, cmdlog.Write{ID: "refund/" + orderID + "/" + in.ID, Hash: fingerprint(in.Amount)}, kindRefund, merchant, orderCmd{OrderID: orderID, Amount: in.Amount}, nil)
	for k, v := range w.Positions {
		out.add(cmdlog.Result{Position: cmdlog.Position{Stream: k, Seq: v}, Replayed: w.Replayed})
	}
	if err != nil {
		return View{}, out, err
	}
	return s.view(orderID, merchant), out, nil
}

var errNotYet = errors.New("the ledger has not applied the order's hold here yet")
