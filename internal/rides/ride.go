// Package rides is superapp's taxi service: drivers go online and stream
// their location, riders see an estimated fare and request a ride, the
// dispatcher offers each ride to the nearest free driver one at a time, and
// the trip runs requested → accepted → arrived → in progress → completed
// (or cancelled, or no driver found), paid through holds on the ledger.
//
// Ride state is derived only from the RIDES stream, applied the same way on
// every node; assignment is decided while applying, so two DCs dispatching
// at once can never give one driver two rides or one ride two drivers: the
// log orders their offers and the second is refused. The rides and drivers
// live in the node's state store (keys.go); only the rides under way and
// the drivers online are also held in memory. Driver locations are
// ephemeral: kept in memory on every node, never written to the log.
//
// It must never let a user read another user's ride or a driver see
// another driver's offer, never resolve a hold twice, never read the wall
// clock while applying, never hold in memory what grows with the stream's
// history, and never import net/http or the NATS client.
package rides

import (
	"crypto/sha256"
	"encoding/hex"
	"time"

	"superapp/internal/apperr"
	"superapp/internal/geoindex"
	"superapp/internal/ledger"
)

// Stream is the name of the rides stream.
const Stream = "RIDES"

// Ride statuses.
const (
	StatusRequested  = "requested" // looking for a driver (an offer may be out)
	StatusAccepted   = "accepted"  // a driver is on the way
	StatusArrived    = "arrived"   // the driver waits at the pickup
	StatusInProgress = "in_progress"
	StatusCompleted  = "completed"
	StatusCancelled  = "cancelled"
	StatusNoDriver   = "no_driver" // the search gave up; nothing is charged
)

// Who cancelled a ride.
const (
	ByRider  = "rider"
	ByDriver = "driver"
	BySystem = "system" // the rider's money could not be held for the driver
)

// Rules of the service. They are part of the deterministic apply logic:
// every node must run with the same values.
const (
	// Currency is the only currency rides are priced in (geoindex prices
	// in won).
	Currency = "KRW"
	// MaxOffers is how many drivers a ride is offered to before the search
	// gives up.
	MaxOffers = 5
	// FreeCancelWindow is how long after a driver accepted the rider may
	// still cancel without a fee.
	FreeCancelWindow = 2 * time.Minute
	// CancelFee is what a rider pays the driver for cancelling later.
	CancelFee = 3000
	// MaxTripMeters bounds the straight-line length of a ride.
	MaxTripMeters = 200_000
	// MinOfferTimeout and MaxOfferTimeout bound the offer timeout a
	// dispatcher may put in an offer.
	MinOfferTimeout = time.Second
	MaxOfferTimeout = 5 * time.Minute
)

// PlatformUser is the payee of the hold placed when a ride is requested,
// before any driver is known. It is no account anyone can log in as (user
// ids are 32 hex digits), so nobody but this service can resolve that hold.
const PlatformUser = "superapp.rides"

// Rates are the fares of rides (Seoul-like: 4,800 won plus 1,000 won a
// kilometre).
var Rates = geoindex.Rates{Base: 4800, PerKm: 1000, Minimum: 4800}

// Feature error codes.
const (
	// OfferExpired: the offer timed out (or went to another driver).
	OfferExpired = "offer_expired"
	// RideActive: the rider has a ride that has not ended.
	RideActive = "ride_active"
	// DriverOffline: the driver must go online first.
	DriverOffline = "driver_offline"
	// PaymentPending: the rider's money is not yet held for the driver;
	// retry shortly.
	PaymentPending = "payment_pending"
)

func init() {
	// HTTP statuses, as numbers: this package stays clear of net/http.
	apperr.Register(OfferExpired, 409)
	apperr.Register(RideActive, 409)
	apperr.Register(DriverOffline, 409)
	apperr.Register(PaymentPending, 503)
}

// Point is a position in degrees (WGS 84).
type Point struct {
	Lat float64 `json:"lat"`
	Lng float64 `json:"lng"`
}

func (p Point) geo() geoindex.Point { return geoindex.Point{Lat: p.Lat, Lng: p.Lng} }

// Valid reports whether p is a position on Earth.
func (p Point) Valid() bool { return p.geo().Valid() }

// Meters is the great-circle distance from p to q.
func (p Point) Meters(q Point) float64 { return geoindex.DistanceMeters(p.geo(), q.geo()) }

// FareFor is the fare of a ride of meters.
func FareFor(meters float64) uint64 { return uint64(geoindex.EstimateFare(meters, Rates)) }

// HoldFor is what is held for a ride whose estimated fare is fare: the
// fare and 30% for detours, in whole hundreds of won.
func HoldFor(fare uint64) uint64 { return (fare*13/10 + 99) / 100 * 100 }

// RideID is the id of the ride a rider requested with a client id: the
// client's id makes the request idempotent, and riders cannot collide.
func RideID(rider, clientID string) string {
	h := sha256.Sum256([]byte("ride/" + rider + "/" + clientID))
	return hex.EncodeToString(h[:16])
}

// Offer is a ride offered to one driver until it expires.
type Offer struct {
	Driver    string    `json:"driver_id"`
	OfferedAt time.Time `json:"offered_at"`
	ExpiresAt time.Time `json:"expires_at"`
	// PickupMeters is how far the driver was from the pickup.
	PickupMeters int64 `json:"pickup_meters"`
}

// live reports whether the offer still stands at at.
func (o *Offer) live(at time.Time) bool { return o != nil && at.Before(o.ExpiresAt) }

// Ride is a ride as the log made it. Callers get copies.
type Ride struct {
	ID             string `json:"ride_id"`
	Rider          string `json:"rider_id"`
	Driver         string `json:"driver_id,omitempty"`
	Status         string `json:"status"`
	Pickup         Point  `json:"pickup"`
	Dropoff        Point  `json:"dropoff"`
	DistanceMeters int64  `json:"distance_meters"`
	EstimatedFare  uint64 `json:"estimated_fare"`
	HoldAmount     uint64 `json:"hold_amount"`
	Fare           uint64 `json:"fare,omitempty"`
	CancelFee      uint64 `json:"cancel_fee,omitempty"`
	Currency       string `json:"currency"`
	// HomeDC is the DC that took the request; Dispatcher the DC that
	// dispatches it now (the last to make an offer).
	HomeDC     string `json:"home_dc"`
	Dispatcher string `json:"dispatcher"`
	Offer      *Offer `json:"offer,omitempty"`
	Attempts   int    `json:"attempts"`
	// Tried lists the drivers who declined or let their offer expire.
	Tried []string `json:"tried,omitempty"`
	// RiderHold is the hold placed at request time (payee PlatformUser);
	// DriverHold the hold for the driver, once placed.
	RiderHold  ledger.ID `json:"rider_hold"`
	DriverHold ledger.ID `json:"driver_hold,omitzero"`

	RequestedAt  time.Time  `json:"requested_at"`
	AcceptedAt   *time.Time `json:"accepted_at,omitempty"`
	ArrivedAt    *time.Time `json:"arrived_at,omitempty"`
	StartedAt    *time.Time `json:"started_at,omitempty"`
	EndedAt      *time.Time `json:"ended_at,omitempty"`
	CancelledBy  string     `json:"cancelled_by,omitempty"`
	CancelReason string     `json:"cancel_reason,omitempty"`
	// idleSince is when the ride last lost its offer (request, decline):
	// with an expired offer, the offer's expiry.
	IdleSince time.Time `json:"idle_since"`
}

// Active reports whether the ride has not ended.
func (r *Ride) Active() bool {
	switch r.Status {
	case StatusCompleted, StatusCancelled, StatusNoDriver:
		return false
	}
	return true
}

// Assigned reports whether a driver is on the ride now.
func (r *Ride) Assigned() bool {
	switch r.Status {
	case StatusAccepted, StatusArrived, StatusInProgress:
		return true
	}
	return false
}

// idle is since when the ride has had no live offer at at, and whether it
// has none.
func (r *Ride) idle(at time.Time) (time.Time, bool) {
	if r.Status != StatusRequested {
		return time.Time{}, false
	}
	if r.Offer == nil {
		return r.IdleSince, true
	}
	if r.Offer.live(at) {
		return time.Time{}, false
	}
	return r.Offer.ExpiresAt, true
}

func (r *Ride) tried(driver string) bool {
	if r.Offer != nil && r.Offer.Driver == driver {
		return true // holds it, or let it expire
	}
	for _, d := range r.Tried {
		if d == driver {
			return true
		}
	}
	return false
}

func (r *Ride) clone() *Ride {
	c := *r
	if r.Offer != nil {
		o := *r.Offer
		c.Offer = &o
	}
	c.Tried = append([]string(nil), r.Tried...)
	return &c
}

// View is a ride as one of its parties sees it.
type View struct {
	ID             string     `json:"ride_id"`
	Status         string     `json:"status"`
	RiderID        string     `json:"rider_id"`
	DriverID       string     `json:"driver_id,omitempty"`
	Pickup         Point      `json:"pickup"`
	Dropoff        Point      `json:"dropoff"`
	DistanceMeters int64      `json:"distance_meters"`
	EstimatedFare  uint64     `json:"estimated_fare"`
	Fare           uint64     `json:"fare,omitempty"`
	CancelFee      uint64     `json:"cancel_fee,omitempty"`
	Currency       string     `json:"currency"`
	RequestedAt    time.Time  `json:"requested_at"`
	AcceptedAt     *time.Time `json:"accepted_at,omitempty"`
	ArrivedAt      *time.Time `json:"arrived_at,omitempty"`
	StartedAt      *time.Time `json:"started_at,omitempty"`
	EndedAt        *time.Time `json:"ended_at,omitempty"`
	CancelledBy    string     `json:"cancelled_by,omitempty"`
	CancelReason   string     `json:"cancel_reason,omitempty"`
	// DriverLocation is the assigned driver's last known position.
	DriverLocation *Point `json:"driver_location,omitempty"`
	// Payment is the rider's: the driver never learns the hold ids, which
	// would let them capture a hold through the wallet API.
	Payment *Payment `json:"payment,omitempty"`
}

// Payment is what a ride holds of the rider's money.
type Payment struct {
	HoldAmount   uint64 `json:"hold_amount"`
	HoldID       string `json:"hold_id"`
	DriverHoldID string `json:"driver_hold_id,omitempty"`
}

// ViewFor is the ride as user sees it: the rider sees the payment, the
// driver does not.
func (r *Ride) ViewFor(user string) View {
	v := View{ID: r.ID, Status: r.Status, RiderID: r.Rider, DriverID: r.Driver, Pickup: r.Pickup, Dropoff: r.Dropoff,
		DistanceMeters: r.DistanceMeters, EstimatedFare: r.EstimatedFare, Fare: r.Fare, CancelFee: r.CancelFee,
		Currency: r.Currency, RequestedAt: r.RequestedAt, AcceptedAt: r.AcceptedAt, ArrivedAt: r.ArrivedAt,
		StartedAt: r.StartedAt, EndedAt: r.EndedAt, CancelledBy: r.CancelledBy, CancelReason: r.CancelReason}
	if user == r.Rider {
		p := &Payment{HoldAmount: r.HoldAmount, HoldID: r.RiderHold.String()}
		if !r.DriverHold.IsZero() {
			p.DriverHoldID = r.DriverHold.String()
		}
		v.Payment = p
	}
	return v
}

// OfferView is an offer as its driver sees it.
type OfferView struct {
	RideID         string    `json:"ride_id"`
	Pickup         Point     `json:"pickup"`
	Dropoff        Point     `json:"dropoff"`
	DistanceMeters int64     `json:"distance_meters"`
	EstimatedFare  uint64    `json:"estimated_fare"`
	Currency       string    `json:"currency"`
	PickupMeters   int64     `json:"pickup_meters"`
	OfferedAt      time.Time `json:"offered_at"`
	ExpiresAt      time.Time `json:"expires_at"`
}

func (r *Ride) offerView() OfferView {
	return OfferView{RideID: r.ID, Pickup: r.Pickup, Dropoff: r.Dropoff, DistanceMeters: r.DistanceMeters,
		EstimatedFare: r.EstimatedFare, Currency: r.Currency, PickupMeters: r.Offer.PickupMeters,
		OfferedAt: r.Offer.OfferedAt, ExpiresAt: r.Offer.ExpiresAt}
}

// DriverStatus is a driver's availability.
type DriverStatus struct {
	DriverID string    `json:"driver_id"`
	Online   bool      `json:"online"`
	Since    time.Time `json:"since"`
	// RideID is the ride the driver is on, if any.
	RideID string `json:"ride_id,omitempty"`
}

// Push is a frame for one user's devices on the event stream. Pushes are
// ephemeral: a device that was away reads its ride with GET instead.
type Push struct {
	User  string
	Frame Frame
}

// Frame is what the event stream sends for rides: "ride" (a ride changed),
// "ride.offer" (an offer for the driver), "ride.offer_withdrawn" and
// "ride.location" (the assigned driver moved).
type Frame struct {
	Type     string     `json:"type"`
	Ride     *View      `json:"ride,omitempty"`
	Offer    *OfferView `json:"offer,omitempty"`
	RideID   string     `json:"ride_id,omitempty"`
	Location *Point     `json:"location,omitempty"`
	At       *time.Time `json:"at,omitempty"`
}
