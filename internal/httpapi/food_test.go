package httpapi_test

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"superapp/client"
	"superapp/internal/node/nodetest"
	"superapp/internal/pay"
)

// allWeek is a store open around the clock, every day.
const allWeek = `[{"day":0,"open":"00:00","close":"24:00"},{"day":1,"open":"00:00","close":"24:00"},{"day":2,"open":"00:00","close":"24:00"},` +
	`{"day":3,"open":"00:00","close":"24:00"},{"day":4,"open":"00:00","close":"24:00"},{"day":5,"open":"00:00","close":"24:00"},{"day":6,"open":"00:00","close":"24:00"}]`

// foodFrames reads a user's event stream, live: its food frames only.
func foodFrames(t *testing.T, ctx context.Context, url string, user *client.Client) <-chan map[string]any {
	t.Helper()
	ws := dialEvents(t, ctx, url, user.AccessToken())
	out := make(chan map[string]any, 64)
	live := make(chan struct{})
	go func() {
		defer close(out)
		defer ws.CloseNow()
		for {
			_, b, err := ws.Read(ctx)
			if err != nil {
				return
			}
			var f map[string]any
			if json.Unmarshal(b, &f) != nil {
				continue
			}
			switch t, _ := f["type"].(string); {
			case t == "sync.done":
				close(live)
			case strings.HasPrefix(t, "food."):
				select {
				case out <- f:
				default:
				}
			}
		}
	}()
	select {
	case <-live:
	case <-time.After(10 * time.Second):
		t.Fatal("event stream never went live")
	}
	return out
}

func nextOrderStatus(t *testing.T, ch <-chan map[string]any, status string) {
	t.Helper()
	for {
		select {
		case f := <-ch:
			if o, _ := f["order"].(map[string]any); o["status"] == status {
				return
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no food.order frame with status %s within 10s", status)
		}
	}
}

func paymentStatus(r resp) any {
	p, _ := r.body["payment"].(map[string]any)
	return p["status"]
}

// TestFoodOrder is a food order from cart to delivery through the public
// API: stock taken once, the money split to the won between the merchant,
// the courier and the platform, a refund, a cancellation, and nobody
// acting on what is not theirs.
func TestFoodOrder(t *testing.T) {
	clock := nodetest.NewClock()
	n := nodetest.Start(t, clock.Now)
	e := &env{t: t, url: nodetest.URL(n), clock: clock}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	kim, _ := e.user("Kim")
	shop, _ := e.user("Shop")
	other, _ := e.user("Other")
	cara, _ := e.user("Cara")
	dan, _ := e.user("Dan")
	eve, _ := e.user("Eve")
	e.ok("POST", "/v1/wallet/topups", kim.AccessToken(), `{"id":"t1","amount":100000,"currency":"KRW"}`, 201)

	// Only merchants open stores; bad input names its field.
	storeBody := `{"id":"s1","name":"Kimbap Heaven","hours":` + allWeek + `,"delivery_fee":3000}`
	e.refused("POST", "/v1/food/stores", shop.AccessToken(), storeBody, 403, "not_merchant", "")
	e.ok("POST", "/v1/merchants", shop.AccessToken(), `{"name":"Kimbap Heaven"}`, 201)
	e.ok("POST", "/v1/merchants", other.AccessToken(), `{"name":"Other"}`, 201)
	e.refused("POST", "/v1/food/stores", shop.AccessToken(), `{"id":"s1","name":"K","hours":[{"day":9,"open":"09:00","close":"21:00"}]}`, 400, "invalid_field", "hours[0].day")
	e.refused("POST", "/v1/food/stores", shop.AccessToken(), `{"id":"s1","hours":`+allWeek+`}`, 400, "invalid_field", "name")
	e.refused("POST", "/v1/food/stores", shop.AccessToken(), `{"id":"s1","name":"K","hours":[{"day":1,"open":"9am","close":"21:00"}]}`, 400, "invalid_field", "hours[0].open")
	st := e.ok("POST", "/v1/food/stores", shop.AccessToken(), storeBody, 201)
	store := st.body["store_id"].(string)
	if st.body["open_now"] != true {
		t.Fatalf("store: %s", st.raw)
	}
	if again := e.ok("POST", "/v1/food/stores", shop.AccessToken(), storeBody, 200); again.body["store_id"] != store {
		t.Fatalf("store again: %s", again.raw)
	}
	items := "/v1/food/stores/" + store + "/items"
	e.refused("POST", items, shop.AccessToken(), `{"id":"kimbap","name":"Tuna kimbap","price":0}`, 400, "invalid_field", "price")
	e.refused("POST", items, shop.AccessToken(), `{"id":"kimbap","name":"Tuna kimbap","price":4500,"stock":-1}`, 400, "invalid_field", "stock")
	e.refused("POST", items, other.AccessToken(), `{"id":"kimbap","name":"Cheap kimbap","price":1}`, 403, "forbidden", "")
	e.ok("POST", items, shop.AccessToken(), `{"id":"kimbap","name":"Tuna kimbap","price":4500,"stock":3}`, 200)
	e.ok("POST", items, shop.AccessToken(), `{"id":"soup","name":"Miso soup","price":1000}`, 200)

	// Browse and search.
	if r := e.ok("GET", "/v1/food/stores?open=true", kim.AccessToken(), "", 200); len(r.body["stores"].([]any)) != 1 {
		t.Fatalf("stores: %s", r.raw)
	}
	if r := e.ok("GET", "/v1/food/search?q=KIMBAP", kim.AccessToken(), "", 200); len(r.body["items"].([]any)) != 1 {
		t.Fatalf("search: %s", r.raw)
	}
	e.refused("GET", "/v1/food/search?q=", kim.AccessToken(), "", 400, "invalid_field", "q")
	e.refused("GET", "/v1/food/stores/nope", kim.AccessToken(), "", 404, "not_found", "")

	// The cart.
	cart := "/v1/food/stores/" + store + "/cart"
	e.refused("POST", cart, kim.AccessToken(), `{"item_id":"kimbap","quantity":-1}`, 400, "invalid_field", "quantity")
	e.refused("POST", cart, kim.AccessToken(), `{"item_id":"bulgogi","quantity":1}`, 400, "invalid_field", "item_id")
	e.refused("POST", cart, kim.AccessToken(), `{"item_id":"kimbap"}`, 400, "invalid_field", "quantity")
	e.ok("POST", cart, kim.AccessToken(), `{"item_id":"kimbap","quantity":2}`, 200)
	c := e.ok("POST", cart, kim.AccessToken(), `{"item_id":"soup","quantity":1}`, 200)
	if c.body["food_total"] != 10000.0 || c.body["total"] != 13000.0 {
		t.Fatalf("cart: %s", c.raw)
	}

	// Checkout holds the total.
	events := foodFrames(t, ctx, e.url, kim)
	e.refused("POST", "/v1/food/orders", kim.AccessToken(), `{"id":"o1","store_id":"`+store+`"}`, 400, "invalid_field", "address")
	e.refused("POST", "/v1/food/orders", kim.AccessToken(), `{"id":"o 1","store_id":"`+store+`","address":"Gangnam-daero 1"}`, 400, "invalid_field", "id")
	e.refused("POST", "/v1/food/orders", eve.AccessToken(), `{"id":"o1","store_id":"`+store+`","address":"Gangnam-daero 1"}`, 409, "cart_empty", "")
	checkout := `{"id":"o1","store_id":"` + store + `","address":"Gangnam-daero 1"}`
	o := e.ok("POST", "/v1/food/orders", kim.AccessToken(), checkout, 201)
	order := o.body["order_id"].(string)
	if o.body["status"] != "placed" || o.body["total"] != 13000.0 || o.body["platform_fee"] != 500.0 || paymentStatus(o) != "pending" {
		t.Fatalf("order: %s", o.raw)
	}
	if again := e.ok("POST", "/v1/food/orders", kim.AccessToken(), checkout, 200); again.body["order_id"] != order || again.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("checkout retried: %s", again.raw)
	}
	if av, pe := e.wallet(kim); av != 87000 || pe != 13000 {
		t.Fatalf("kim after checkout: %v %v", av, pe)
	}
	if r := e.ok("GET", cart, kim.AccessToken(), "", 200); len(r.body["lines"].([]any)) != 0 {
		t.Fatalf("cart after checkout: %s", r.raw)
	}

	// Nobody else reads or moves the order.
	path := "/v1/food/orders/" + order
	e.refused("GET", path, eve.AccessToken(), "", 404, "not_found", "")
	e.refused("GET", path, other.AccessToken(), "", 404, "not_found", "")
	e.refused("POST", path+"/accept", other.AccessToken(), "", 404, "not_found", "")
	e.refused("POST", path+"/accept", kim.AccessToken(), "", 403, "forbidden", "")
	e.refused("GET", "/v1/food/stores/"+store+"/orders", other.AccessToken(), "", 403, "forbidden", "")
	e.ok("POST", path+"/accept", shop.AccessToken(), "", 200)
	nextOrderStatus(t, events, "accepted")
	e.refused("POST", path+"/cancel", kim.AccessToken(), "", 409, "conflict", "")
	if r := e.ok("GET", "/v1/food/stores/"+store+"/orders", shop.AccessToken(), "", 200); len(r.body["orders"].([]any)) != 1 {
		t.Fatalf("store orders: %s", r.raw)
	}

	// Couriers: the first claim wins; only its courier picks up and delivers.
	e.refused("GET", "/v1/food/couriers/orders", cara.AccessToken(), "", 409, "courier_offline", "")
	e.refused("POST", path+"/claim", cara.AccessToken(), "", 409, "courier_offline", "")
	e.ok("POST", "/v1/food/couriers/online", cara.AccessToken(), "", 200)
	e.ok("POST", "/v1/food/couriers/online", dan.AccessToken(), "", 200)
	if r := e.ok("GET", "/v1/food/couriers/orders", dan.AccessToken(), "", 200); len(r.body["orders"].([]any)) != 1 ||
		strings.Contains(r.raw, "Gangnam-daero") || strings.Contains(r.raw, kim.UserID()) {
		t.Fatalf("claimable (no customer, no address before the claim): %s", r.raw)
	}
	e.ok("POST", path+"/claim", cara.AccessToken(), "", 200)
	e.refused("POST", path+"/claim", dan.AccessToken(), "", 409, "already_claimed", "")
	e.ok("POST", path+"/preparing", shop.AccessToken(), "", 200)
	e.ok("POST", path+"/ready", shop.AccessToken(), "", 200)
	e.refused("POST", path+"/pickup", dan.AccessToken(), "", 403, "forbidden", "")
	e.ok("POST", path+"/pickup", cara.AccessToken(), "", 200)
	e.refused("POST", path+"/deliver", dan.AccessToken(), "", 403, "forbidden", "")
	e.refused("GET", path, dan.AccessToken(), "", 404, "not_found", "")
	d := e.ok("POST", path+"/deliver", cara.AccessToken(), "", 200)
	if d.body["status"] != "delivered" {
		t.Fatalf("delivered: %s", d.raw)
	}
	nextOrderStatus(t, events, "delivered")
	if r := e.ok("GET", path, kim.AccessToken(), "", 200); paymentStatus(r) != "captured" {
		t.Fatalf("payment after delivery: %s", r.raw)
	}

	// The money, to the won: food 10,000 + delivery 3,000; fee 5% of food.
	if av, pe := e.wallet(kim); av != 87000 || pe != 0 {
		t.Fatalf("kim: %v %v", av, pe)
	}
	if av, _ := e.wallet(cara); av != 3000 {
		t.Fatalf("courier: %v", av)
	}
	ps := n.Pay().State()
	if b, _ := ps.AccountBalance(pay.MerchantAccountID(shop.UserID(), "KRW")); b != 9500 {
		t.Fatalf("merchant: %d", b)
	}
	if b, _ := ps.AccountBalance(pay.PlatformAccountID("KRW")); b != 500 {
		t.Fatalf("platform: %d", b)
	}
	if err := ps.Check(); err != nil {
		t.Fatal(err)
	}

	// Refunds: the merchant, up to what it was paid.
	e.refused("POST", path+"/refund", kim.AccessToken(), `{"id":"r1","amount":1000}`, 403, "forbidden", "")
	e.refused("POST", path+"/refund", shop.AccessToken(), `{"id":"r1","amount":9501}`, 400, "invalid_field", "amount")
	if r := e.ok("POST", path+"/refund", shop.AccessToken(), `{"id":"r1","amount":2000}`, 200); r.body["refunded"] != 2000.0 {
		t.Fatalf("refund: %s", r.raw)
	}
	e.ok("POST", path+"/refund", shop.AccessToken(), `{"id":"r1","amount":2000}`, 200) // retried
	if av, _ := e.wallet(kim); av != 89000 {
		t.Fatalf("kim after refund: %v", av)
	}
	// The rest ("all" of it); its retry after a lost answer is the same
	// refund, not a refusal because nothing is left.
	if r := e.ok("POST", path+"/refund", shop.AccessToken(), `{"id":"r2","amount":0}`, 200); r.body["refunded"] != 9500.0 {
		t.Fatalf("refund the rest: %s", r.raw)
	}
	e.ok("POST", path+"/refund", shop.AccessToken(), `{"id":"r2","amount":0}`, 200)
	e.refused("POST", path+"/refund", shop.AccessToken(), `{"id":"r2","amount":5}`, 422, "idempotency_key_reused", "")
	if av, _ := e.wallet(kim); av != 96500 {
		t.Fatalf("kim after the full refund: %v", av)
	}

	// Stock: one kimbap left; two are refused whole; a cancelled order gives its one back.
	e.ok("POST", cart, kim.AccessToken(), `{"item_id":"kimbap","quantity":2}`, 200)
	e.refused("POST", "/v1/food/orders", kim.AccessToken(), `{"id":"o2","store_id":"`+store+`","address":"Gangnam-daero 1"}`, 409, "out_of_stock", "lines")
	e.ok("POST", cart, kim.AccessToken(), `{"item_id":"kimbap","quantity":1}`, 200)
	o2 := e.ok("POST", "/v1/food/orders", kim.AccessToken(), `{"id":"o3","store_id":"`+store+`","address":"Gangnam-daero 1"}`, 201).body["order_id"].(string)
	if av, pe := e.wallet(kim); av != 96500-7500 || pe != 7500 {
		t.Fatalf("kim with o3: %v %v", av, pe)
	}
	if c := e.ok("POST", "/v1/food/orders/"+o2+"/cancel", kim.AccessToken(), `{"reason":"changed my mind"}`, 200); c.body["status"] != "cancelled" || paymentStatus(c) != "released" {
		t.Fatalf("cancel: %s", c.raw)
	}
	if av, pe := e.wallet(kim); av != 96500 || pe != 0 {
		t.Fatalf("kim after cancel: %v %v", av, pe)
	}
	s := e.ok("GET", "/v1/food/stores/"+store, kim.AccessToken(), "", 200)
	for _, it := range s.body["items"].([]any) {
		if m := it.(map[string]any); m["item_id"] == "kimbap" && m["stock"] != 1.0 {
			t.Fatalf("stock: %s", s.raw)
		}
	}
	if err := ps.Check(); err != nil {
		t.Fatal(err)
	}

	// No money: refused before anything is written; the stock stays.
	e.ok("POST", cart, eve.AccessToken(), `{"item_id":"kimbap","quantity":1}`, 200)
	e.refused("POST", "/v1/food/orders", eve.AccessToken(), `{"id":"o1","store_id":"`+store+`","address":"Gangnam-daero 1"}`, 422, "exceeds_credits", "")
	if r := e.ok("GET", "/v1/food/orders", eve.AccessToken(), "", 200); len(r.body["orders"].([]any)) != 0 {
		t.Fatalf("eve's orders: %s", r.raw)
	}
	// A store closed now (Seoul time) takes no orders.
	day := (int(clock.Now().In(time.FixedZone("KST", 9*3600)).Weekday()) + 3) % 7
	shut := e.ok("POST", "/v1/food/stores", other.AccessToken(), `{"id":"night","name":"Night Market","hours":[{"day":`+strconv.Itoa(day)+`,"open":"10:00","close":"11:00"}]}`, 201)
	if shut.body["open_now"] != false {
		t.Fatalf("closed store: %s", shut.raw)
	}
	closed := shut.body["store_id"].(string)
	e.ok("POST", "/v1/food/stores/"+closed+"/items", other.AccessToken(), `{"id":"tteok","name":"Tteokbokki","price":5000}`, 200)
	if r := e.ok("GET", "/v1/food/stores?open=true", kim.AccessToken(), "", 200); len(r.body["stores"].([]any)) != 1 {
		t.Fatalf("open stores: %s", r.raw)
	}
	e.ok("POST", "/v1/food/stores/"+closed+"/cart", kim.AccessToken(), `{"item_id":"tteok","quantity":1}`, 200)
	e.refused("POST", "/v1/food/orders", kim.AccessToken(), `{"id":"o9","store_id":"`+closed+`","address":"Gangnam-daero 1"}`, 409, "store_closed", "store_id")
	if av, pe := e.wallet(kim); av != 96500 || pe != 0 {
		t.Fatalf("kim after refusals: %v %v", av, pe)
	}
	if s := e.ok("GET", "/v1/food/stores/"+store, kim.AccessToken(), "", 200); !strings.Contains(s.raw, `"stock":1`) {
		t.Fatalf("stock after refusals: %s", s.raw)
	}
}
