package client

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// Point is a place on the map.
type Point struct {
	Lat float64 `json:"lat"`
	Lng float64 `json:"lng"`
}

// RidePayment is what a ride holds of its rider's money (the rider's view only).
type RidePayment struct {
	HoldAmount   uint64 `json:"hold_amount"`
	HoldID       string `json:"hold_id"`
	DriverHoldID string `json:"driver_hold_id,omitempty"`
}

// Ride is a ride as its rider or driver sees it.
type Ride struct {
	RideID        string       `json:"ride_id"`
	Status        string       `json:"status"` // requested, accepted, arrived, in_progress, completed, cancelled, no_driver
	RiderID       string       `json:"rider_id"`
	DriverID      string       `json:"driver_id,omitempty"`
	EstimatedFare uint64       `json:"estimated_fare"`
	Fare          uint64       `json:"fare,omitempty"`
	CancelFee     uint64       `json:"cancel_fee,omitempty"`
	Currency      string       `json:"currency"`
	AcceptedAt    *time.Time   `json:"accepted_at,omitempty"`
	EndedAt       *time.Time   `json:"ended_at,omitempty"`
	Payment       *RidePayment `json:"payment,omitempty"`
}

// Ended reports whether the ride is over: completed, cancelled or without a driver.
func (r Ride) Ended() bool {
	return r.Status == "completed" || r.Status == "cancelled" || r.Status == "no_driver"
}

// RideOffer is a ride offered to a driver.
type RideOffer struct {
	RideID        string    `json:"ride_id"`
	EstimatedFare uint64    `json:"estimated_fare"`
	ExpiresAt     time.Time `json:"expires_at"`
}

// RequestRide asks for a ride (the rider's call); id makes it idempotent:
// the same id returns the same ride and never holds the fare twice.
func (c *Client) RequestRide(ctx context.Context, id string, pickup, dropoff Point) (Ride, error) {
	var r Ride
	err := c.Do(ctx, Request{Method: http.MethodPost, Path: "/v1/rides", IdempotencyKey: id,
		Body: map[string]any{"id": id, "pickup": pickup, "dropoff": dropoff}}, &r)
	return r, err
}

// Ride reads a ride of the user's (as rider or driver).
func (c *Client) Ride(ctx context.Context, rideID string) (Ride, error) {
	var r Ride
	err := c.Do(ctx, Request{Method: http.MethodGet, Path: "/v1/rides/" + url.PathEscape(rideID)}, &r)
	return r, err
}

// DriverOnline puts the user on duty as a driver at a place.
func (c *Client) DriverOnline(ctx context.Context, at Point) error {
	return c.Do(ctx, Request{Method: http.MethodPost, Path: "/v1/rides/drivers/online", Body: at}, nil)
}

// DriverLocation reports where the driver is; a driver not heard from for
// 30 s is offered nothing.
func (c *Client) DriverLocation(ctx context.Context, at Point) error {
	return c.Do(ctx, Request{Method: http.MethodPost, Path: "/v1/rides/drivers/location", Body: at}, nil)
}

// RideOffers lists the offers made to the driver now.
func (c *Client) RideOffers(ctx context.Context) ([]RideOffer, error) {
	var out struct {
		Offers []RideOffer `json:"offers"`
	}
	err := c.Do(ctx, Request{Method: http.MethodGet, Path: "/v1/rides/offers"}, &out)
	return out.Offers, err
}

// Ride steps, in the order a driver takes them (RideStep).
const (
	RideAccept   = "accept"
	RideArrive   = "arrive"
	RideStart    = "start"
	RideComplete = "complete"
	RideDecline  = "decline"
)

// RideStep takes a step of a ride: a driver's accept, decline, arrive,
// start or complete. key makes it idempotent.
func (c *Client) RideStep(ctx context.Context, rideID, step, key string) (Ride, error) {
	var r Ride
	err := c.Do(ctx, Request{Method: http.MethodPost, Path: "/v1/rides/" + url.PathEscape(rideID) + "/" + step, IdempotencyKey: key}, &r)
	return r, err
}

// HoldOf reads a hold the user pays or is paid (a ride's or an order's
// money: see their payment).
func (c *Client) HoldOf(ctx context.Context, holdID string) (Hold, error) {
	var h Hold
	err := c.Do(ctx, Request{Method: http.MethodGet, Path: "/v1/wallet/holds/" + url.PathEscape(holdID)}, &h)
	return h, err
}
