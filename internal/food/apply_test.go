package food

import (
	"encoding/json"
	"testing"
	"time"

	"superapp/internal/apperr"
	"superapp/internal/cmdlog"
	"superapp/internal/ledger"
	"superapp/internal/store"
	"superapp/internal/store/storetest"
)

// monday noon in Seoul.
var noon = time.Date(2026, 11, 23, 12, 0, 0, 0, Seoul)

type fixture struct {
	t     *testing.T
	st    *State
	space *store.Space
	n     int
}

// apply applies one command as an entry of its own, as a machine does.
func (f *fixture) apply(seq uint64, e *cmdlog.Envelope) (any, *apperr.Error) {
	e.Cursor = cmdlog.CursorOf(seq, 0)
	tx := f.space.Begin()
	defer func() {
		tx.Commit()
		tx.RunAfterCommit()
	}()
	return f.st.Apply(seq, e)
}

func (f *fixture) do(kind, actor string, data any) (any, *apperr.Error) {
	f.t.Helper()
	raw, err := json.Marshal(data)
	if err != nil {
		f.t.Fatal(err)
	}
	f.n++
	return f.apply(uint64(f.n), &cmdlog.Envelope{ID: kind + "/" + itoa(int64(f.n)), Kind: kind, Actor: actor, At: noon, Data: raw})
}

func (f *fixture) ok(kind, actor string, data any) any {
	f.t.Helper()
	v, err := f.do(kind, actor, data)
	if err != nil {
		f.t.Fatalf("%s by %s: %v", kind, actor, err)
	}
	return v
}

func (f *fixture) refused(kind, actor string, data any, code string) {
	f.t.Helper()
	if _, err := f.do(kind, actor, data); err == nil || err.Code != code {
		f.t.Fatalf("%s by %s: %v, want %s", kind, actor, err, code)
	}
}

func (f *fixture) stock(store, item string) int64 {
	f.t.Helper()
	v, _ := f.st.Store(store, noon)
	for _, it := range v.Items {
		if it.ID == item {
			return *it.Stock
		}
	}
	f.t.Fatalf("no item %s", item)
	return 0
}

func newFixture(t *testing.T) *fixture {
	sp := storetest.Space(t, Stream)
	f := &fixture{t: t, st: NewState(sp), space: sp}
	f.ok(kindStore, "shop", storeCmd{StoreID: "s1", Name: "Kimbap", DeliveryFee: 3000, Hours: []Hours{{Day: 1, Open: "09:00", Close: "21:00"}}})
	five := int64(5)
	f.ok(kindItem, "shop", itemCmd{StoreID: "s1", Item: Item{ID: "kimbap", Name: "Tuna kimbap", Price: 4500, Stock: &five}})
	f.ok(kindItem, "shop", itemCmd{StoreID: "s1", Item: Item{ID: "soup", Name: "Miso soup", Price: 1000}})
	return f
}

func (f *fixture) order(user, id string, qty int64) placeCmd {
	return placeCmd{OrderID: id, StoreID: "s1", Address: "Gangnam", Lines: []Line{{ItemID: "kimbap", Price: 4500, Quantity: qty}},
		FoodTotal: 4500 * uint64(qty), DeliveryFee: 3000, HoldID: ledger.IDFrom("hold/" + id)}
}

// TestStockOnce: an order takes its stock once, however often it is
// applied; one that would overdraw is refused whole; cancelled and
// rejected orders give their stock back.
func TestStockOnce(t *testing.T) {
	f := newFixture(t)
	f.ok(kindPlace, "kim", f.order("kim", "o1", 3))
	f.ok(kindPlace, "kim", f.order("kim", "o1", 3)) // the same order again
	if n := f.stock("s1", "kimbap"); n != 2 {
		t.Fatalf("stock %d, want 2", n)
	}
	// Two lines of the same item count together; nothing is half-taken.
	over := f.order("lee", "o2", 2)
	over.Lines = append(over.Lines, Line{ItemID: "soup", Price: 1000, Quantity: 1}, Line{ItemID: "kimbap", Price: 4500, Quantity: 1})
	over.FoodTotal = 4500*3 + 1000
	f.refused(kindPlace, "lee", over, OutOfStock)
	if n := f.stock("s1", "kimbap"); n != 2 {
		t.Fatalf("stock after refusal %d", n)
	}
	if _, ok := f.st.Order("o2"); ok {
		t.Fatal("a refused order exists")
	}
	bad := f.order("lee", "o3", 1)
	bad.Lines[0].Price = 4000
	bad.FoodTotal = 4000
	f.refused(kindPlace, "lee", bad, PriceChanged)
	f.ok(kindPlace, "lee", f.order("lee", "o4", 2))
	if n := f.stock("s1", "kimbap"); n != 0 {
		t.Fatalf("stock %d, want 0", n)
	}
	f.refused(kindPlace, "park", f.order("park", "o5", 1), OutOfStock)

	// The user cancels (placed: free) and the merchant rejects: stock back, once.
	f.ok(kindCancel, "kim", orderCmd{OrderID: "o1"})
	f.refused(kindCancel, "kim", orderCmd{OrderID: "o1"}, apperr.Conflict)
	f.ok(kindReject, "shop", orderCmd{OrderID: "o4"})
	f.refused(kindCancel, "shop", orderCmd{OrderID: "o4"}, apperr.Conflict)
	if n := f.stock("s1", "kimbap"); n != 5 {
		t.Fatalf("stock %d, want 5", n)
	}
	// Closed at night, Seoul time.
	night := f.order("kim", "o6", 1)
	raw, _ := json.Marshal(night)
	if _, err := f.apply(99, &cmdlog.Envelope{ID: "late", Kind: kindPlace, Actor: "kim", At: noon.Add(10 * time.Hour), Data: raw}); err == nil || err.Code != StoreClosed {
		t.Fatalf("ordered at 22:00: %v", err)
	}
}

// TestDoubleClaim: two couriers claim one order; the first in the log gets
// it, the second is refused, and only the first may pick it up and deliver.
func TestDoubleClaim(t *testing.T) {
	f := newFixture(t)
	f.ok(kindPlace, "kim", f.order("kim", "o1", 1))
	f.ok(kindOnline, "c1", struct{}{})
	f.ok(kindOnline, "c2", struct{}{})
	f.refused(kindClaim, "c1", orderCmd{OrderID: "o1"}, apperr.Conflict) // not accepted yet
	f.refused(kindAccept, "kim", orderCmd{OrderID: "o1"}, apperr.Forbidden)
	f.refused(kindAccept, "other-shop", orderCmd{OrderID: "o1"}, apperr.NotFound)
	f.ok(kindAccept, "shop", orderCmd{OrderID: "o1"})
	if n := len(f.st.Claimable(10)); n != 1 {
		t.Fatalf("claimable %d", n)
	}
	f.ok(kindClaim, "c1", orderCmd{OrderID: "o1"})
	f.refused(kindClaim, "c2", orderCmd{OrderID: "o1"}, AlreadyClaimed)
	f.refused(kindClaim, "nobody", orderCmd{OrderID: "o1"}, CourierOffline)
	if n := len(f.st.Claimable(10)); n != 0 {
		t.Fatalf("claimable after claim %d", n)
	}
	f.ok(kindPreparing, "shop", orderCmd{OrderID: "o1"})
	f.ok(kindReady, "shop", orderCmd{OrderID: "o1"})
	f.refused(kindPickup, "c2", orderCmd{OrderID: "o1"}, apperr.Forbidden)
	f.ok(kindPickup, "c1", orderCmd{OrderID: "o1"})
	f.refused(kindDeliver, "c2", orderCmd{OrderID: "o1"}, apperr.Forbidden)
	f.refused(kindCancel, "shop", orderCmd{OrderID: "o1"}, apperr.Conflict) // on its way
	f.ok(kindDeliver, "c1", orderCmd{OrderID: "o1"})
	o, _ := f.st.Order("o1")
	if o.Status != StatusDelivered || o.Courier != "c1" || o.PlatformFee != 225 || o.Total != 7500 {
		t.Fatalf("order: %+v", o)
	}
	if n := f.stock("s1", "kimbap"); n != 4 {
		t.Fatalf("stock %d, want 4", n)
	}
	if _, ok := f.st.OrderFor("o1", "c2"); ok {
		t.Fatal("another courier reads the order")
	}
	if _, ok := f.st.OrderFor("o1", "lee"); ok {
		t.Fatal("a stranger reads the order")
	}
	// Refunds: the merchant only, up to what it was paid.
	f.refused(kindRefund, "kim", orderCmd{OrderID: "o1", Amount: 100}, apperr.Forbidden)
	f.refused(kindRefund, "shop", orderCmd{OrderID: "o1", Amount: 4500}, apperr.Invalid)
	f.ok(kindRefund, "shop", orderCmd{OrderID: "o1", Amount: 4275})
}

// TestCancelRaces: the user's cancel after the merchant accepted loses;
// the merchant's cancel after a claim still wins until pickup; a claim
// after a cancel loses.
func TestCancelRaces(t *testing.T) {
	f := newFixture(t)
	f.ok(kindOnline, "c1", struct{}{})
	f.ok(kindPlace, "kim", f.order("kim", "o1", 1))
	f.ok(kindAccept, "shop", orderCmd{OrderID: "o1"})
	f.refused(kindCancel, "kim", orderCmd{OrderID: "o1"}, apperr.Conflict)
	f.refused(kindCancel, "c1", orderCmd{OrderID: "o1"}, apperr.Forbidden)
	f.ok(kindClaim, "c1", orderCmd{OrderID: "o1"})
	f.ok(kindCancel, "shop", orderCmd{OrderID: "o1"})
	f.refused(kindPickup, "c1", orderCmd{OrderID: "o1"}, apperr.Conflict)

	f.ok(kindPlace, "kim", f.order("kim", "o2", 1))
	f.ok(kindCancel, "kim", orderCmd{OrderID: "o2"})
	f.refused(kindAccept, "shop", orderCmd{OrderID: "o2"}, apperr.Conflict)
	f.refused(kindClaim, "c1", orderCmd{OrderID: "o2"}, apperr.Conflict)

	// The system cancels an order whose hold the ledger refused.
	f.ok(kindPlace, "kim", f.order("kim", "o3", 1))
	f.ok(kindCancel, "", orderCmd{OrderID: "o3", System: true, Reason: "payment_failed"})
	if o, _ := f.st.Order("o3"); o.CancelledBy != "system" {
		t.Fatalf("order: %+v", o)
	}
	if n := f.stock("s1", "kimbap"); n != 5 {
		t.Fatalf("stock %d, want 5", n)
	}
}

// TestOpenAt reads opening hours in Seoul time, past midnight too.
func TestOpenAt(t *testing.T) {
	late := []Hours{{Day: 5, Open: "18:00", Close: "02:00"}} // Friday night
	fri := time.Date(2026, 11, 27, 23, 0, 0, 0, Seoul)
	for _, c := range []struct {
		at   time.Time
		open bool
	}{{fri, true}, {fri.Add(2 * time.Hour), true}, {fri.Add(3 * time.Hour), false}, {fri.Add(-6 * time.Hour), false}, {fri.UTC(), true}} {
		if got := OpenAt(late, c.at); got != c.open {
			t.Errorf("open at %v: %v", c.at, got)
		}
	}
}
