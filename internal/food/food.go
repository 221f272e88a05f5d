// Package food is superapp's food and grocery delivery, a first-party
// mini-app: merchants run stores with opening hours (Asia/Seoul) and
// catalogues, users fill a cart per store and check out, the merchant
// accepts and prepares the order, a courier claims it, picks it up and
// delivers it. Checkout holds the order's total on the user's wallet; on
// delivery the hold is captured and split between the merchant, the
// courier and the platform in one ledger step; a rejected or cancelled
// order's hold is released.
//
// State is derived only from the FOOD stream, applied the same way on every
// node: stock is taken once per order while applying (and given back on
// rejection or cancellation), and the first courier's claim in the log
// wins. The state lives in the node's state store (keys.go). The money
// follows from the state (settle.go).
//
// It must never let a user read another's order or a merchant act on
// another's store, never resolve a hold twice, never read the wall clock
// while applying, never hold in memory what grows with the stream's
// history, and never import net/http or the NATS client.
package food

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"superapp/internal/apperr"
	"superapp/internal/ledger"
)

// Stream is the name of the food stream.
const Stream = "FOOD"

// Order statuses.
const (
	StatusPlaced    = "placed"
	StatusAccepted  = "accepted"
	StatusPreparing = "preparing"
	StatusReady     = "ready"
	StatusPickedUp  = "picked_up"
	StatusDelivered = "delivered"
	StatusRejected  = "rejected"
	StatusCancelled = "cancelled"
)

// Rules of the service, part of the deterministic apply logic.
const (
	// Currency is the only currency stores price in.
	Currency = "KRW"
	// PlatformFeePercent of an order's food total goes to the platform.
	PlatformFeePercent = 5
	// MaxItems bounds a store's catalogue; MaxLines an order's lines;
	// MaxQuantity one line.
	MaxItems    = 1000
	MaxLines    = 50
	MaxQuantity = 99
	// MaxPrice bounds an item's price and MaxDeliveryFee a store's fee.
	MaxPrice       = 1_000_000
	MaxDeliveryFee = 100_000
)

// EscrowUser is the payee of every order's hold: no one can log in as it
// (user ids are 32 hex digits), so only this service resolves the holds.
const EscrowUser = "superapp.food"

// Feature error codes.
const (
	OutOfStock     = "out_of_stock"
	StoreClosed    = "store_closed"
	CartEmpty      = "cart_empty"
	PriceChanged   = "price_changed"
	CourierOffline = "courier_offline"
	AlreadyClaimed = "already_claimed"
	// PaymentPending: the user's money is not held yet; retry shortly
	// (the same code and status as the taxi service's).
	PaymentPending = "payment_pending"
)

func init() {
	apperr.Register(OutOfStock, 409)
	apperr.Register(StoreClosed, 409)
	apperr.Register(CartEmpty, 409)
	apperr.Register(PriceChanged, 409)
	apperr.Register(CourierOffline, 409)
	apperr.Register(AlreadyClaimed, 409)
	apperr.Register(PaymentPending, 503)
}

// Seoul is Asia/Seoul: UTC+9, without daylight saving since 1988; fixed so
// that every node reads opening hours the same without a tz database.
var Seoul = time.FixedZone("KST", 9*3600)

// PlatformFee is the platform's share of a food total.
func PlatformFee(food uint64) uint64 { return food * PlatformFeePercent / 100 }

// OrderID is the id of the order a user placed with a client id.
func OrderID(user, clientID string) string { return hashID("order/" + user + "/" + clientID) }

// StoreID is the id of the store a merchant created with a client id.
func StoreID(merchant, clientID string) string { return hashID("store/" + merchant + "/" + clientID) }

func hashID(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:16])
}

// Hours is one opening period: on Day (0 Sunday .. 6 Saturday, Seoul time)
// from Open to Close ("HH:MM"; "24:00" is midnight; a Close not after Open
// runs past midnight into the next day).
type Hours struct {
	Day   int    `json:"day"`
	Open  string `json:"open"`
	Close string `json:"close"`
}

func minutes(hhmm string) (int, bool) {
	var h, m int
	if len(hhmm) != 5 || hhmm[2] != ':' {
		return 0, false
	}
	if _, err := fmt.Sscanf(hhmm, "%02d:%02d", &h, &m); err != nil || h > 24 || m > 59 || (h == 24 && m != 0) {
		return 0, false
	}
	return h*60 + m, true
}

func (h Hours) check(i int) *apperr.Error {
	o, ok1 := minutes(h.Open)
	c, ok2 := minutes(h.Close)
	switch {
	case h.Day < 0 || h.Day > 6:
		return apperr.Field(fmt.Sprintf("hours[%d].day", i), "day is 0 (Sunday) to 6")
	case !ok1 || o == 24*60:
		return apperr.Field(fmt.Sprintf("hours[%d].open", i), "open is HH:MM")
	case !ok2 || c == o:
		return apperr.Field(fmt.Sprintf("hours[%d].close", i), "close is HH:MM, not the opening time")
	}
	return nil
}

// OpenAt reports whether hours has the store open at t.
func OpenAt(hours []Hours, t time.Time) bool {
	k := t.In(Seoul)
	wd, m := int(k.Weekday()), k.Hour()*60+k.Minute()
	for _, h := range hours {
		o, _ := minutes(h.Open)
		c, _ := minutes(h.Close)
		if c > o {
			if h.Day == wd && m >= o && m < c {
				return true
			}
			continue
		}
		if (h.Day == wd && m >= o) || ((h.Day+1)%7 == wd && m < c) {
			return true
		}
	}
	return false
}

// Item is one thing a store sells.
type Item struct {
	ID    string `json:"item_id"`
	Name  string `json:"name"`
	Price uint64 `json:"price"`
	// Stock is how many are left; nil: unlimited.
	Stock *int64 `json:"stock"`
}

// Store is a merchant's store.
type Store struct {
	ID          string    `json:"store_id"`
	Merchant    string    `json:"merchant_id"`
	Name        string    `json:"name"`
	Hours       []Hours   `json:"hours"`
	DeliveryFee uint64    `json:"delivery_fee"`
	Currency    string    `json:"currency"`
	CreatedAt   time.Time `json:"created_at"`
}

// StoreView is a store as anyone sees it.
type StoreView struct {
	ID          string  `json:"store_id"`
	MerchantID  string  `json:"merchant_id"`
	Name        string  `json:"name"`
	Hours       []Hours `json:"hours"`
	DeliveryFee uint64  `json:"delivery_fee"`
	Currency    string  `json:"currency"`
	OpenNow     bool    `json:"open_now"`
	Items       []Item  `json:"items,omitempty"`
}

// view is the store as anyone sees it at at, with items (in catalogue
// order) unless they are nil.
func (st *Store) view(at time.Time, items []Item) StoreView {
	return StoreView{ID: st.ID, MerchantID: st.Merchant, Name: st.Name, Hours: append([]Hours{}, st.Hours...),
		DeliveryFee: st.DeliveryFee, Currency: st.Currency, OpenNow: OpenAt(st.Hours, at), Items: items}
}

func (it *Item) copy() Item {
	c := *it
	if it.Stock != nil {
		n := *it.Stock
		c.Stock = &n
	}
	return c
}

// Line is one item of a cart or an order.
type Line struct {
	ItemID   string `json:"item_id"`
	Name     string `json:"name,omitempty"`
	Price    uint64 `json:"price"`
	Quantity int64  `json:"quantity"`
}

// Cart is a user's cart at one store.
type Cart struct {
	StoreID     string `json:"store_id"`
	Lines       []Line `json:"lines"`
	FoodTotal   uint64 `json:"food_total"`
	DeliveryFee uint64 `json:"delivery_fee"`
	Total       uint64 `json:"total"`
	Currency    string `json:"currency"`
}

// Order is an order as the log made it.
type Order struct {
	ID          string     `json:"order_id"`
	User        string     `json:"user_id"`
	StoreID     string     `json:"store_id"`
	Merchant    string     `json:"merchant_id"`
	Courier     string     `json:"courier_id,omitempty"`
	Status      string     `json:"status"`
	Lines       []Line     `json:"lines"`
	Address     string     `json:"address"`
	FoodTotal   uint64     `json:"food_total"`
	DeliveryFee uint64     `json:"delivery_fee"`
	PlatformFee uint64     `json:"platform_fee"`
	Total       uint64     `json:"total"`
	Currency    string     `json:"currency"`
	HoldID      ledger.ID  `json:"hold_id,omitzero"`
	Refunded    uint64     `json:"refunded"`
	HomeDC      string     `json:"home_dc"`
	PlacedAt    time.Time  `json:"placed_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
	EndedAt     *time.Time `json:"ended_at,omitempty"`
	CancelledBy string     `json:"cancelled_by,omitempty"`
	Reason      string     `json:"reason,omitempty"`
}

// Ended reports whether the order will not change status any more.
func (o *Order) Ended() bool {
	switch o.Status {
	case StatusDelivered, StatusRejected, StatusCancelled:
		return true
	}
	return false
}

func (o *Order) clone() *Order {
	c := *o
	c.Lines = append([]Line(nil), o.Lines...)
	return &c
}

// Payment is where an order's money stands, as its user and merchant see it.
type Payment struct {
	HoldID string `json:"hold_id"`
	// Status is the hold's: pending, captured, released, expired, or
	// missing while the hold is on its way.
	Status   string `json:"status"`
	Captured uint64 `json:"captured,omitempty"`
}

// View is an order as one of its parties sees it.
type View struct {
	Order
	Payment *Payment `json:"payment,omitempty"`
}

// Push is a frame for one user's devices on the event stream; ephemeral.
type Push struct {
	User  string
	Frame Frame
}

// Frame is what the event stream sends for food: "food.order" (an order
// changed).
type Frame struct {
	Type  string `json:"type"`
	Order *Order `json:"order"`
}

// validName checks a display name.
func validName(field, s string, max int) (string, *apperr.Error) {
	s = strings.TrimSpace(s)
	if s == "" || len([]rune(s)) > max {
		return "", apperr.Field(field, "%s must be 1 to %d characters", field, max)
	}
	return s, nil
}
