package rides

import (
	"encoding/json"
	"slices"
	"time"

	"superapp/internal/apperr"
	"superapp/internal/cmdlog"
	"superapp/internal/ledger"
	"superapp/internal/store"
)

// Command kinds in the RIDES stream.
const (
	kindOnline   = "driver.online"
	kindOffline  = "driver.offline"
	kindRequest  = "ride.request"
	kindOffer    = "ride.offer"
	kindDecline  = "offer.decline"
	kindAccept   = "ride.accept"
	kindHold     = "ride.hold"
	kindArrive   = "ride.arrive"
	kindStart    = "ride.start"
	kindComplete = "ride.complete"
	kindCancel   = "ride.cancel"
	kindGiveUp   = "ride.give_up"
)

type requestCmd struct {
	RideID         string    `json:"ride_id"`
	Pickup         Point     `json:"pickup"`
	Dropoff        Point     `json:"dropoff"`
	DistanceMeters int64     `json:"distance_meters"`
	Fare           uint64    `json:"fare"`
	Hold           uint64    `json:"hold"`
	Currency       string    `json:"currency"`
	HoldID         ledger.ID `json:"hold_id"`
	DC             string    `json:"dc"`
	// Offer, if set, offers the new ride at once to the driver the
	// requesting node found nearest: one commit less before the driver
	// hears of it. A driver no longer free is passed over silently.
	Offer *offerCmd `json:"offer,omitempty"`
}

type offerCmd struct {
	RideID       string `json:"ride_id"`
	Driver       string `json:"driver_id"`
	TimeoutMs    int64  `json:"timeout_ms"`
	PickupMeters int64  `json:"pickup_meters"`
	DC           string `json:"dc"`
}

type rideCmd struct {
	RideID string `json:"ride_id"`
	// HoldID is the driver's hold (ride.hold).
	HoldID ledger.ID `json:"hold_id,omitzero"`
	// Fare is the final fare (ride.complete).
	Fare uint64 `json:"fare,omitempty"`
	// Reason and System describe a cancellation.
	Reason string `json:"reason,omitempty"`
	System bool   `json:"system,omitempty"`
}

// Ack is the outcome of a rides command.
type Ack struct {
	RideID    string     `json:"ride_id,omitempty"`
	Status    string     `json:"status,omitempty"`
	Driver    string     `json:"driver_id,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	Online    *bool      `json:"online,omitempty"`
}

// Change tells the service what an applied command changed, so that its
// dispatcher and settlement can act at once instead of on their next scan.
type Change struct {
	Kind   string
	RideID string
	Driver string
}

// Observe sets the function told, after each applied command, of the
// pushes for devices and of what changed. It must not block.
func (s *State) Observe(fn func([]Push, []Change)) {
	s.mu.Lock()
	s.observer = fn
	s.mu.Unlock()
}

// Apply applies one RIDES command to the entry's batch. It is
// deterministic: the envelope's At is the only clock it reads. Its pushes
// and changes are told once the batch is committed.
func (s *State) Apply(_ uint64, e *cmdlog.Envelope) (any, *apperr.Error) {
	tx := s.space.Tx()
	v, err, pushes, changes, obs := s.applyLocked(tx, e)
	if obs != nil && (len(pushes) > 0 || len(changes) > 0) {
		tx.AfterCommit(func() { obs(pushes, changes) })
	}
	return v, err
}

func (s *State) applyLocked(tx *store.Tx, e *cmdlog.Envelope) (v any, err *apperr.Error, pushes []Push, changes []Change, obs func([]Push, []Change)) {
	s.mu.Lock()
	defer func() {
		// After a panic too: the next command starts from the store.
		clear(s.rides)
		clear(s.drivers)
		s.rides, s.drivers = s.rides[:0], s.drivers[:0]
		s.mu.Unlock()
	}()
	s.pushes, s.changes = s.pushes[:0], s.changes[:0]
	at := e.At
	if at.Before(s.lastAt) {
		at = s.lastAt
	}
	s.lastAt = at // stored when the command is done (flush)
	v, err = s.apply(e, at)
	s.flush(tx) // a refused command changed nothing: nothing to write
	if err == nil {
		pushes, changes = slices.Clone(s.pushes), slices.Clone(s.changes)
	}
	return v, err, pushes, changes, s.observer
}

func decode(e *cmdlog.Envelope, v any) *apperr.Error {
	if err := json.Unmarshal(e.Data, v); err != nil {
		return apperr.New(apperr.Malformed, "bad command")
	}
	return nil
}

func (s *State) apply(e *cmdlog.Envelope, at time.Time) (any, *apperr.Error) {
	switch e.Kind {
	case kindOnline, kindOffline:
		if e.Actor == "" {
			return nil, apperr.New(apperr.Malformed, "bad command")
		}
		return s.setOnline(e.Actor, e.Kind == kindOnline, at)
	case kindRequest:
		var c requestCmd
		if err := decode(e, &c); err != nil {
			return nil, err
		}
		return s.request(e.Actor, c, at)
	case kindOffer:
		var c offerCmd
		if err := decode(e, &c); err != nil {
			return nil, err
		}
		return s.offer(c, at)
	}
	var c rideCmd
	if err := decode(e, &c); err != nil {
		return nil, err
	}
	r := s.ride(c.RideID)
	if r == nil {
		return nil, apperr.New(apperr.NotFound, "no such ride")
	}
	switch e.Kind {
	case kindDecline:
		return s.decline(r, e.Actor, at)
	case kindAccept:
		return s.accept(r, e.Actor, at)
	case kindHold:
		return s.hold(r, c.HoldID)
	case kindArrive, kindStart, kindComplete:
		return s.advance(r, e.Kind, e.Actor, c.Fare, at)
	case kindCancel:
		return s.cancel(r, e.Actor, c, at)
	case kindGiveUp:
		return s.giveUp(r, at)
	}
	return nil, apperr.New(apperr.Invalid, "unknown command %q", e.Kind)
}

func (s *State) setOnline(id string, online bool, at time.Time) (any, *apperr.Error) {
	d := s.driver(id)
	if d == nil {
		if !online {
			return Ack{Online: &online}, nil
		}
		d = &driverState{}
	}
	if !online && d.Ride != "" {
		return nil, apperr.New(apperr.Conflict, "you are on a ride: complete or cancel it first")
	}
	if d.Online == online {
		return Ack{Online: &online}, nil
	}
	if !online {
		// Going offline declines the offer in hand.
		if r := s.liveOffer(id, at); r != nil {
			s.dropOffer(r, at, true)
			s.changes = append(s.changes, Change{Kind: kindDecline, RideID: r.ID, Driver: id})
		}
		s.changes = append(s.changes, Change{Kind: kindOffline, Driver: id})
	}
	d.Online, d.Since = online, at
	s.touchDriver(id, d)
	return Ack{Online: &online}, nil
}

func (s *State) request(rider string, c requestCmd, at time.Time) (any, *apperr.Error) {
	switch {
	case rider == "" || c.RideID == "" || c.HoldID.IsZero():
		return nil, apperr.New(apperr.Malformed, "bad command")
	case !c.Pickup.Valid():
		return nil, apperr.Field("pickup", "pickup is not a position on Earth")
	case !c.Dropoff.Valid():
		return nil, apperr.Field("dropoff", "dropoff is not a position on Earth")
	case c.Fare == 0 || c.Hold < c.Fare:
		return nil, apperr.New(apperr.Malformed, "bad fare")
	case c.Currency != Currency:
		return nil, apperr.Field("currency", "rides are priced in %s", Currency)
	}
	if s.ride(c.RideID) != nil {
		return nil, apperr.New(apperr.Conflict, "this ride exists already")
	}
	if id, ok := s.active[rider]; ok {
		return nil, &apperr.Error{Code: RideActive, Message: "you have a ride that has not ended: " + id}
	}
	r := &Ride{ID: c.RideID, Rider: rider, Status: StatusRequested, Pickup: c.Pickup, Dropoff: c.Dropoff,
		DistanceMeters: c.DistanceMeters, EstimatedFare: c.Fare, HoldAmount: c.Hold, Currency: c.Currency,
		HomeDC: c.DC, Dispatcher: c.DC, RiderHold: c.HoldID, RequestedAt: at, IdleSince: at}
	s.touchRide(r) // and the rider's active ride
	s.pushRide(r, rider)
	s.changes = append(s.changes, Change{Kind: kindRequest, RideID: r.ID})
	if c.Offer != nil {
		c.Offer.RideID = r.ID
		_, _ = s.offer(*c.Offer, at)
	}
	return Ack{RideID: r.ID, Status: r.Status}, nil
}

// liveOffer is the ride whose offer driver id holds at at, if any. The
// caller holds s.mu.
func (s *State) liveOffer(id string, at time.Time) *Ride {
	r := s.live[s.offers[id]]
	if r == nil || r.Status != StatusRequested || r.Offer == nil || r.Offer.Driver != id || !r.Offer.live(at) {
		return nil
	}
	return r
}

// free reports whether driver id may be offered a ride at at. The caller
// holds s.mu.
func (s *State) free(id string, at time.Time) bool {
	d := s.online[id]
	return d != nil && d.Online && d.Ride == "" && s.liveOffer(id, at) == nil
}

// dropOffer ends r's offer: declined (or let go), the driver is tried.
func (s *State) dropOffer(r *Ride, at time.Time, tried bool) {
	o := r.Offer
	if o == nil {
		return
	}
	if s.offers[o.Driver] == r.ID {
		delete(s.offers, o.Driver)
	}
	if tried && !slices.Contains(r.Tried, o.Driver) {
		r.Tried = append(r.Tried, o.Driver)
	}
	if o.live(at) {
		r.IdleSince = at
	} else {
		r.IdleSince = o.ExpiresAt
	}
	r.Offer = nil
	s.touchRide(r)
}

func (s *State) offer(c offerCmd, at time.Time) (any, *apperr.Error) {
	r := s.ride(c.RideID)
	timeout := time.Duration(c.TimeoutMs) * time.Millisecond
	switch {
	case r == nil:
		return nil, apperr.New(apperr.NotFound, "no such ride")
	case c.Driver == "" || timeout < MinOfferTimeout || timeout > MaxOfferTimeout:
		return nil, apperr.New(apperr.Malformed, "bad command")
	case r.Status != StatusRequested:
		return nil, apperr.New(apperr.Conflict, "the ride is %s", r.Status)
	case r.Offer.live(at):
		return nil, apperr.New(apperr.Conflict, "the ride is offered to a driver already")
	case r.Attempts >= MaxOffers:
		return nil, apperr.New(apperr.Conflict, "the ride was offered to %d drivers", MaxOffers)
	case c.Driver == r.Rider || r.tried(c.Driver):
		return nil, apperr.New(apperr.Conflict, "this driver cannot be offered this ride")
	case !s.free(c.Driver, at):
		return nil, apperr.New(apperr.Conflict, "the driver is offline or busy")
	}
	s.dropOffer(r, at, true) // an expired offer: its driver let it go
	r.Offer = &Offer{Driver: c.Driver, OfferedAt: at, ExpiresAt: at.Add(timeout), PickupMeters: c.PickupMeters}
	r.Attempts++
	if c.DC != "" {
		r.Dispatcher = c.DC
	}
	if prev := s.live[s.offers[c.Driver]]; prev != nil && prev != r {
		s.touchRide(prev) // its driver no longer holds its expired offer
	}
	s.offers[c.Driver] = r.ID
	s.touchRide(r)
	ov := r.offerView()
	s.pushes = append(s.pushes, Push{User: c.Driver, Frame: Frame{Type: "ride.offer", Offer: &ov}})
	s.changes = append(s.changes, Change{Kind: kindOffer, RideID: r.ID, Driver: c.Driver})
	exp := r.Offer.ExpiresAt
	return Ack{RideID: r.ID, Status: r.Status, Driver: c.Driver, ExpiresAt: &exp}, nil
}

// offerError is why driver may not act on r's offer: not_found to a
// driver who never had it, offer_expired to one who had it.
func offerError(r *Ride, driver string) *apperr.Error {
	if r.tried(driver) {
		return &apperr.Error{Code: OfferExpired, Message: "the offer has expired"}
	}
	return apperr.New(apperr.NotFound, "no such offer for you")
}

func (s *State) decline(r *Ride, driver string, at time.Time) (any, *apperr.Error) {
	if r.Status != StatusRequested || r.Offer == nil || r.Offer.Driver != driver || !r.Offer.live(at) {
		return nil, offerError(r, driver)
	}
	s.dropOffer(r, at, true)
	s.changes = append(s.changes, Change{Kind: kindDecline, RideID: r.ID, Driver: driver})
	return Ack{RideID: r.ID, Status: "declined"}, nil
}

func (s *State) accept(r *Ride, driver string, at time.Time) (any, *apperr.Error) {
	if r.Status != StatusRequested || r.Offer == nil || r.Offer.Driver != driver || !r.Offer.live(at) {
		if r.Driver == driver && r.Status != StatusRequested {
			return nil, apperr.New(apperr.Conflict, "you accepted this ride already")
		}
		return nil, offerError(r, driver)
	}
	d := s.online[driver] // an offer stands only while its driver is online
	if d == nil || d.Ride != "" || s.offers[driver] != r.ID {
		// Never a second ride for one driver, whatever the clocks said.
		return nil, apperr.New(apperr.Conflict, "you are on another ride")
	}
	delete(s.offers, driver)
	d.Ride, d.Rider = r.ID, r.Rider // follows from r once written
	r.Offer = nil
	r.Driver, r.Status, r.AcceptedAt = driver, StatusAccepted, &at
	s.touchRide(r)
	s.pushRide(r, r.Rider, driver)
	s.changes = append(s.changes, Change{Kind: kindAccept, RideID: r.ID, Driver: driver})
	return Ack{RideID: r.ID, Status: r.Status, Driver: driver}, nil
}

// hold records that the rider's money is held for the driver.
func (s *State) hold(r *Ride, id ledger.ID) (any, *apperr.Error) {
	switch {
	case id.IsZero():
		return nil, apperr.New(apperr.Malformed, "bad command")
	case !r.Assigned():
		return nil, apperr.New(apperr.Conflict, "the ride is %s", r.Status)
	case !r.DriverHold.IsZero() && r.DriverHold != id:
		return nil, apperr.New(apperr.Conflict, "another hold is recorded")
	}
	r.DriverHold = id
	s.touchRide(r)
	s.changes = append(s.changes, Change{Kind: kindHold, RideID: r.ID, Driver: r.Driver})
	return Ack{RideID: r.ID, Status: r.Status}, nil
}

// advance moves a trip on: arrived, started, completed; only its driver may.
func (s *State) advance(r *Ride, kind, actor string, fare uint64, at time.Time) (any, *apperr.Error) {
	if actor == "" || actor != r.Driver {
		if actor == r.Rider {
			return nil, apperr.New(apperr.Forbidden, "only the ride's driver may do this")
		}
		return nil, apperr.New(apperr.NotFound, "no such ride")
	}
	from, to := StatusAccepted, StatusArrived
	switch kind {
	case kindStart:
		from, to = StatusArrived, StatusInProgress
	case kindComplete:
		from, to = StatusInProgress, StatusCompleted
	}
	if r.Status != from {
		return nil, apperr.New(apperr.Conflict, "the ride is %s, not %s", r.Status, from)
	}
	switch kind {
	case kindArrive:
		r.ArrivedAt = &at
	case kindStart:
		if r.DriverHold.IsZero() {
			// The trip starts only once the rider's money is held.
			return nil, &apperr.Error{Code: PaymentPending, Message: "the rider's payment is not confirmed yet; retry shortly", RetryAfter: 1}
		}
		r.StartedAt = &at
	case kindComplete:
		if fare == 0 {
			return nil, apperr.Field("fare", "fare must be positive")
		}
		r.Fare = min(fare, r.HoldAmount)
		r.EndedAt = &at
		s.end(r)
	}
	r.Status = to
	s.touchRide(r)
	s.pushRide(r, r.Rider, r.Driver)
	s.changes = append(s.changes, Change{Kind: kind, RideID: r.ID, Driver: r.Driver})
	return Ack{RideID: r.ID, Status: r.Status}, nil
}

// end frees the ride's driver (its rider once it is written); r.EndedAt
// is set.
func (s *State) end(r *Ride) {
	s.space.Tx().SetBlind(endedKey(*r.EndedAt, r.ID), nil) // read after a restart only
	if r.Driver == "" {
		return
	}
	if d := s.online[r.Driver]; d != nil && d.Ride == r.ID { // on a ride: online
		d.Ride, d.Rider = "", ""
	}
}

func (s *State) cancel(r *Ride, actor string, c rideCmd, at time.Time) (any, *apperr.Error) {
	by := ""
	switch {
	case c.System && actor == "":
		by = BySystem
	case actor != "" && actor == r.Rider:
		by = ByRider
	case actor != "" && actor == r.Driver:
		by = ByDriver
	default:
		return nil, apperr.New(apperr.NotFound, "no such ride")
	}
	if !r.Active() {
		return nil, apperr.New(apperr.Conflict, "the ride is %s already", r.Status)
	}
	if r.Status == StatusInProgress && by != BySystem {
		return nil, apperr.New(apperr.Conflict, "the trip has started: the driver completes it")
	}
	if by == ByRider && r.Status == StatusArrived && r.AcceptedAt != nil && at.Sub(*r.AcceptedAt) > FreeCancelWindow && !r.DriverHold.IsZero() {
		// The driver came for nothing: a fee, from the hold, for them. A
		// driver who has not arrived earns no fee.
		r.CancelFee = min(CancelFee, r.HoldAmount)
	}
	if r.Offer != nil {
		driver, live := r.Offer.Driver, r.Offer.live(at)
		s.dropOffer(r, at, false)
		if live {
			s.pushes = append(s.pushes, Push{User: driver, Frame: Frame{Type: "ride.offer_withdrawn", RideID: r.ID}})
		}
	}
	r.Status, r.EndedAt, r.CancelledBy, r.CancelReason = StatusCancelled, &at, by, c.Reason
	s.end(r)
	s.touchRide(r)
	s.pushRide(r, r.Rider, r.Driver)
	s.changes = append(s.changes, Change{Kind: kindCancel, RideID: r.ID, Driver: r.Driver})
	return Ack{RideID: r.ID, Status: r.Status}, nil
}

func (s *State) giveUp(r *Ride, at time.Time) (any, *apperr.Error) {
	if r.Status != StatusRequested || r.Offer.live(at) {
		return nil, apperr.New(apperr.Conflict, "the ride is not waiting for a driver")
	}
	s.dropOffer(r, at, true)
	r.Status, r.EndedAt = StatusNoDriver, &at
	s.end(r)
	s.touchRide(r)
	s.pushRide(r, r.Rider)
	s.changes = append(s.changes, Change{Kind: kindGiveUp, RideID: r.ID})
	return Ack{RideID: r.ID, Status: r.Status}, nil
}

// pushRide queues r's new state for the devices of users.
func (s *State) pushRide(r *Ride, users ...string) {
	for _, u := range users {
		if u == "" {
			continue
		}
		v := r.ViewFor(u)
		s.pushes = append(s.pushes, Push{User: u, Frame: Frame{Type: "ride", Ride: &v}})
	}
}
