package rides

import (
	"encoding/json"
	"slices"
	"sync"
	"time"

	"superapp/internal/apperr"
	"superapp/internal/cmdlog"
	"superapp/internal/ledger"
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

type driverState struct {
	online bool
	since  time.Time
	ride   string // the ride the driver is on
	offer  string // the ride last offered to the driver (live or not)
}

// State is the rides read model. It is safe for concurrent use.
type State struct {
	mu      sync.RWMutex
	rides   map[string]*Ride
	drivers map[string]*driverState
	// active is each rider's ride that has not ended.
	active map[string]string
	// open holds the rides looking for a driver.
	open map[string]struct{}

	// pushes and changes collect what the command being applied did.
	pushes   []Push
	changes  []Change
	observer func([]Push, []Change)
	// lastAt is the latest command time applied: commands are stamped by
	// the clocks of the DCs that submitted them, so a command may carry a
	// time before one applied earlier. Time never runs backwards here.
	lastAt time.Time
}

// NewState returns an empty state.
func NewState() *State {
	return &State{rides: map[string]*Ride{}, drivers: map[string]*driverState{}, active: map[string]string{}, open: map[string]struct{}{}}
}

// Observe sets the function told, after each applied command, of the
// pushes for devices and of what changed. It must not block.
func (s *State) Observe(fn func([]Push, []Change)) {
	s.mu.Lock()
	s.observer = fn
	s.mu.Unlock()
}

// Apply applies one RIDES command. It is deterministic: the envelope's At
// is the only clock it reads.
func (s *State) Apply(_ uint64, e *cmdlog.Envelope) (any, *apperr.Error) {
	s.mu.Lock()
	s.pushes, s.changes = s.pushes[:0], s.changes[:0]
	v, err := s.apply(e)
	var pushes []Push
	var changes []Change
	if err == nil {
		pushes, changes = slices.Clone(s.pushes), slices.Clone(s.changes)
	}
	obs := s.observer
	s.mu.Unlock()
	if obs != nil && (len(pushes) > 0 || len(changes) > 0) {
		obs(pushes, changes)
	}
	return v, err
}

func decode(e *cmdlog.Envelope, v any) *apperr.Error {
	if err := json.Unmarshal(e.Data, v); err != nil {
		return apperr.New(apperr.Malformed, "bad command")
	}
	return nil
}

func (s *State) apply(e *cmdlog.Envelope) (any, *apperr.Error) {
	at := e.At
	if at.Before(s.lastAt) {
		at = s.lastAt
	}
	s.lastAt = at
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
	r := s.rides[c.RideID]
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
	d := s.drivers[id]
	if d == nil {
		if !online {
			return Ack{Online: &online}, nil
		}
		d = &driverState{}
		s.drivers[id] = d
	}
	if !online && d.ride != "" {
		return nil, apperr.New(apperr.Conflict, "you are on a ride: complete or cancel it first")
	}
	if d.online == online {
		return Ack{Online: &online}, nil
	}
	if !online {
		// Going offline declines the offer in hand.
		if r := s.liveOffer(id, d, at); r != nil {
			s.dropOffer(r, at, true)
			s.changes = append(s.changes, Change{Kind: kindDecline, RideID: r.ID, Driver: id})
		}
		s.changes = append(s.changes, Change{Kind: kindOffline, Driver: id})
	}
	d.online, d.since = online, at
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
	if _, ok := s.rides[c.RideID]; ok {
		return nil, apperr.New(apperr.Conflict, "this ride exists already")
	}
	if id, ok := s.active[rider]; ok {
		return nil, &apperr.Error{Code: RideActive, Message: "you have a ride that has not ended: " + id}
	}
	r := &Ride{ID: c.RideID, Rider: rider, Status: StatusRequested, Pickup: c.Pickup, Dropoff: c.Dropoff,
		DistanceMeters: c.DistanceMeters, EstimatedFare: c.Fare, HoldAmount: c.Hold, Currency: c.Currency,
		HomeDC: c.DC, Dispatcher: c.DC, RiderHold: c.HoldID, RequestedAt: at, IdleSince: at}
	s.rides[r.ID] = r
	s.active[rider] = r.ID
	s.open[r.ID] = struct{}{}
	s.pushRide(r, rider)
	s.changes = append(s.changes, Change{Kind: kindRequest, RideID: r.ID})
	if c.Offer != nil {
		c.Offer.RideID = r.ID
		_, _ = s.offer(*c.Offer, at)
	}
	return Ack{RideID: r.ID, Status: r.Status}, nil
}

// liveOffer is the ride whose offer driver id holds at at, if any.
func (s *State) liveOffer(id string, d *driverState, at time.Time) *Ride {
	if d == nil || d.offer == "" {
		return nil
	}
	r := s.rides[d.offer]
	if r == nil || r.Status != StatusRequested || r.Offer == nil || r.Offer.Driver != id || !r.Offer.live(at) {
		return nil
	}
	return r
}

// free reports whether driver id may be offered a ride at at. The caller
// holds s.mu.
func (s *State) free(id string, at time.Time) bool {
	d := s.drivers[id]
	return d != nil && d.online && d.ride == "" && s.liveOffer(id, d, at) == nil
}

// dropOffer ends r's offer: declined (or let go), the driver is tried.
func (s *State) dropOffer(r *Ride, at time.Time, tried bool) {
	o := r.Offer
	if o == nil {
		return
	}
	if d := s.drivers[o.Driver]; d != nil && d.offer == r.ID {
		d.offer = ""
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
}

func (s *State) offer(c offerCmd, at time.Time) (any, *apperr.Error) {
	r := s.rides[c.RideID]
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
	s.drivers[c.Driver].offer = r.ID
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
	d := s.drivers[driver]
	if d == nil || d.ride != "" || d.offer != r.ID {
		// Never a second ride for one driver, whatever the clocks said.
		return nil, apperr.New(apperr.Conflict, "you are on another ride")
	}
	d.offer, d.ride = "", r.ID
	r.Offer = nil
	r.Driver, r.Status, r.AcceptedAt = driver, StatusAccepted, &at
	delete(s.open, r.ID)
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
	s.pushRide(r, r.Rider, r.Driver)
	s.changes = append(s.changes, Change{Kind: kind, RideID: r.ID, Driver: r.Driver})
	return Ack{RideID: r.ID, Status: r.Status}, nil
}

// end frees the ride's rider and driver.
func (s *State) end(r *Ride) {
	if s.active[r.Rider] == r.ID {
		delete(s.active, r.Rider)
	}
	delete(s.open, r.ID)
	if d := s.drivers[r.Driver]; d != nil && d.ride == r.ID {
		d.ride = ""
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

// Ride returns a copy of a ride.
func (s *State) Ride(id string) (*Ride, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r := s.rides[id]
	if r == nil {
		return nil, false
	}
	return r.clone(), true
}

// RideFor returns a ride to its rider or its driver; to anyone else it
// does not exist.
func (s *State) RideFor(id, user string) (View, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r := s.rides[id]
	if r == nil || user == "" || (user != r.Rider && user != r.Driver) {
		return View{}, false
	}
	return r.ViewFor(user), true
}

// Offers lists the offers that stand for driver at at (at most one).
func (s *State) Offers(driver string, at time.Time) []OfferView {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := []OfferView{}
	if r := s.liveOffer(driver, s.drivers[driver], at); r != nil {
		out = append(out, r.offerView())
	}
	return out
}

// Driver returns a driver's availability.
func (s *State) Driver(id string) DriverStatus {
	s.mu.RLock()
	defer s.mu.RUnlock()
	st := DriverStatus{DriverID: id}
	if d := s.drivers[id]; d != nil {
		st.Online, st.Since, st.RideID = d.online, d.since, d.ride
	}
	return st
}

// ActiveRide is the rider's ride that has not ended, if any.
func (s *State) ActiveRide(rider string) (string, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	id, ok := s.active[rider]
	return id, ok
}

// DriversRider is the rider of the ride driver is on, if any.
func (s *State) DriversRider(driver string) (rideID, rider string, ok bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	d := s.drivers[driver]
	if d == nil || d.ride == "" {
		return "", "", false
	}
	r := s.rides[d.ride]
	return r.ID, r.Rider, true
}
