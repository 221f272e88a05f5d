package food

import (
	"encoding/json"
	"io"
	"log/slog"
	"strconv"
	"testing"

	"superapp/internal/cmdlog"
	"superapp/internal/ledger"
	"superapp/internal/store"
)

// BenchmarkApplyOrder measures what every node does for one order, from
// the cart to delivery: eight stream entries (cart, place, accept, claim,
// preparing, ready, pickup, deliver), each applied through a Machine on a
// real store, against a store of 200 items.
func BenchmarkApplyOrder(b *testing.B) {
	st := newBenchState(b)
	m := cmdlog.NewMachine(Stream, st.space, st.Apply, slog.New(slog.NewTextHandler(io.Discard, nil)))
	seq := uint64(0)
	apply := func(kind, actor string, data any) {
		raw, _ := json.Marshal(data)
		seq++
		e, _ := json.Marshal(cmdlog.Envelope{ID: "c" + strconv.FormatUint(seq, 10), Kind: kind, Actor: actor, At: noon, Data: raw})
		m.Apply(seq, e, 0)
	}
	apply(kindStore, "shop", storeCmd{StoreID: "s1", Name: "Kimbap", DeliveryFee: 3000, Hours: []Hours{{Day: 1, Open: "09:00", Close: "21:00"}}})
	for i := range 200 {
		stock := int64(1 << 40)
		apply(kindItem, "shop", itemCmd{StoreID: "s1", Item: Item{ID: "item" + strconv.Itoa(i), Name: "Item " + strconv.Itoa(i), Price: 1000, Stock: &stock}})
	}
	apply(kindOnline, "courier", struct{}{})
	i := 0
	for b.Loop() {
		user, id, item := "u"+strconv.Itoa(i%1000), "o"+strconv.Itoa(i), "item"+strconv.Itoa(i%200)
		i++
		apply(kindCart, user, cartCmd{StoreID: "s1", ItemID: item, Quantity: 2})
		apply(kindPlace, user, placeCmd{OrderID: id, StoreID: "s1", Address: "Gangnam", Lines: []Line{{ItemID: item, Price: 1000, Quantity: 2}},
			FoodTotal: 2000, DeliveryFee: 3000, HoldID: ledger.IDFrom("hold/" + id)})
		for _, k := range []string{kindAccept, kindClaim, kindPreparing, kindReady, kindPickup, kindDeliver} {
			actor := "shop"
			if k == kindClaim || k == kindPickup || k == kindDeliver {
				actor = "courier"
			}
			apply(k, actor, orderCmd{OrderID: id})
		}
	}
	if o, ok := st.Order("o0"); !ok || o.Status != StatusDelivered {
		b.Fatalf("o0: %+v", o)
	}
}

type benchState struct {
	*State
	space *store.Space
}

// newBenchState opens a store as a node does (the default block cache).
func newBenchState(tb testing.TB) benchState {
	db, err := store.Open(tb.TempDir(), store.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = db.Close() })
	sp := db.Space(Stream)
	return benchState{State: NewState(sp), space: sp}
}
