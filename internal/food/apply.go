package food

import (
	"encoding/json"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"superapp/internal/apperr"
	"superapp/internal/cmdlog"
	"superapp/internal/ledger"
)

// Command kinds in the FOOD stream.
const (
	kindStore     = "store.create"
	kindItem      = "item.put"
	kindCart      = "cart.set"
	kindPlace     = "order.place"
	kindAccept    = "order.accept"
	kindReject    = "order.reject"
	kindPreparing = "order.preparing"
	kindReady     = "order.ready"
	kindCancel    = "order.cancel"
	kindClaim     = "order.claim"
	kindPickup    = "order.pickup"
	kindDeliver   = "order.deliver"
	kindRefund    = "order.refund"
	kindOnline    = "courier.online"
	kindOffline   = "courier.offline"
)

type storeCmd struct {
	StoreID     string  `json:"store_id"`
	Name        string  `json:"name"`
	Hours       []Hours `json:"hours"`
	DeliveryFee uint64  `json:"delivery_fee"`
}

type itemCmd struct {
	StoreID string `json:"store_id"`
	Item    Item   `json:"item"`
}

type cartCmd struct {
	StoreID  string `json:"store_id"`
	ItemID   string `json:"item_id"`
	Quantity int64  `json:"quantity"`
}

type placeCmd struct {
	OrderID     string    `json:"order_id"`
	StoreID     string    `json:"store_id"`
	Address     string    `json:"address"`
	Lines       []Line    `json:"lines"`
	FoodTotal   uint64    `json:"food_total"`
	DeliveryFee uint64    `json:"delivery_fee"`
	HoldID      ledger.ID `json:"hold_id"`
	DC          string    `json:"dc"`
}

type orderCmd struct {
	OrderID string `json:"order_id"`
	Reason  string `json:"reason,omitempty"`
	System  bool   `json:"system,omitempty"`
	Amount  uint64 `json:"amount,omitempty"`
}

// Change tells the service which order an applied command changed.
type Change struct {
	Kind    string
	OrderID string
}

// State is the food read model. It is safe for concurrent use.
type State struct {
	mu         sync.RWMutex
	stores     map[string]*Store
	storeOrder []string
	carts      map[string]map[string][]Line // user → store → lines
	orders     map[string]*Order
	byUser     map[string][]string
	byStore    map[string][]string
	couriers   map[string]bool
	// open lists the orders a courier may claim.
	open map[string]struct{}

	pushes   []Push
	changes  []Change
	observer func([]Push, []Change)
}

// NewState returns an empty state.
func NewState() *State {
	return &State{stores: map[string]*Store{}, carts: map[string]map[string][]Line{}, orders: map[string]*Order{},
		byUser: map[string][]string{}, byStore: map[string][]string{}, couriers: map[string]bool{}, open: map[string]struct{}{}}
}

// Observe sets the function told, after each applied command, of its
// pushes and changes. It must not block.
func (s *State) Observe(fn func([]Push, []Change)) {
	s.mu.Lock()
	s.observer = fn
	s.mu.Unlock()
}

// Apply applies one FOOD command. It is deterministic: the envelope's At
// is the only clock it reads. A refused command changes nothing.
func (s *State) Apply(_ uint64, e *cmdlog.Envelope) (any, *apperr.Error) {
	s.mu.Lock()
	s.pushes, s.changes = s.pushes[:0], s.changes[:0]
	v, err := s.apply(e)
	var pushes []Push
	var changes []Change
	if err == nil {
		pushes, changes = slices.Clone(s.pushes), slices.Clone(s.changes)
	}
	obs := s.observer
	s.mu.Unlock()
	if obs != nil && (len(pushes) > 0 || len(changes) > 0) {
		obs(pushes, changes)
	}
	return v, err
}

func decode(e *cmdlog.Envelope, v any) *apperr.Error {
	if err := json.Unmarshal(e.Data, v); err != nil {
		return apperr.New(apperr.Malformed, "bad command")
	}
	return nil
}

func (s *State) apply(e *cmdlog.Envelope) (any, *apperr.Error) {
	if e.Actor == "" && e.Kind != kindCancel {
		return nil, apperr.New(apperr.Malformed, "bad command")
	}
	switch e.Kind {
	case kindOnline, kindOffline:
		on := e.Kind == kindOnline
		if on {
			s.couriers[e.Actor] = true
		} else {
			delete(s.couriers, e.Actor)
		}
		return map[string]any{"courier_id": e.Actor, "online": on}, nil
	case kindStore:
		var c storeCmd
		if err := decode(e, &c); err != nil {
			return nil, err
		}
		return s.createStore(e.Actor, c, e.At)
	case kindItem:
		var c itemCmd
		if err := decode(e, &c); err != nil {
			return nil, err
		}
		return s.putItem(e.Actor, c)
	case kindCart:
		var c cartCmd
		if err := decode(e, &c); err != nil {
			return nil, err
		}
		return s.setCart(e.Actor, c)
	case kindPlace:
		var c placeCmd
		if err := decode(e, &c); err != nil {
			return nil, err
		}
		return s.place(e.Actor, c, e.At)
	}
	var c orderCmd
	if err := decode(e, &c); err != nil {
		return nil, err
	}
	o := s.orders[c.OrderID]
	if o == nil {
		return nil, apperr.New(apperr.NotFound, "no such order")
	}
	switch e.Kind {
	case kindAccept, kindPreparing, kindReady, kindReject:
		return s.merchantStep(o, e.Kind, e.Actor, c, e.At)
	case kindCancel:
		return s.cancel(o, e.Actor, c, e.At)
	case kindClaim:
		return s.claim(o, e.Actor, e.At)
	case kindPickup, kindDeliver:
		return s.courierStep(o, e.Kind, e.Actor, e.At)
	case kindRefund:
		return s.refund(o, e.Actor, c.Amount, e.At)
	}
	return nil, apperr.New(apperr.Invalid, "unknown command %q", e.Kind)
}

func (s *State) createStore(merchant string, c storeCmd, at time.Time) (any, *apperr.Error) {
	if old := s.stores[c.StoreID]; old != nil {
		if old.Merchant != merchant {
			return nil, apperr.New(apperr.Conflict, "this store exists already")
		}
		return old.view(at, false), nil
	}
	if c.StoreID == "" {
		return nil, apperr.New(apperr.Malformed, "bad command")
	}
	st := &Store{ID: c.StoreID, Merchant: merchant, Name: c.Name, Hours: c.Hours, DeliveryFee: c.DeliveryFee, Currency: Currency,
		CreatedAt: at, items: map[string]*Item{}}
	s.stores[st.ID] = st
	s.storeOrder = append(s.storeOrder, st.ID)
	return st.view(at, false), nil
}

// ownStore is the store id if merchant runs it.
func (s *State) ownStore(id, merchant string) (*Store, *apperr.Error) {
	st := s.stores[id]
	switch {
	case st == nil:
		return nil, apperr.New(apperr.NotFound, "no such store")
	case st.Merchant != merchant:
		return nil, apperr.New(apperr.Forbidden, "this is not your store")
	}
	return st, nil
}

func (s *State) putItem(merchant string, c itemCmd) (any, *apperr.Error) {
	st, err := s.ownStore(c.StoreID, merchant)
	if err != nil {
		return nil, err
	}
	it := c.Item.copy()
	if st.items[it.ID] == nil {
		if len(st.items) >= MaxItems {
			return nil, apperr.Field("item_id", "a store has at most %d items", MaxItems)
		}
		st.itemOrder = append(st.itemOrder, it.ID)
	}
	st.items[it.ID] = &it
	return it.copy(), nil
}

func (s *State) setCart(user string, c cartCmd) (any, *apperr.Error) {
	st := s.stores[c.StoreID]
	if st == nil {
		return nil, apperr.New(apperr.NotFound, "no such store")
	}
	lines := s.carts[user][c.StoreID]
	i := slices.IndexFunc(lines, func(l Line) bool { return l.ItemID == c.ItemID })
	switch {
	case c.Quantity < 0 || c.Quantity > MaxQuantity:
		return nil, apperr.Field("quantity", "quantity is 0 to %d", MaxQuantity)
	case c.Quantity > 0 && st.items[c.ItemID] == nil:
		return nil, apperr.Field("item_id", "no such item in this store")
	case c.Quantity > 0 && i < 0 && len(lines) >= MaxLines:
		return nil, apperr.Field("item_id", "a cart holds at most %d items", MaxLines)
	}
	lines = slices.Clone(lines)
	switch {
	case c.Quantity == 0 && i >= 0:
		lines = slices.Delete(lines, i, i+1)
	case c.Quantity > 0 && i >= 0:
		lines[i].Quantity = c.Quantity
	case c.Quantity > 0:
		lines = append(lines, Line{ItemID: c.ItemID, Quantity: c.Quantity})
	}
	if s.carts[user] == nil {
		s.carts[user] = map[string][]Line{}
	}
	if len(lines) == 0 {
		delete(s.carts[user], c.StoreID)
	} else {
		s.carts[user][c.StoreID] = lines
	}
	return s.cartOf(user, st), nil
}

// cartOf prices a user's cart at today's prices. The caller holds s.mu.
func (s *State) cartOf(user string, st *Store) Cart {
	c := Cart{StoreID: st.ID, Lines: []Line{}, DeliveryFee: st.DeliveryFee, Currency: st.Currency}
	for _, l := range s.carts[user][st.ID] {
		it := st.items[l.ItemID]
		if it == nil {
			continue
		}
		l.Name, l.Price = it.Name, it.Price
		c.Lines = append(c.Lines, l)
		c.FoodTotal += it.Price * uint64(l.Quantity)
	}
	if len(c.Lines) > 0 {
		c.Total = c.FoodTotal + c.DeliveryFee
	}
	return c
}

func (s *State) place(user string, c placeCmd, at time.Time) (any, *apperr.Error) {
	if old := s.orders[c.OrderID]; old != nil {
		if old.User != user {
			return nil, apperr.New(apperr.Conflict, "this order exists already")
		}
		return old.clone(), nil
	}
	st := s.stores[c.StoreID]
	switch {
	case c.OrderID == "" || c.HoldID.IsZero():
		return nil, apperr.New(apperr.Malformed, "bad command")
	case st == nil:
		return nil, apperr.New(apperr.NotFound, "no such store")
	case st.Merchant == user:
		return nil, apperr.Field("store_id", "you cannot order from your own store")
	case !OpenAt(st.Hours, at):
		return nil, &apperr.Error{Code: StoreClosed, Field: "store_id", Message: "the store is closed now"}
	case len(c.Lines) == 0 || len(c.Lines) > MaxLines:
		return nil, &apperr.Error{Code: CartEmpty, Message: "the cart is empty"}
	case c.DeliveryFee != st.DeliveryFee:
		return nil, &apperr.Error{Code: PriceChanged, Message: "the delivery fee changed; check the cart again"}
	}
	// Check everything before taking anything: nothing half-written.
	want := map[string]int64{}
	var food uint64
	for _, l := range c.Lines {
		it := st.items[l.ItemID]
		switch {
		case it == nil:
			return nil, &apperr.Error{Code: OutOfStock, Field: "lines", Message: "an item is no longer sold: " + l.ItemID}
		case it.Price != l.Price:
			return nil, &apperr.Error{Code: PriceChanged, Message: "the price of " + it.Name + " changed; check the cart again"}
		case l.Quantity <= 0 || l.Quantity > MaxQuantity:
			return nil, apperr.New(apperr.Malformed, "bad quantity")
		}
		want[l.ItemID] += l.Quantity
		food += l.Price * uint64(l.Quantity)
	}
	if food != c.FoodTotal {
		return nil, &apperr.Error{Code: PriceChanged, Message: "the total changed; check the cart again"}
	}
	ids := make([]string, 0, len(want))
	for id := range want {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if it := st.items[id]; it.Stock != nil && *it.Stock < want[id] {
			return nil, &apperr.Error{Code: OutOfStock, Field: "lines", Message: "not enough " + it.Name + " left: " + itoa(*it.Stock)}
		}
	}
	for _, id := range ids {
		if it := st.items[id]; it.Stock != nil {
			*it.Stock -= want[id]
		}
	}
	o := &Order{ID: c.OrderID, User: user, StoreID: st.ID, Merchant: st.Merchant, Status: StatusPlaced, Lines: slices.Clone(c.Lines),
		Address: c.Address, FoodTotal: food, DeliveryFee: c.DeliveryFee, PlatformFee: PlatformFee(food), Total: food + c.DeliveryFee,
		Currency: st.Currency, HoldID: c.HoldID, HomeDC: c.DC, PlacedAt: at, UpdatedAt: at}
	s.orders[o.ID] = o
	s.byUser[user] = append(s.byUser[user], o.ID)
	s.byStore[st.ID] = append(s.byStore[st.ID], o.ID)
	delete(s.carts[user], st.ID)
	s.changed(o, kindPlace)
	return o.clone(), nil
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// restock gives an order's items back to its store.
func (s *State) restock(o *Order) {
	st := s.stores[o.StoreID]
	for _, l := range o.Lines {
		if it := st.items[l.ItemID]; it != nil && it.Stock != nil {
			*it.Stock += l.Quantity
		}
	}
}

// stranger is the error for actor on o: forbidden to its parties and to
// couriers (who may know of it), not_found to anyone else.
func (s *State) stranger(o *Order, actor, msg string) *apperr.Error {
	if actor == o.User || actor == o.Merchant || actor == o.Courier || s.couriers[actor] {
		return apperr.New(apperr.Forbidden, "%s", msg)
	}
	return apperr.New(apperr.NotFound, "no such order")
}

func (s *State) merchantStep(o *Order, kind, actor string, c orderCmd, at time.Time) (any, *apperr.Error) {
	if actor != o.Merchant {
		return nil, s.stranger(o, actor, "only the store's merchant may do this")
	}
	from, to := StatusPlaced, StatusAccepted
	switch kind {
	case kindReject:
		to = StatusRejected
	case kindPreparing:
		from, to = StatusAccepted, StatusPreparing
	case kindReady:
		from, to = StatusPreparing, StatusReady
	}
	if o.Status != from {
		return nil, apperr.New(apperr.Conflict, "the order is %s, not %s", o.Status, from)
	}
	o.Status = to
	switch to {
	case StatusAccepted:
		s.open[o.ID] = struct{}{}
	case StatusRejected:
		o.Reason = c.Reason
		s.end(o, at)
	}
	o.UpdatedAt = at
	s.changed(o, kind)
	return o.clone(), nil
}

func (s *State) cancel(o *Order, actor string, c orderCmd, at time.Time) (any, *apperr.Error) {
	by := ""
	switch {
	case c.System && actor == "":
		by = "system"
	case actor != "" && actor == o.User:
		by = "user"
	case actor != "" && actor == o.Merchant:
		by = "merchant"
	default:
		return nil, s.stranger(o, actor, "only the order's user or merchant may cancel it")
	}
	switch {
	case o.Ended():
		return nil, apperr.New(apperr.Conflict, "the order is %s already", o.Status)
	case by == "user" && o.Status != StatusPlaced:
		return nil, apperr.New(apperr.Conflict, "the store accepted the order: ask the store to cancel it")
	case by != "system" && (o.Status == StatusPickedUp):
		return nil, apperr.New(apperr.Conflict, "the order is on its way")
	}
	o.Status, o.CancelledBy, o.Reason, o.UpdatedAt = StatusCancelled, by, c.Reason, at
	s.end(o, at)
	s.changed(o, kindCancel)
	return o.clone(), nil
}

// end closes a rejected or cancelled order: its stock goes back.
func (s *State) end(o *Order, at time.Time) {
	o.EndedAt = &at
	delete(s.open, o.ID)
	if o.Status != StatusDelivered {
		s.restock(o)
	}
}

func (s *State) claim(o *Order, actor string, at time.Time) (any, *apperr.Error) {
	switch {
	case !s.couriers[actor]:
		if o.Courier == actor {
			return o.clone(), nil
		}
		return nil, &apperr.Error{Code: CourierOffline, Message: "go online as a courier first"}
	case o.Courier == actor:
		return o.clone(), nil
	case o.Courier != "":
		return nil, &apperr.Error{Code: AlreadyClaimed, Message: "another courier claimed this order"}
	case actor == o.User || actor == o.Merchant:
		return nil, apperr.New(apperr.Conflict, "you cannot deliver your own order")
	case o.Status != StatusAccepted && o.Status != StatusPreparing && o.Status != StatusReady:
		return nil, apperr.New(apperr.Conflict, "the order is %s", o.Status)
	}
	o.Courier, o.UpdatedAt = actor, at
	delete(s.open, o.ID)
	s.changed(o, kindClaim)
	return o.clone(), nil
}

func (s *State) courierStep(o *Order, kind, actor string, at time.Time) (any, *apperr.Error) {
	if actor == "" || actor != o.Courier {
		return nil, s.stranger(o, actor, "only the courier who claimed the order may do this")
	}
	from, to := StatusReady, StatusPickedUp
	if kind == kindDeliver {
		from, to = StatusPickedUp, StatusDelivered
	}
	if o.Status != from {
		return nil, apperr.New(apperr.Conflict, "the order is %s, not %s", o.Status, from)
	}
	o.Status, o.UpdatedAt = to, at
	if to == StatusDelivered {
		s.end(o, at)
	}
	s.changed(o, kind)
	return o.clone(), nil
}

func (s *State) refund(o *Order, actor string, amount uint64, at time.Time) (any, *apperr.Error) {
	if actor != o.Merchant {
		return nil, s.stranger(o, actor, "only the store's merchant may refund")
	}
	left := o.FoodTotal - o.PlatformFee - o.Refunded
	switch {
	case o.Status != StatusDelivered:
		return nil, apperr.New(apperr.Conflict, "the order is %s: cancel it instead", o.Status)
	case amount == 0 || amount > left:
		return nil, apperr.Field("amount", "at most %d is left to refund", left)
	}
	o.Refunded += amount
	o.UpdatedAt = at
	s.changed(o, kindRefund)
	return o.clone(), nil
}

// changed queues o's new state for its parties' devices and the service.
func (s *State) changed(o *Order, kind string) {
	for _, u := range []string{o.User, o.Merchant, o.Courier} {
		if u != "" {
			s.pushes = append(s.pushes, Push{User: u, Frame: Frame{Type: "food.order", Order: o.clone()}})
		}
	}
	s.changes = append(s.changes, Change{Kind: kind, OrderID: o.ID})
}

// Store returns a store as anyone sees it at at.
func (s *State) Store(id string, at time.Time) (StoreView, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	st := s.stores[id]
	if st == nil {
		return StoreView{}, false
	}
	return st.view(at, true), true
}

// Stores lists the stores, oldest first, open ones only if openOnly.
func (s *State) Stores(at time.Time, openOnly bool) []StoreView {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := []StoreView{}
	for _, id := range s.storeOrder {
		v := s.stores[id].view(at, false)
		if !openOnly || v.OpenNow {
			out = append(out, v)
		}
	}
	return out
}

// Hit is an item found by a search.
type Hit struct {
	StoreID   string `json:"store_id"`
	StoreName string `json:"store_name"`
	OpenNow   bool   `json:"open_now"`
	Item      Item   `json:"item"`
}

// Search finds up to limit items whose name contains q (case-insensitive).
func (s *State) Search(q string, at time.Time, limit int) []Hit {
	q = strings.ToLower(q)
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := []Hit{}
	for _, sid := range s.storeOrder {
		st := s.stores[sid]
		open := OpenAt(st.Hours, at)
		for _, iid := range st.itemOrder {
			it := st.items[iid]
			if strings.Contains(strings.ToLower(it.Name), q) {
				out = append(out, Hit{StoreID: st.ID, StoreName: st.Name, OpenNow: open, Item: it.copy()})
				if len(out) >= limit {
					return out
				}
			}
		}
	}
	return out
}

// CartOf is the user's cart at a store.
func (s *State) CartOf(user, storeID string) (Cart, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	st := s.stores[storeID]
	if st == nil {
		return Cart{}, false
	}
	return s.cartOf(user, st), true
}

// Order returns a copy of an order.
func (s *State) Order(id string) (*Order, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	o := s.orders[id]
	if o == nil {
		return nil, false
	}
	return o.clone(), true
}

// OrderFor returns an order to its user, merchant or courier; to anyone
// else it does not exist.
func (s *State) OrderFor(id, user string) (*Order, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	o := s.orders[id]
	if o == nil || user == "" || (user != o.User && user != o.Merchant && user != o.Courier) {
		return nil, false
	}
	return o.clone(), true
}

// UserOrders lists a user's orders, newest first.
func (s *State) UserOrders(user string, limit int) []*Order { return s.list(s.byUserIDs, user, limit) }

// StoreOrders lists a store's orders, newest first.
func (s *State) StoreOrders(storeID string, limit int) []*Order {
	return s.list(s.byStoreIDs, storeID, limit)
}

func (s *State) byUserIDs(k string) []string  { return s.byUser[k] }
func (s *State) byStoreIDs(k string) []string { return s.byStore[k] }

func (s *State) list(ids func(string) []string, key string, limit int) []*Order {
	s.mu.RLock()
	defer s.mu.RUnlock()
	l := ids(key)
	out := []*Order{}
	for i := len(l) - 1; i >= 0 && len(out) < limit; i-- {
		out = append(out, s.orders[l[i]].clone())
	}
	return out
}

// Claimable lists the orders a courier may claim, oldest first.
func (s *State) Claimable(limit int) []*Order {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := []*Order{}
	for id := range s.open {
		out = append(out, s.orders[id].clone())
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].PlacedAt.Equal(out[j].PlacedAt) {
			return out[i].PlacedAt.Before(out[j].PlacedAt)
		}
		return out[i].ID < out[j].ID
	})
	if len(out) > limit {
		out = out[:limit]
	}
	return out
}

// Courier reports whether a user is online as a courier.
func (s *State) Courier(user string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.couriers[user]
}

// StoreOwner is the merchant of a store.
func (s *State) StoreOwner(id string) (string, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	st := s.stores[id]
	if st == nil {
		return "", false
	}
	return st.Merchant, true
}

// Orders calls fn with every order (for checks and digests), by id.
func (s *State) Orders(fn func(*Order)) {
	s.mu.RLock()
	ids := make([]string, 0, len(s.orders))
	for id := range s.orders {
		ids = append(ids, id)
	}
	s.mu.RUnlock()
	sort.Strings(ids)
	for _, id := range ids {
		if o, ok := s.Order(id); ok {
			fn(o)
		}
	}
}
