package drill

import (
	"context"
	"fmt"
	"time"

	"superapp/client"
)

// Where the drill's rides go: a short trip across Gangnam; drivers wait
// near the pickup.
var (
	pickup  = client.Point{Lat: 37.4979, Lng: 127.0276}
	dropoff = client.Point{Lat: 37.5159, Lng: 127.0276} // 2 km north
)

// bookings is a person's rides, or their food orders: one under way at a
// time, each asked for with a client id that makes it idempotent.
type bookings struct {
	n      int
	active string            // the acknowledged one not yet ended
	ack    map[string]string // acknowledged id → its client id
	try    map[string]bool   // every client id sent
}

// book asks for a new ride or order: send makes it with a client id
// (sent again, the same, until answered) and says what was made.
func (u *user) book(b *bookings, feature, kind string, send func(ctx context.Context, key string) (id string, ended bool, err error)) *op {
	b.n++
	key := fmt.Sprintf("u%d-%s%d", u.idx, kind, b.n)
	u.mu.Lock()
	b.try[key] = true
	u.mu.Unlock()
	return &op{feature: feature, write: true, run: func(ctx context.Context) error {
		id, ended, err := send(ctx, key)
		if err != nil {
			return err
		}
		u.mu.Lock()
		b.ack[id] = key
		u.mu.Unlock()
		if !ended {
			b.active = id
		}
		return nil
	}}
}

// follow reads the ride or order under way, as the app shows where it
// stands.
func (u *user) follow(b *bookings, feature string, read func(ctx context.Context, id string) (ended bool, err error)) *op {
	id := b.active
	return &op{feature: feature, run: func(ctx context.Context) error {
		ended, err := read(ctx, id)
		if ended {
			b.active = ""
		}
		return err
	}}
}

// rideOp is a person's ride: a new request when none is under way, else
// a look at the one that is.
func (u *user) rideOp() *op {
	if u.rides.active != "" {
		return u.rideCheck()
	}
	return u.book(&u.rides, "rides", "ride", func(ctx context.Context, key string) (string, bool, error) {
		r, err := u.c.RequestRide(ctx, key, pickup, dropoff)
		return r.RideID, r.Ended(), err
	})
}

func (u *user) rideCheck() *op {
	return u.follow(&u.rides, "rides", func(ctx context.Context, id string) (bool, error) {
		r, err := u.c.Ride(ctx, id)
		return err == nil && r.Ended(), err
	})
}

// job is a worker's work in progress.
type job struct {
	at      client.Point   // a driver's place
	located time.Time      // a driver's last location report
	id      string         // the ride or order the worker is on
	status  string         // its status as the worker last saw it
	queue   []client.Order // the merchant's orders to take a step further
}

// driverSpot is where a driver waits: a few hundred metres from the
// pickup, each driver elsewhere.
func driverSpot(d *user) client.Point {
	return client.Point{Lat: pickup.Lat - float64(100+50*(d.idx%10))/111_195, Lng: pickup.Lng}
}

// driverOp is a driver's next step: report where they are every few
// seconds (a driver silent for 30 s is offered nothing); on a ride, its
// next step; else look for offers and take the first.
func (u *user) driverOp() *op {
	j := &u.job
	if time.Since(j.located) > 5*time.Second {
		at := j.at
		return &op{feature: "rides", write: true, run: func(ctx context.Context) error {
			if err := u.c.DriverLocation(ctx, at); err != nil {
				return err
			}
			j.located = time.Now()
			return nil
		}}
	}
	if j.id == "" {
		return &op{feature: "rides", idle: true, run: func(ctx context.Context) error {
			offers, err := u.c.RideOffers(ctx)
			if err != nil || len(offers) == 0 {
				return err
			}
			j.id, j.status = offers[0].RideID, "offered"
			return nil
		}}
	}
	step := map[string]string{"offered": client.RideAccept, "accepted": client.RideArrive, "arrived": client.RideStart, "in_progress": client.RideComplete}[j.status]
	id := j.id
	ride := func(r client.Ride, err error) (stand, error) { return stand{r.Ended(), r.DriverID, r.Status}, err }
	if step == "" {
		// Unknown, or a step refused: read where the ride stands.
		return u.look("rides", false, func(ctx context.Context) (stand, error) { return ride(u.c.Ride(ctx, id)) })
	}
	key := fmt.Sprintf("d%d-%s-%s", u.idx, id, step)
	return u.advance("rides", step == client.RideAccept, func(ctx context.Context) (stand, error) { return ride(u.c.RideStep(ctx, id, step, key)) })
}

// stand is where a worker's ride or order stands.
type stand struct {
	ended  bool
	holder string // the driver or courier it is assigned to
	status string
}

// advance is a worker's step on their ride or order. Refused (an offer
// expired or taken, the booking cancelled, a step it is past, the money
// not ready yet), the worker looks again: after a first step (accept,
// claim) for another booking, after a later one at where this one stands.
func (u *user) advance(feature string, first bool, step func(ctx context.Context) (stand, error)) *op {
	j := &u.job
	return &op{feature: feature, write: true, run: func(ctx context.Context) error {
		st, err := step(ctx)
		switch {
		case refused(err) && first:
			j.id = ""
		case refused(err):
			j.status = ""
		case err == nil:
			u.note(st)
		}
		return err
	}}
}

// look reads where the worker's ride or order stands.
func (u *user) look(feature string, idle bool, read func(ctx context.Context) (stand, error)) *op {
	j := &u.job
	return &op{feature: feature, idle: idle, run: func(ctx context.Context) error {
		st, err := read(ctx)
		switch {
		case refused(err):
			j.id = ""
		case err == nil:
			u.note(st)
		}
		return err
	}}
}

// note notes where the worker's ride or order stands: done with it once
// it ended or went to someone else.
func (u *user) note(st stand) {
	if st.ended || (st.holder != "" && st.holder != u.id) {
		u.job.id, u.job.status = "", ""
		return
	}
	u.job.status = st.status
}
