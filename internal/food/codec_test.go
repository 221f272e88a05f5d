package food

import (
	"encoding/json"
	"testing"
	"time"

	"superapp/internal/ledger"
)

// TestCodec: what is stored reads back as it was written, every field,
// times with their zone.
func TestCodec(t *testing.T) {
	same := func(what string, got, want any, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		if string(g) != string(w) {
			t.Fatalf("%s:\n%s\n%s", what, g, w)
		}
	}
	ended := noon.Add(time.Hour).UTC()
	full := &Order{ID: "o", User: "u", StoreID: "s", Merchant: "m", Courier: "c", Status: StatusDelivered,
		Lines: []Line{{ItemID: "a", Name: "A", Price: 100, Quantity: 2}, {ItemID: "b", Price: 5, Quantity: 1}}, Address: "Gangnam",
		FoodTotal: 205, DeliveryFee: 3000, PlatformFee: 10, Total: 3205, Currency: Currency, HoldID: ledger.IDFrom("h"), Refunded: 50,
		HomeDC: "dc1", PlacedAt: noon, UpdatedAt: noon.Add(time.Minute), EndedAt: &ended, CancelledBy: "user", Reason: "late"}
	for _, o := range []*Order{full, {ID: "bare", Lines: []Line{}}} {
		got, err := decodeOrder(encodeOrder(o))
		same("order", got, o, err)
	}
	st := &storeRec{Store: Store{ID: "s", Merchant: "m", Name: "Kimbap", Hours: []Hours{{Day: 1, Open: "09:00", Close: "21:00"}, {Day: 5, Open: "18:00", Close: "02:00"}},
		DeliveryFee: 3000, Currency: Currency, CreatedAt: noon}, Items: 7, Next: 9}
	gotStore, err := decodeStore(encodeStore(st))
	same("store", gotStore, st, err)
	n := int64(-3)
	for _, it := range []*itemRec{{Pos: 4, Item: Item{ID: "i", Name: "Tuna", Price: 4500, Stock: &n}}, {Item: Item{ID: "j"}}} {
		got, err := decodeItem(encodeItem(it))
		same("item", got, it, err)
	}
	for _, ls := range [][]Line{full.Lines, {}} {
		got, err := decodeCart(encodeCart(ls))
		same("cart", got, ls, err)
	}
	if _, err := decodeOrder(encodeOrder(full)[:30]); err == nil {
		t.Fatal("a cut record decodes")
	}
}
