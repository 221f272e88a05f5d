package food

import (
	"strconv"
	"testing"

	"superapp/internal/ledger"
	"superapp/internal/store/storetest"
	"superapp/internal/store/storetest/streamtest"
)

// BenchmarkApplyOrder measures what every node does for one order, from
// the cart to delivery: eight stream entries (cart, place, accept, claim,
// preparing, ready, pickup, deliver), each applied through a Machine on a
// real store, against a store of 200 items.
func BenchmarkApplyOrder(b *testing.B) {
	sp := storetest.OpenDefault(b).Space(Stream)
	st := NewState(sp)
	f := &streamtest.Feeder{Script: streamtest.Script{At: noon}, M: streamtest.Machine(Stream, sp, st.Apply)}
	apply := f.Apply
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
