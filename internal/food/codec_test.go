package food

import (
	"encoding/hex"
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

// TestCodecFormat: records are stored byte for byte as they always were,
// so that a store on disk reads the same after any change to the code.
func TestCodecFormat(t *testing.T) {
	ended := noon.Add(time.Hour).UTC()
	stock := int64(-3)
	o := &Order{ID: "o", User: "u", StoreID: "s", Merchant: "m", Courier: "c", Status: StatusDelivered,
		Lines: []Line{{ItemID: "a", Name: "A", Price: 100, Quantity: 2}}, Address: "Gangnam", FoodTotal: 200, DeliveryFee: 3000,
		PlatformFee: 10, Total: 3210, Currency: Currency, HoldID: ledger.IDFrom("h"), Refunded: 50, HomeDC: "dc1", PlacedAt: noon,
		UpdatedAt: noon.Add(time.Minute), EndedAt: &ended, CancelledBy: "user", Reason: "late"}
	st := &storeRec{Store: Store{ID: "s", Merchant: "m", Name: "Kimbap", Hours: []Hours{{Day: 5, Open: "18:00", Close: "02:00"}},
		DeliveryFee: 3000, Currency: Currency, CreatedAt: noon}, Items: 7, Next: 9}
	for _, c := range []struct{ what, got, want string }{
		{"order", hex.EncodeToString(encodeOrder(o)), "01016f01750173016d01630964656c697665726564010161014164040747616e676e616dc801b8170a8a19034b5257aaa9402664f1a41f40ebbc52c9993eb6320364633101e0b09db00d00a0fa0301d8b19db00d00a0fa03010180e99db00d00000475736572046c617465"},
		{"bare order", hex.EncodeToString(encodeOrder(&Order{ID: "bare"})), "0104626172650000000000000000000000000000000000000000000000000000000000000000000000"},
		{"store", hex.EncodeToString(encodeStore(st)), "010173016d064b696d626170010a0531383a30300530323a3030b817034b525701e0b09db00d00a0fa030e12"},
		{"item", hex.EncodeToString(encodeItem(&itemRec{Pos: 4, Item: Item{ID: "i", Name: "Tuna", Price: 4500, Stock: &stock}})), "010801690454756e6194230105"},
		{"cart", hex.EncodeToString(encodeCart(o.Lines)), "0101016101416404"},
	} {
		if c.got != c.want {
			t.Errorf("%s stored as\n%s\nwant\n%s", c.what, c.got, c.want)
		}
	}
}
