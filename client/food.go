package client

import (
	"context"
	"net/http"
	"net/url"
)

// Hours is a store's opening period on one day (0 Sunday), in Asia/Seoul
// time, "HH:MM"; a close of "24:00" is midnight.
type Hours struct {
	Day   int    `json:"day"`
	Open  string `json:"open"`
	Close string `json:"close"`
}

// StoreInput opens a store.
type StoreInput struct {
	ID          string  `json:"id"` // the merchant's id for it: makes it idempotent
	Name        string  `json:"name"`
	Hours       []Hours `json:"hours"`
	DeliveryFee uint64  `json:"delivery_fee"`
}

// Store is a food store.
type Store struct {
	StoreID string `json:"store_id"`
	Name    string `json:"name"`
}

// ItemInput puts an item on a store's menu.
type ItemInput struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Price uint64 `json:"price"`
	Stock *int64 `json:"stock,omitempty"` // nil: unlimited
}

// OrderPayment is where an order's hold stands.
type OrderPayment struct {
	HoldID   string `json:"hold_id"`
	Status   string `json:"status"` // missing, pending, captured, released, expired
	Captured uint64 `json:"captured"`
}

// Order is a food order.
type Order struct {
	OrderID     string        `json:"order_id"`
	UserID      string        `json:"user_id"`
	StoreID     string        `json:"store_id"`
	CourierID   string        `json:"courier_id,omitempty"`
	Status      string        `json:"status"` // placed, accepted, preparing, ready, picked_up, delivered, rejected, cancelled
	FoodTotal   uint64        `json:"food_total"`
	DeliveryFee uint64        `json:"delivery_fee"`
	Total       uint64        `json:"total"`
	Payment     *OrderPayment `json:"payment,omitempty"`
}

// Ended reports whether the order is over: delivered, rejected or cancelled.
func (o Order) Ended() bool {
	return o.Status == "delivered" || o.Status == "rejected" || o.Status == "cancelled"
}

// CreateStore opens a store (the caller must be a merchant).
func (c *Client) CreateStore(ctx context.Context, in StoreInput) (Store, error) {
	var s Store
	err := c.Do(ctx, Request{Method: http.MethodPost, Path: "/v1/food/stores", IdempotencyKey: "store-" + in.ID, Body: in}, &s)
	return s, err
}

// AddItem puts an item on the store's menu.
func (c *Client) AddItem(ctx context.Context, storeID string, in ItemInput) error {
	return c.Do(ctx, Request{Method: http.MethodPost, Path: "/v1/food/stores/" + url.PathEscape(storeID) + "/items", IdempotencyKey: "item-" + storeID + "-" + in.ID, Body: in}, nil)
}

// SetCart sets how many of an item the user's cart at a store holds (0
// removes it); setting is idempotent by itself.
func (c *Client) SetCart(ctx context.Context, storeID, itemID string, quantity int) error {
	return c.Do(ctx, Request{Method: http.MethodPost, Path: "/v1/food/stores/" + url.PathEscape(storeID) + "/cart",
		Body: map[string]any{"item_id": itemID, "quantity": quantity}}, nil)
}

// Checkout orders what the user's cart at the store holds, holding the
// total on their wallet until delivery; id makes it idempotent.
func (c *Client) Checkout(ctx context.Context, id, storeID, address string) (Order, error) {
	var o Order
	err := c.Do(ctx, Request{Method: http.MethodPost, Path: "/v1/food/orders", IdempotencyKey: id,
		Body: map[string]string{"id": id, "store_id": storeID, "address": address}}, &o)
	return o, err
}

// Order reads an order the user placed, sells or delivers.
func (c *Client) Order(ctx context.Context, orderID string) (Order, error) {
	var o Order
	err := c.Do(ctx, Request{Method: http.MethodGet, Path: "/v1/food/orders/" + url.PathEscape(orderID)}, &o)
	return o, err
}

// StoreOrders lists a store's orders (its merchant's call).
func (c *Client) StoreOrders(ctx context.Context, storeID string) ([]Order, error) {
	return c.orders(ctx, "/v1/food/stores/"+url.PathEscape(storeID)+"/orders")
}

// CourierOrders lists the orders a courier may claim.
func (c *Client) CourierOrders(ctx context.Context) ([]Order, error) {
	return c.orders(ctx, "/v1/food/couriers/orders")
}

func (c *Client) orders(ctx context.Context, path string) ([]Order, error) {
	var out struct {
		Orders []Order `json:"orders"`
	}
	err := c.Do(ctx, Request{Method: http.MethodGet, Path: path}, &out)
	return out.Orders, err
}

// CourierOnline puts the user on duty as a courier.
func (c *Client) CourierOnline(ctx context.Context) error {
	return c.Do(ctx, Request{Method: http.MethodPost, Path: "/v1/food/couriers/online"}, nil)
}

// Order steps: the merchant's accept, reject, preparing and ready; the
// courier's claim, pickup and deliver; the user's cancel (OrderStep).
const (
	OrderAccept    = "accept"
	OrderReject    = "reject"
	OrderPreparing = "preparing"
	OrderReady     = "ready"
	OrderClaim     = "claim"
	OrderPickup    = "pickup"
	OrderDeliver   = "deliver"
	OrderCancel    = "cancel"
)

// OrderStep takes a step of an order. A step the order is past already is
// refused (conflict): read the order to see where it stands.
func (c *Client) OrderStep(ctx context.Context, orderID, step string) (Order, error) {
	var o Order
	err := c.Do(ctx, Request{Method: http.MethodPost, Path: "/v1/food/orders/" + url.PathEscape(orderID) + "/" + step}, &o)
	return o, err
}
