package food

import (
	"slices"
	"strings"
	"sync"
	"time"

	"superapp/internal/store"
)

// State is the food read model, kept whole in the state store (keys.go).
// It is safe for concurrent use: queries read what is committed.
type State struct {
	space *store.Space

	// mu is held while a command is applied; it guards what follows.
	mu sync.Mutex
	// overlay is the entry being applied as apply reads and writes it:
	// what the entry's commands wrote and the last recentSize records read
	// or written (store.Overlay).
	overlay *store.Overlay
	// pushes and changes collect what the command being applied did.
	pushes   []Push
	changes  []Change
	observer func([]Push, []Change)
}

// storeRec is a store as stored: the store and the size of its catalogue.
type storeRec struct {
	Store
	// Items is how many items the catalogue holds; Next the place of the
	// next new one (items list in the order they were added).
	Items, Next int
}

// itemRec is an item as stored, with its place in the catalogue.
type itemRec struct {
	Pos  int
	Item Item
}

// NewState returns the read model kept in space.
func NewState(space *store.Space) *State {
	return &State{space: space, overlay: store.NewOverlay(space, recentSize, cached)}
}

// cached says which records apply reads, and so keeps in its overlay's
// cache: orders, stores, items, carts, couriers. Index keys are only
// written.
func cached(key string) bool {
	for _, p := range []string{"order/", "store/", "item/", "cart/", "courier/"} {
		if strings.HasPrefix(key, p) {
			return true
		}
	}
	return false
}

// recentSize bounds the overlay's cache: a few thousand orders under way,
// their stores' records and items.
const recentSize = 4096

// reader is what the committed store (the space, or a snapshot of it for
// a query reading several keys) and the entry's batch all offer. Fail
// reports a record that cannot be read: the store is broken.
type reader interface {
	Get(key string) ([]byte, bool)
	Fail(what string, err error)
}

// view is a consistent view of what is committed, for a query that reads
// several keys; Close it when done.
type view struct {
	*store.Snapshot
	sp *store.Space
}

func (s *State) view() view                { return view{Snapshot: s.space.Snapshot(), sp: s.space} }
func (v view) Fail(what string, err error) { v.sp.Fail(what, err) }

// get reads and decodes key (ok false: absent); a record that cannot be
// decoded reports the store broken.
func get[T any](r reader, key string, decode func([]byte) (T, error)) (v T, ok bool) {
	b, ok := r.Get(key)
	if !ok {
		return v, false
	}
	v, err := decode(b)
	return check(r, key, v, err), true
}

// check returns what was decoded from key, or reports the store broken.
func check[T any](r reader, key string, v T, err error) T {
	if err != nil {
		r.Fail(key, err)
	}
	return v
}

func getStore(r reader, id string) (*storeRec, bool) { return get(r, storeKey(id), decodeStore) }

func getItem(r reader, storeID, item string) (*itemRec, bool) {
	return get(r, itemKey(storeID, item), decodeItem)
}

// catalogue is a store's items in catalogue order.
func catalogue(r view, storeID string) []Item {
	var recs []*itemRec
	r.Scan(itemsPrefix(storeID), "", false, func(k string, v []byte) bool {
		it, err := decodeItem(v)
		recs = append(recs, check(r, k, it, err))
		return true
	})
	slices.SortFunc(recs, func(a, b *itemRec) int { return a.Pos - b.Pos })
	out := make([]Item, len(recs))
	for i, it := range recs {
		out[i] = it.Item
	}
	return out
}

func getCart(r reader, user, storeID string) []Line {
	ls, _ := get(r, cartKey(user, storeID), decodeCart)
	return ls
}

// priced is a user's cart at today's prices.
func priced(r reader, st *storeRec, lines []Line) Cart {
	c := Cart{StoreID: st.ID, Lines: []Line{}, DeliveryFee: st.DeliveryFee, Currency: st.Currency}
	for _, l := range lines {
		it, ok := getItem(r, st.ID, l.ItemID)
		if !ok {
			continue
		}
		l.Name, l.Price = it.Item.Name, it.Item.Price
		c.Lines = append(c.Lines, l)
		c.FoodTotal += it.Item.Price * uint64(l.Quantity)
	}
	if len(c.Lines) > 0 {
		c.Total = c.FoodTotal + c.DeliveryFee
	}
	return c
}

func getOrder(r reader, id string) (*Order, bool) { return get(r, orderKey(id), decodeOrder) }

// Store returns a store as anyone sees it at at.
func (s *State) Store(id string, at time.Time) (StoreView, bool) {
	v := s.view()
	defer v.Close()
	st, ok := getStore(v, id)
	if !ok {
		return StoreView{}, false
	}
	return st.view(at, catalogue(v, id)), true
}

// eachStore calls fn with every store, oldest first, until it returns
// false.
func eachStore(r view, fn func(*storeRec) bool) {
	var ids []string
	r.Scan(storesPrefix, "", false, func(_ string, v []byte) bool {
		ids = append(ids, string(v))
		return true
	})
	for _, id := range ids {
		if st, ok := getStore(r, id); ok && !fn(st) {
			return
		}
	}
}

// Stores lists the stores, oldest first, open ones only if openOnly.
func (s *State) Stores(at time.Time, openOnly bool) []StoreView {
	v := s.view()
	defer v.Close()
	out := []StoreView{}
	eachStore(v, func(st *storeRec) bool {
		if v := st.view(at, nil); !openOnly || v.OpenNow {
			out = append(out, v)
		}
		return true
	})
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
	v := s.view()
	defer v.Close()
	out := []Hit{}
	eachStore(v, func(st *storeRec) bool {
		open := OpenAt(st.Hours, at)
		for _, it := range catalogue(v, st.ID) {
			if strings.Contains(strings.ToLower(it.Name), q) {
				out = append(out, Hit{StoreID: st.ID, StoreName: st.Name, OpenNow: open, Item: it})
				if len(out) >= limit {
					return false
				}
			}
		}
		return true
	})
	return out
}

// CartOf is the user's cart at a store.
func (s *State) CartOf(user, storeID string) (Cart, bool) {
	v := s.view()
	defer v.Close()
	st, ok := getStore(v, storeID)
	if !ok {
		return Cart{}, false
	}
	return priced(v, st, getCart(v, user, storeID)), true
}

// Order returns a copy of an order.
func (s *State) Order(id string) (*Order, bool) { return getOrder(s.space, id) }

// OrderFor returns an order to its user, merchant or courier; to anyone
// else it does not exist.
func (s *State) OrderFor(id, user string) (*Order, bool) {
	o, ok := getOrder(s.space, id)
	if !ok || user == "" || (user != o.User && user != o.Merchant && user != o.Courier) {
		return nil, false
	}
	return o, true
}

// UserOrders lists a user's orders, newest first.
func (s *State) UserOrders(user string, limit int) []*Order {
	return s.list(userOrdersPrefix(user), limit)
}

// StoreOrders lists a store's orders, newest first.
func (s *State) StoreOrders(storeID string, limit int) []*Order {
	return s.list(storeOrdersPrefix(storeID), limit)
}

func (s *State) list(prefix string, limit int) []*Order {
	out := []*Order{}
	if limit <= 0 {
		return out
	}
	v := s.view()
	defer v.Close()
	var ids []string
	v.Scan(prefix, "", true, func(_ string, id []byte) bool {
		ids = append(ids, string(id))
		return len(ids) < limit
	})
	for _, id := range ids {
		if o, ok := getOrder(v, id); ok {
			out = append(out, o)
		}
	}
	return out
}

// Claimable lists the orders a courier may claim, oldest first.
func (s *State) Claimable(limit int) []*Order {
	out := []*Order{}
	if limit <= 0 {
		return out
	}
	v := s.view()
	defer v.Close()
	var ids []string
	v.Scan(openPrefix, "", false, func(k string, _ []byte) bool {
		ids = append(ids, k[len(openPrefix)+9:])
		return len(ids) < limit
	})
	for _, id := range ids {
		if o, ok := getOrder(v, id); ok {
			out = append(out, o)
		}
	}
	return out
}

// Courier reports whether a user is online as a courier.
func (s *State) Courier(user string) bool {
	_, ok := s.space.Get(courierKey(user))
	return ok
}

// StoreOwner is the merchant of a store.
func (s *State) StoreOwner(id string) (string, bool) {
	st, ok := getStore(s.space, id)
	if !ok {
		return "", false
	}
	return st.Merchant, true
}

// Orders calls fn with every order (for checks and digests), by id, as
// of one moment. It reads a page at a time: fn runs outside the store's
// scan.
func (s *State) Orders(fn func(*Order)) {
	const page = 256
	v := s.view()
	defer v.Close()
	start := ordersPrefix
	for {
		var os []*Order
		v.Scan(ordersPrefix, start, false, func(k string, b []byte) bool {
			o, err := decodeOrder(b)
			os = append(os, check(v, k, o, err))
			return len(os) < page
		})
		for _, o := range os {
			fn(o)
		}
		if len(os) < page {
			return
		}
		start = orderKey(os[len(os)-1].ID) + "\x00"
	}
}

// unsettled lists the orders whose money may still have to move, for the
// settlement to look at after a restart (nothing replays their changes):
// every order not ended, and those that ended up to window before the
// last one did.
func (s *State) unsettled(window time.Duration) []string {
	var ids []string
	s.space.Scan(unendedPrefix, "", false, func(k string, _ []byte) bool {
		ids = append(ids, k[len(unendedPrefix):])
		return true
	})
	return append(ids, s.space.Recent(endedIndex, window)...)
}
