package food

import (
	"encoding/json"
	"slices"
	"strconv"
	"testing"
	"time"

	"superapp/internal/cmdlog"
	"superapp/internal/ledger"
	"superapp/internal/store"
	"superapp/internal/store/storetest"
	"superapp/internal/store/storetest/streamtest"
)

// replica is one node's food read model on its own store.
type replica struct {
	st *State
	m  *cmdlog.Machine
}

func newReplica(db *store.DB) replica {
	sp := db.Space(Stream)
	st := NewState(sp)
	return replica{st: st, m: streamtest.Machine(Stream, sp, st.Apply)}
}

// script writes FOOD entries, some of several commands.
type script struct{ streamtest.Script }

// answers is every query of the read model at at.
func (r replica) answers(t *testing.T, at time.Time) string {
	t.Helper()
	users := []string{"kim", "lee", "park", "shop", "mart", "c1", "c2", "nobody"}
	out := map[string]any{
		"stores":     r.st.Stores(at, false),
		"open":       r.st.Stores(at, true),
		"search":     r.st.Search("kimbap", at, 50),
		"search1":    r.st.Search("o", at, 1),
		"claimable":  r.st.Claimable(100),
		"claimable1": r.st.Claimable(1),
	}
	for _, id := range []string{"s1", "s2", "s3"} {
		v, ok := r.st.Store(id, at)
		out["store/"+id] = []any{v, ok}
		owner, ok := r.st.StoreOwner(id)
		out["owner/"+id] = []any{owner, ok}
		out["store-orders/"+id] = r.st.StoreOrders(id, 200)
		for _, u := range users {
			c, ok := r.st.CartOf(u, id)
			out["cart/"+u+"/"+id] = []any{c, ok}
		}
	}
	for _, u := range users {
		out["orders/"+u] = r.st.UserOrders(u, 100)
		out["orders1/"+u] = r.st.UserOrders(u, 1)
		out["courier/"+u] = r.st.Courier(u)
	}
	for i := range 8 {
		id := "o" + strconv.Itoa(i)
		o, ok := r.st.Order(id)
		out["order/"+id] = []any{o, ok}
		for _, u := range users {
			o, ok := r.st.OrderFor(id, u)
			out["for/"+id+"/"+u] = []any{o, ok}
		}
	}
	var all []*Order
	r.st.Orders(func(o *Order) { all = append(all, o) })
	out["all"] = all
	unsettled := r.st.unsettled(time.Hour)
	slices.Sort(unsettled)
	out["unsettled"] = unsettled
	b, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func (sc *script) order(user, id, store, item string, price uint64, qty int64, fee uint64) placeCmd {
	return placeCmd{OrderID: id, StoreID: store, Address: "Gangnam", Lines: []Line{{ItemID: item, Price: price, Quantity: qty}},
		FoodTotal: price * uint64(qty), DeliveryFee: fee, HoldID: ledger.IDFrom("hold/" + id), DC: "dc1"}
}

// TestRestart: a node restarted on its own store resumes at the next
// entry, answers every query as a node that applied the whole stream, and
// goes on applying in step with it.
func TestRestart(t *testing.T) {
	sc := &script{streamtest.Script{At: noon}}
	week := []Hours{{Day: 1, Open: "09:00", Close: "21:00"}, {Day: 2, Open: "22:00", Close: "02:00"}}
	sc.Add(kindStore, "shop", storeCmd{StoreID: "s1", Name: "Kimbap Heaven", DeliveryFee: 3000, Hours: week})
	sc.Add(kindStore, "mart", storeCmd{StoreID: "s2", Name: "Night Mart", DeliveryFee: 0, Hours: []Hours{{Day: 3, Open: "10:00", Close: "11:00"}}})
	five, two := int64(5), int64(2)
	sc.Queue(kindItem, "shop", itemCmd{StoreID: "s1", Item: Item{ID: "kimbap", Name: "Tuna kimbap", Price: 4500, Stock: &five}})
	sc.Queue(kindItem, "shop", itemCmd{StoreID: "s1", Item: Item{ID: "soup", Name: "Miso soup", Price: 1000}})
	sc.Queue(kindItem, "mart", itemCmd{StoreID: "s2", Item: Item{ID: "milk", Name: "Milk", Price: 2000, Stock: &two}})
	sc.Queue(kindItem, "shop", itemCmd{StoreID: "s1", Item: Item{ID: "roll", Name: "Cheese kimbap roll", Price: 5000}})
	sc.Queue(kindItem, "shop", itemCmd{StoreID: "s1", Item: Item{ID: "kimbap", Name: "Tuna kimbap", Price: 4500, Stock: &five}}) // replaced: keeps its place
	sc.Together()
	sc.Add(kindOnline, "c1", struct{}{})
	sc.Add(kindOnline, "c2", struct{}{})
	sc.Add(kindCart, "kim", cartCmd{StoreID: "s1", ItemID: "kimbap", Quantity: 2})
	sc.Add(kindCart, "kim", cartCmd{StoreID: "s1", ItemID: "soup", Quantity: 1})
	sc.Add(kindCart, "lee", cartCmd{StoreID: "s1", ItemID: "roll", Quantity: 3})
	sc.Add(kindCart, "park", cartCmd{StoreID: "s2", ItemID: "milk", Quantity: 1})
	// o0: delivered by c1 and partly refunded.
	sc.Add(kindPlace, "kim", sc.order("kim", "o0", "s1", "kimbap", 4500, 2, 3000))
	sc.Add(kindAccept, "shop", orderCmd{OrderID: "o0"})
	sc.Add(kindClaim, "c1", orderCmd{OrderID: "o0"})
	sc.Add(kindPreparing, "shop", orderCmd{OrderID: "o0"})
	sc.Add(kindReady, "shop", orderCmd{OrderID: "o0"})
	sc.Add(kindPickup, "c1", orderCmd{OrderID: "o0"})
	sc.Add(kindDeliver, "c1", orderCmd{OrderID: "o0"})
	sc.Add(kindRefund, "shop", orderCmd{OrderID: "o0", Amount: 1000})
	// o1: accepted, waiting for a courier; o2: placed; o3: rejected; o4:
	// cancelled by its user; o5: claimed by c2, preparing.
	sc.Add(kindPlace, "lee", sc.order("lee", "o1", "s1", "roll", 5000, 3, 3000))
	sc.Add(kindAccept, "shop", orderCmd{OrderID: "o1"})
	sc.Queue(kindPlace, "park", sc.order("park", "o2", "s1", "soup", 1000, 4, 3000))
	sc.Queue(kindPlace, "park", sc.order("park", "o3", "s1", "kimbap", 4500, 1, 3000))
	sc.Queue(kindReject, "shop", orderCmd{OrderID: "o3", Reason: "closing early"})
	sc.Queue(kindPlace, "lee", sc.order("lee", "o4", "s1", "kimbap", 4500, 3, 3000))
	sc.Together()
	sc.Add(kindCancel, "lee", orderCmd{OrderID: "o4"})
	sc.Add(kindPlace, "kim", sc.order("kim", "o5", "s1", "soup", 1000, 1, 3000))
	sc.Add(kindAccept, "shop", orderCmd{OrderID: "o5"})
	sc.Add(kindClaim, "c2", orderCmd{OrderID: "o5"})
	sc.Add(kindPreparing, "shop", orderCmd{OrderID: "o5"})
	// Refused: out of stock, a second claim, a stranger.
	sc.Add(kindPlace, "kim", sc.order("kim", "o6", "s1", "kimbap", 4500, 9, 3000))
	sc.Add(kindClaim, "c1", orderCmd{OrderID: "o5"})
	sc.Add(kindCancel, "nobody", orderCmd{OrderID: "o1"})
	sc.Add(kindOffline, "c1", struct{}{})
	first := sc.Entries

	// A node that restarts after any entry answers as before it stopped.
	db := storetest.Open(t)
	node := newReplica(db)
	streamtest.Restore(t, node.m, 0)
	for i, e := range first {
		node.m.Apply(uint64(i+1), e, 0)
		again := newReplica(db)
		streamtest.Restore(t, again.m, uint64(i+1))
		if got, want := again.answers(t, noon), node.answers(t, noon); got != want {
			t.Fatalf("restarted after entry %d:\n%s\nbefore:\n%s", i+1, got, want)
		}
	}
	whole := newReplica(storetest.Open(t))
	streamtest.Apply(whole.m, 1, first)
	restarted := newReplica(db)
	streamtest.Restore(t, restarted.m, uint64(len(first)))
	if got, want := restarted.answers(t, noon), whole.answers(t, noon); got != want {
		t.Fatalf("restarted:\n%s\nreplayed everything:\n%s", got, want)
	}
	streamtest.SameDigest(t, restarted.m, whole.m)
	if n := len(restarted.st.Claimable(100)); n != 1 { // o1
		t.Fatalf("claimable: %d", n)
	}
	// Commands of one entry see what the earlier ones wrote.
	if v, _ := restarted.st.Store("s1", noon); len(v.Items) != 3 || v.Items[0].ID != "kimbap" || v.Items[1].ID != "soup" ||
		v.Items[2].ID != "roll" || *v.Items[0].Stock != 3 {
		t.Fatalf("s1: %+v", v)
	}
	if o, _ := restarted.st.Order("o3"); o.Status != StatusRejected {
		t.Fatalf("o3: %+v", o)
	}
	unsettled := restarted.st.unsettled(time.Hour)
	slices.Sort(unsettled)
	if want := []string{"o0", "o1", "o2", "o3", "o4", "o5"}; !slices.Equal(unsettled, want) {
		t.Fatalf("unsettled: %v, want %v", unsettled, want)
	}

	// Both go on: the restarted node decides as the other one does.
	sc.Entries = nil
	sc.Add(kindClaim, "c2", orderCmd{OrderID: "o1"})
	sc.Add(kindCancel, "shop", orderCmd{OrderID: "o5"})
	sc.Add(kindAccept, "shop", orderCmd{OrderID: "o2"})
	sc.Add(kindClaim, "c1", orderCmd{OrderID: "o2"}) // offline: refused
	sc.Add(kindCart, "kim", cartCmd{StoreID: "s1", ItemID: "soup", Quantity: 0})
	sc.Add(kindPlace, "kim", sc.order("kim", "o7", "s1", "kimbap", 4500, 2, 3000))
	sc.Add(kindItem, "shop", itemCmd{StoreID: "s1", Item: Item{ID: "kimchi", Name: "Kimchi kimbap", Price: 4000}})
	more := sc.Entries
	streamtest.Apply(restarted.m, uint64(len(first)+1), more)
	streamtest.Apply(whole.m, uint64(len(first)+1), more)
	streamtest.SameDigest(t, restarted.m, whole.m)
	if got, want := restarted.answers(t, noon), whole.answers(t, noon); got != want {
		t.Fatalf("restarted:\n%s\nreplayed everything:\n%s", got, want)
	}
	if o, _ := restarted.st.Order("o7"); o == nil || o.Status != StatusPlaced {
		t.Fatalf("o7: %+v", o)
	}
}
