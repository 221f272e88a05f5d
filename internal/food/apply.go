package food

import (
	"encoding/json"
	"slices"
	"sort"
	"time"

	"superapp/internal/apperr"
	"superapp/internal/cmdlog"
	"superapp/internal/ledger"
	"superapp/internal/store"
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

// Observe sets the function told, after each applied command's entry is
// committed, of its pushes and changes. It must not block.
func (s *State) Observe(fn func([]Push, []Change)) {
	s.mu.Lock()
	s.observer = fn
	s.mu.Unlock()
}

// Apply applies one FOOD command to the entry's batch. It is
// deterministic: the envelope's At is the only clock it reads. A refused
// command changes nothing.
func (s *State) Apply(_ uint64, e *cmdlog.Envelope) (any, *apperr.Error) {
	v, err, pushes, changes, obs := s.applyLocked(e)
	if obs != nil && (len(pushes) > 0 || len(changes) > 0) {
		s.space.Tx().AfterCommit(func() { obs(pushes, changes) })
	}
	return v, err
}

func (s *State) applyLocked(e *cmdlog.Envelope) (v any, err *apperr.Error, pushes []Push, changes []Change, obs func([]Push, []Change)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pushes, s.changes = s.pushes[:0], s.changes[:0]
	v, err = s.apply(s.overlay, e)
	if err == nil {
		pushes, changes = slices.Clone(s.pushes), slices.Clone(s.changes)
	}
	return v, err, pushes, changes, s.observer
}

func decode(e *cmdlog.Envelope, v any) *apperr.Error {
	if err := json.Unmarshal(e.Data, v); err != nil {
		return apperr.New(apperr.Malformed, "bad command")
	}
	return nil
}

func (s *State) apply(tx *store.Overlay, e *cmdlog.Envelope) (any, *apperr.Error) {
	if e.Actor == "" && e.Kind != kindCancel {
		return nil, apperr.New(apperr.Malformed, "bad command")
	}
	switch e.Kind {
	case kindOnline, kindOffline:
		on := e.Kind == kindOnline
		if was := tx.Has(courierKey(e.Actor)); on && !was {
			tx.Set(courierKey(e.Actor), nil)
		} else if !on && was {
			tx.Delete(courierKey(e.Actor))
		}
		return map[string]any{"courier_id": e.Actor, "online": on}, nil
	case kindStore:
		var c storeCmd
		if err := decode(e, &c); err != nil {
			return nil, err
		}
		return s.createStore(tx, e.Actor, c, e.At, e.Cursor)
	case kindItem:
		var c itemCmd
		if err := decode(e, &c); err != nil {
			return nil, err
		}
		return s.putItem(tx, e.Actor, c)
	case kindCart:
		var c cartCmd
		if err := decode(e, &c); err != nil {
			return nil, err
		}
		return s.setCart(tx, e.Actor, c)
	case kindPlace:
		var c placeCmd
		if err := decode(e, &c); err != nil {
			return nil, err
		}
		return s.place(tx, e.Actor, c, e.At, e.Cursor)
	}
	var c orderCmd
	if err := decode(e, &c); err != nil {
		return nil, err
	}
	o, ok := getOrder(tx, c.OrderID)
	if !ok {
		return nil, apperr.New(apperr.NotFound, "no such order")
	}
	switch e.Kind {
	case kindAccept, kindPreparing, kindReady, kindReject:
		return s.merchantStep(tx, o, e.Kind, e.Actor, c, e.At)
	case kindCancel:
		return s.cancel(tx, o, e.Actor, c, e.At)
	case kindClaim:
		return s.claim(tx, o, e.Actor, e.At)
	case kindPickup, kindDeliver:
		return s.courierStep(tx, o, e.Kind, e.Actor, e.At)
	case kindRefund:
		return s.refund(tx, o, e.Actor, c.Amount, e.At)
	}
	return nil, apperr.New(apperr.Invalid, "unknown command %q", e.Kind)
}

func (s *State) createStore(tx *store.Overlay, merchant string, c storeCmd, at time.Time, cursor uint64) (any, *apperr.Error) {
	if old, ok := getStore(tx, c.StoreID); ok {
		if old.Merchant != merchant {
			return nil, apperr.New(apperr.Conflict, "this store exists already")
		}
		return old.view(at, nil), nil
	}
	if c.StoreID == "" {
		return nil, apperr.New(apperr.Malformed, "bad command")
	}
	st := &storeRec{Store: Store{ID: c.StoreID, Merchant: merchant, Name: c.Name, Hours: c.Hours, DeliveryFee: c.DeliveryFee,
		Currency: Currency, CreatedAt: at}}
	tx.Set(storeKey(st.ID), encodeStore(st))
	tx.SetIndex(storesKey(cursor), []byte(st.ID))
	return st.view(at, nil), nil
}

// ownStore is the store id if merchant runs it.
func ownStore(tx *store.Overlay, id, merchant string) (*storeRec, *apperr.Error) {
	st, ok := getStore(tx, id)
	switch {
	case !ok:
		return nil, apperr.New(apperr.NotFound, "no such store")
	case st.Merchant != merchant:
		return nil, apperr.New(apperr.Forbidden, "this is not your store")
	}
	return st, nil
}

func (s *State) putItem(tx *store.Overlay, merchant string, c itemCmd) (any, *apperr.Error) {
	st, err := ownStore(tx, c.StoreID, merchant)
	if err != nil {
		return nil, err
	}
	it := c.Item.copy()
	rec, ok := getItem(tx, st.ID, it.ID)
	if !ok {
		if st.Items >= MaxItems {
			return nil, apperr.Field("item_id", "a store has at most %d items", MaxItems)
		}
		rec = &itemRec{Pos: st.Next}
		st.Items++
		st.Next++
		tx.Set(storeKey(st.ID), encodeStore(st))
	}
	rec.Item = it
	tx.Set(itemKey(st.ID, it.ID), encodeItem(rec))
	return it.copy(), nil
}

func (s *State) setCart(tx *store.Overlay, user string, c cartCmd) (any, *apperr.Error) {
	st, ok := getStore(tx, c.StoreID)
	if !ok {
		return nil, apperr.New(apperr.NotFound, "no such store")
	}
	lines := getCart(tx, user, c.StoreID)
	i := slices.IndexFunc(lines, func(l Line) bool { return l.ItemID == c.ItemID })
	switch {
	case c.Quantity < 0 || c.Quantity > MaxQuantity:
		return nil, apperr.Field("quantity", "quantity is 0 to %d", MaxQuantity)
	case c.Quantity > 0 && !tx.Has(itemKey(st.ID, c.ItemID)):
		return nil, apperr.Field("item_id", "no such item in this store")
	case c.Quantity > 0 && i < 0 && len(lines) >= MaxLines:
		return nil, apperr.Field("item_id", "a cart holds at most %d items", MaxLines)
	}
	switch {
	case c.Quantity == 0 && i >= 0:
		lines = slices.Delete(lines, i, i+1)
	case c.Quantity > 0 && i >= 0:
		lines[i].Quantity = c.Quantity
	case c.Quantity > 0:
		lines = append(lines, Line{ItemID: c.ItemID, Quantity: c.Quantity})
	}
	switch {
	case c.Quantity == 0 && i < 0: // nothing to remove
	case len(lines) == 0:
		tx.Delete(cartKey(user, c.StoreID))
	default:
		tx.Set(cartKey(user, c.StoreID), encodeCart(lines))
	}
	return priced(tx, st, lines), nil
}

func (s *State) place(tx *store.Overlay, user string, c placeCmd, at time.Time, cursor uint64) (any, *apperr.Error) {
	if old, ok := getOrder(tx, c.OrderID); ok {
		if old.User != user {
			return nil, apperr.New(apperr.Conflict, "this order exists already")
		}
		return old, nil
	}
	st, ok := getStore(tx, c.StoreID)
	switch {
	case c.OrderID == "" || c.HoldID.IsZero():
		return nil, apperr.New(apperr.Malformed, "bad command")
	case !ok:
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
	items := map[string]*itemRec{} // the order's items, at most MaxLines
	want := map[string]int64{}
	var food uint64
	for _, l := range c.Lines {
		it, seen := items[l.ItemID]
		if !seen {
			if it, ok = getItem(tx, st.ID, l.ItemID); ok {
				items[l.ItemID] = it
			}
		}
		switch {
		case it == nil:
			return nil, &apperr.Error{Code: OutOfStock, Field: "lines", Message: "an item is no longer sold: " + l.ItemID}
		case it.Item.Price != l.Price:
			return nil, &apperr.Error{Code: PriceChanged, Message: "the price of " + it.Item.Name + " changed; check the cart again"}
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
		if it := items[id].Item; it.Stock != nil && *it.Stock < want[id] {
			return nil, &apperr.Error{Code: OutOfStock, Field: "lines", Message: "not enough " + it.Name + " left: " + itoa(*it.Stock)}
		}
	}
	for _, id := range ids {
		if it := items[id]; it.Item.Stock != nil {
			*it.Item.Stock -= want[id]
			tx.Set(itemKey(st.ID, id), encodeItem(it))
		}
	}
	o := &Order{ID: c.OrderID, User: user, StoreID: st.ID, Merchant: st.Merchant, Status: StatusPlaced, Lines: slices.Clone(c.Lines),
		Address: c.Address, FoodTotal: food, DeliveryFee: c.DeliveryFee, PlatformFee: PlatformFee(food), Total: food + c.DeliveryFee,
		Currency: st.Currency, HoldID: c.HoldID, HomeDC: c.DC, PlacedAt: at, UpdatedAt: at}
	putOrder(tx, o)
	tx.SetIndex(unendedKey(o.ID), nil)
	tx.SetIndex(userOrderKey(user, cursor), []byte(o.ID))
	tx.SetIndex(storeOrderKey(st.ID, cursor), []byte(o.ID))
	if tx.Has(cartKey(user, st.ID)) {
		tx.Delete(cartKey(user, st.ID))
	}
	s.changed(o, kindPlace)
	return o.clone(), nil
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func putOrder(tx *store.Overlay, o *Order) { tx.Set(orderKey(o.ID), encodeOrder(o)) }

// claimable reports whether a courier may claim o: accepted (or on), not
// claimed, not ended.
func claimable(o *Order) bool {
	switch o.Status {
	case StatusAccepted, StatusPreparing, StatusReady:
		return o.Courier == ""
	}
	return false
}

// save writes o, changed by a step that found it claimable or not.
func save(tx *store.Overlay, o *Order, wasClaimable bool) {
	putOrder(tx, o)
	switch now := claimable(o); {
	case now && !wasClaimable:
		tx.SetIndex(openKey(o), nil)
	case !now && wasClaimable:
		tx.Delete(openKey(o))
	}
}

// restock gives an order's items back to its store.
func restock(tx *store.Overlay, o *Order) {
	for _, l := range o.Lines {
		if it, ok := getItem(tx, o.StoreID, l.ItemID); ok && it.Item.Stock != nil {
			*it.Item.Stock += l.Quantity
			tx.Set(itemKey(o.StoreID, l.ItemID), encodeItem(it))
		}
	}
}

// stranger is the error for actor on o: forbidden to its parties and to
// couriers (who may know of it), not_found to anyone else.
func stranger(tx *store.Overlay, o *Order, actor, msg string) *apperr.Error {
	if actor == o.User || actor == o.Merchant || actor == o.Courier || tx.Has(courierKey(actor)) {
		return apperr.New(apperr.Forbidden, "%s", msg)
	}
	return apperr.New(apperr.NotFound, "no such order")
}

func (s *State) merchantStep(tx *store.Overlay, o *Order, kind, actor string, c orderCmd, at time.Time) (any, *apperr.Error) {
	if actor != o.Merchant {
		return nil, stranger(tx, o, actor, "only the store's merchant may do this")
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
	was := claimable(o)
	o.Status = to
	if to == StatusRejected {
		o.Reason = c.Reason
		end(tx, o, at)
	}
	o.UpdatedAt = at
	save(tx, o, was)
	s.changed(o, kind)
	return o.clone(), nil
}

func (s *State) cancel(tx *store.Overlay, o *Order, actor string, c orderCmd, at time.Time) (any, *apperr.Error) {
	by := ""
	switch {
	case c.System && actor == "":
		by = "system"
	case actor != "" && actor == o.User:
		by = "user"
	case actor != "" && actor == o.Merchant:
		by = "merchant"
	default:
		return nil, stranger(tx, o, actor, "only the order's user or merchant may cancel it")
	}
	switch {
	case o.Ended():
		return nil, apperr.New(apperr.Conflict, "the order is %s already", o.Status)
	case by == "user" && o.Status != StatusPlaced:
		return nil, apperr.New(apperr.Conflict, "the store accepted the order: ask the store to cancel it")
	case by != "system" && (o.Status == StatusPickedUp):
		return nil, apperr.New(apperr.Conflict, "the order is on its way")
	}
	was := claimable(o)
	o.Status, o.CancelledBy, o.Reason, o.UpdatedAt = StatusCancelled, by, c.Reason, at
	end(tx, o, at)
	save(tx, o, was)
	s.changed(o, kindCancel)
	return o.clone(), nil
}

// end closes an order: a rejected or cancelled one's stock goes back.
func end(tx *store.Overlay, o *Order, at time.Time) {
	o.EndedAt = &at
	tx.Delete(unendedKey(o.ID))
	tx.SetIndex(endedKey(at, o.ID), nil)
	if o.Status != StatusDelivered {
		restock(tx, o)
	}
}

func (s *State) claim(tx *store.Overlay, o *Order, actor string, at time.Time) (any, *apperr.Error) {
	switch {
	case !tx.Has(courierKey(actor)):
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
	was := claimable(o)
	o.Courier, o.UpdatedAt = actor, at
	save(tx, o, was)
	s.changed(o, kindClaim)
	return o.clone(), nil
}

func (s *State) courierStep(tx *store.Overlay, o *Order, kind, actor string, at time.Time) (any, *apperr.Error) {
	if actor == "" || actor != o.Courier {
		return nil, stranger(tx, o, actor, "only the courier who claimed the order may do this")
	}
	from, to := StatusReady, StatusPickedUp
	if kind == kindDeliver {
		from, to = StatusPickedUp, StatusDelivered
	}
	if o.Status != from {
		return nil, apperr.New(apperr.Conflict, "the order is %s, not %s", o.Status, from)
	}
	was := claimable(o)
	o.Status, o.UpdatedAt = to, at
	if to == StatusDelivered {
		end(tx, o, at)
	}
	save(tx, o, was)
	s.changed(o, kind)
	return o.clone(), nil
}

func (s *State) refund(tx *store.Overlay, o *Order, actor string, amount uint64, at time.Time) (any, *apperr.Error) {
	if actor != o.Merchant {
		return nil, stranger(tx, o, actor, "only the store's merchant may refund")
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
	putOrder(tx, o)
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
