package food

import (
	"time"

	"superapp/internal/store"
)

// The FOOD stream's read model in the state store, under "FOOD/". All of
// it lives on disk: nothing of food is held in memory (an order can wait
// for its merchant indefinitely, so even the unfinished ones are not
// bounded by design).
//
//	store/<store id>                        storeRec (codec.go): a store, without its items
//	stores/<Seq(cursor)>                    store id: every store, oldest first
//	item/<store id>/<item id>               itemRec (codec.go): an item and its place in the catalogue
//	cart/<user id>/<store id>               []Line (codec.go): a user's cart at a store
//	order/<order id>                        Order (codec.go): every order
//	user-order/<user id>/<Seq(cursor)>      order id: a user's orders, oldest first
//	store-order/<store id>/<Seq(cursor)>    order id: a store's orders, oldest first
//	open/<Seq(placed at)>/<order id>        "": orders a courier may claim, oldest first
//	                                        (accepted, not claimed, not ended)
//	courier/<user id>                       "": users online as couriers
//	unended/<order id>                      "": orders not ended, for the settlement
//	ended/<Seq(ended at)>/<order id>        "": orders by when they ended (Unix ns), for
//	                                        the settlement to look at again after a restart

func storeKey(id string) string           { return store.Key("store", id) }
func storesKey(cursor uint64) string      { return store.Key("stores", store.Seq(cursor)) }
func itemKey(storeID, item string) string { return store.Key("item", storeID, item) }
func itemsPrefix(storeID string) string   { return store.Key("item", storeID) + "/" }
func cartKey(user, storeID string) string { return store.Key("cart", user, storeID) }
func orderKey(id string) string           { return store.Key("order", id) }
func courierKey(user string) string       { return store.Key("courier", user) }
func unendedKey(id string) string         { return store.Key("unended", id) }
func userOrdersPrefix(user string) string { return store.Key("user-order", user) + "/" }
func storeOrdersPrefix(id string) string  { return store.Key("store-order", id) + "/" }
func userOrderKey(user string, c uint64) string {
	return userOrdersPrefix(user) + store.Seq(c)
}
func storeOrderKey(id string, c uint64) string { return storeOrdersPrefix(id) + store.Seq(c) }
func openKey(o *Order) string {
	return store.Key("open", store.Seq(uint64(o.PlacedAt.UnixNano())), o.ID)
}
func endedKey(at time.Time, id string) string { return store.TimeKey(endedIndex, at, id) }

const (
	storesPrefix  = "stores/"
	ordersPrefix  = "order/"
	openPrefix    = "open/"
	unendedPrefix = "unended/"
	endedIndex    = "ended" // store.TimeKey
)
