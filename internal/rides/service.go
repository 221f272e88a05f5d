package rides

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sync"
	"time"

	"superapp/internal/apperr"
	"superapp/internal/cmdlog"
	"superapp/internal/ledger"
	"superapp/internal/pay"
	"superapp/internal/store"
)

// Signals carries ephemeral messages between nodes (driver locations):
// never stored, a node that is down misses them. engine.Engine is one.
type Signals interface {
	Broadcast(subject string, data []byte)
	Listen(subject string, fn func(data []byte)) error
}

// Config configures a Service.
type Config struct {
	Log cmdlog.Appender
	// Store keeps the read model (the node's state store).
	Store *store.DB
	// Pay holds, captures and releases the riders' money.
	Pay *pay.Service
	// DC is this node's data center: the home of the rides it takes.
	DC string
	// Secret keys the ids of the holds for drivers; the same on every node.
	Secret []byte
	// Signals spreads driver locations to the other nodes (nil: this node
	// only).
	Signals Signals
	Now     func() time.Time
	Logger  *slog.Logger

	// OfferTimeout is how long a driver has to accept an offer (15s).
	OfferTimeout time.Duration
	// TakeoverAfter is how long a ride dispatched by another DC may sit
	// without an offer (or a payment step) before this node takes it over
	// (10s).
	TakeoverAfter time.Duration
	// SearchTimeout is how long a ride may find no free driver before the
	// search gives up (60s).
	SearchTimeout time.Duration
	// LocationTTL is how old a driver's last location may be for the
	// driver to get offers (30s).
	LocationTTL time.Duration
	// MaxPickupMeters is how far from the pickup a driver may be (5 km).
	MaxPickupMeters float64
	// ScanInterval is how often the dispatcher looks for expired offers
	// and stalled rides (250ms).
	ScanInterval time.Duration
	// Dispatchers is how many rides one node dispatches at once (32).
	Dispatchers int
}

func (c *Config) defaults() {
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	set := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	set(&c.OfferTimeout, 15*time.Second)
	set(&c.TakeoverAfter, 10*time.Second)
	set(&c.SearchTimeout, 60*time.Second)
	set(&c.LocationTTL, 30*time.Second)
	set(&c.ScanInterval, 250*time.Millisecond)
	c.OfferTimeout = min(max(c.OfferTimeout, MinOfferTimeout), MaxOfferTimeout)
	if c.MaxPickupMeters == 0 {
		c.MaxPickupMeters = 5000
	}
	if c.Dispatchers == 0 {
		c.Dispatchers = 32
	}
}

// Service is the taxi service's use cases, its dispatcher and the
// settlement of its payments.
type Service struct {
	cfg     Config
	log     *slog.Logger
	state   *State
	machine *cmdlog.Machine
	sub     *cmdlog.Submitter
	pay     *pay.Service
	loc     *locations
	disp    *dispatcher
	settle  *settler

	mu        sync.RWMutex
	listeners []func([]Push)

	stop context.CancelFunc
	wg   sync.WaitGroup
}

// New returns a service; the node must feed Machine() the RIDES stream
// and call Start.
func New(cfg Config) *Service {
	cfg.defaults()
	space := cfg.Store.Space(Stream)
	st := NewState(space)
	m := cmdlog.NewMachine(Stream, space, st.Apply, cfg.Logger)
	s := &Service{cfg: cfg, log: cfg.Logger.With("feature", "rides"), state: st, machine: m, pay: cfg.Pay,
		sub: &cmdlog.Submitter{Log: cfg.Log, Machine: m, Subject: "rides", Now: cfg.Now}}
	s.loc = newLocations(s)
	s.disp = newDispatcher(s)
	s.settle = newSettler(s)
	st.Observe(s.observe)
	m.SetLoader(s.load)
	return s
}

// resumeWindow is how long before the last ride ended an ended ride is
// still handed to the settlement after a restart. Settling takes seconds
// while the ledger is up; the window covers a cluster that stopped right
// after rides ended, without holding a day of ride ids in memory.
const resumeWindow = time.Hour

// load fills the read model's memory from the store when the node
// restores the machine, and hands the settlement the rides whose money may
// still have to move: no replayed change tells it of them any more.
func (s *Service) load() {
	s.state.load()
	for _, id := range s.state.unsettled(resumeWindow) {
		s.settle.Track(id, s.cfg.TakeoverAfter)
	}
}

// Machine is the state machine of the RIDES stream.
func (s *Service) Machine() *cmdlog.Machine { return s.machine }

// State is the rides read model.
func (s *Service) State() *State { return s.state }

// Notify adds a function told of the frames for users' devices; it must
// not block.
func (s *Service) Notify(fn func([]Push)) {
	s.mu.Lock()
	s.listeners = append(s.listeners, fn)
	s.mu.Unlock()
}

func (s *Service) push(ps []Push) {
	if len(ps) == 0 {
		return
	}
	s.mu.RLock()
	ls := s.listeners
	s.mu.RUnlock()
	for _, fn := range ls {
		fn(ps)
	}
}

// observe is told of every applied command's pushes and changes.
func (s *Service) observe(ps []Push, cs []Change) {
	s.push(ps)
	for _, c := range cs {
		switch c.Kind {
		case kindRequest, kindDecline:
			s.disp.wake(c.RideID)
		case kindOffline:
			s.loc.forget(c.Driver)
		}
		switch c.Kind {
		case kindRequest:
			// Its hold comes with it; checked once the dust settles.
			s.settle.Track(c.RideID, s.cfg.TakeoverAfter)
		case kindAccept, kindHold, kindComplete, kindCancel, kindGiveUp:
			s.settle.Track(c.RideID, 0)
		}
	}
}

// Start runs the dispatcher, the settlement and the location exchange
// until ctx ends or Close.
func (s *Service) Start(ctx context.Context) error {
	ctx, s.stop = context.WithCancel(ctx)
	if s.cfg.Signals != nil {
		if err := s.cfg.Signals.Listen(locationSubject, s.loc.receive); err != nil {
			s.stop()
			return fmt.Errorf("listen for driver locations: %w", err)
		}
	}
	s.run(ctx, s.loc.run)
	s.run(ctx, s.disp.run)
	s.run(ctx, s.settle.Run)
	return nil
}

func (s *Service) run(ctx context.Context, fn func(context.Context)) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		fn(ctx)
	}()
}

// Close stops the service's goroutines and writers; call it before the
// engine closes.
func (s *Service) Close() {
	if s.stop != nil {
		s.stop()
	}
	s.wg.Wait()
	s.sub.Close()
}

// caughtUp reports whether this node has applied the rides and the ledger
// as far as the cluster has: only then does it act on what it sees.
func (s *Service) caughtUp() bool {
	ok, _ := s.machine.CaughtUp()
	if ok && s.pay != nil {
		ok, _ = s.pay.Machine().CaughtUp()
	}
	return ok
}

var clientIDRE = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)

// Written says where a write landed: positions to read it elsewhere, and
// whether it had been applied before.
type Written struct {
	Positions cmdlog.Positions
	Replayed  bool
}

func (w *Written) add(res cmdlog.Result) {
	if w.Positions == nil {
		w.Positions = cmdlog.Positions{}
	}
	w.Positions.Add(res.Position)
	w.Replayed = w.Replayed || res.Replayed
}

// GoOnline makes the driver available for offers, at a first location if
// given. Errors: invalid_field.
func (s *Service) GoOnline(ctx context.Context, w cmdlog.Write, driver string, at *Point) (DriverStatus, Written, error) {
	if at != nil && !at.Valid() {
		return DriverStatus{}, Written{}, apperr.Field("lat", "lat and lng must be a position on Earth")
	}
	var out Written
	res, err := s.sub.Submit(ctx, w, kindOnline, driver, struct{}{})
	if err != nil {
		return DriverStatus{}, out, err
	}
	out.add(res)
	if at != nil {
		s.loc.update(driver, *at)
	}
	return s.state.Driver(driver), out, nil
}

// GoOffline stops offers to the driver; an offer in hand is declined.
// Errors: conflict (on a ride).
func (s *Service) GoOffline(ctx context.Context, w cmdlog.Write, driver string) (DriverStatus, Written, error) {
	var out Written
	res, err := s.sub.Submit(ctx, w, kindOffline, driver, struct{}{})
	if err != nil {
		return DriverStatus{}, out, err
	}
	out.add(res)
	return s.state.Driver(driver), out, nil
}

// UpdateLocation records where an online driver is, on every node (not in
// the log). Errors: invalid_field, driver_offline.
func (s *Service) UpdateLocation(driver string, p Point) error {
	if !p.Valid() {
		return apperr.Field("lat", "lat and lng must be a position on Earth")
	}
	if !s.state.Driver(driver).Online {
		return &apperr.Error{Code: DriverOffline, Message: "go online first"}
	}
	s.loc.update(driver, p)
	return nil
}

// Estimate is what a ride would cost and how soon a driver could come.
type Estimate struct {
	DistanceMeters  int64  `json:"distance_meters"`
	DurationSeconds int    `json:"duration_seconds"`
	Fare            uint64 `json:"fare"`
	HoldAmount      uint64 `json:"hold_amount"`
	Currency        string `json:"currency"`
	// DriversNearby counts the free drivers within reach of the pickup;
	// PickupEtaSeconds is how soon the nearest could be there (-1: none).
	DriversNearby    int `json:"drivers_nearby"`
	PickupEtaSeconds int `json:"pickup_eta_seconds"`
}

// citySpeed is the average speed ETAs assume: 30 km/h.
const citySpeed = 30 / 3.6

// Estimate prices a ride. Errors: invalid_field.
func (s *Service) Estimate(from, to Point) (Estimate, error) {
	meters, err := tripMeters(from, to)
	if err != nil {
		return Estimate{}, err
	}
	fare := FareFor(meters)
	e := Estimate{DistanceMeters: int64(meters), DurationSeconds: etaSeconds(meters), Fare: fare, HoldAmount: HoldFor(fare),
		Currency: Currency, PickupEtaSeconds: -1}
	hits := s.disp.candidates(&Ride{Pickup: from}, s.cfg.Now(), 10)
	e.DriversNearby = len(hits)
	if len(hits) > 0 {
		e.PickupEtaSeconds = etaSeconds(hits[0].Meters)
	}
	return e, nil
}

func etaSeconds(meters float64) int { return int(max(0, (meters+citySpeed-1)/citySpeed)) }

func tripMeters(from, to Point) (float64, error) {
	switch {
	case !from.Valid():
		return 0, apperr.Field("pickup", "pickup must be a position on Earth (lat -90..90, lng -180..180)")
	case !to.Valid():
		return 0, apperr.Field("dropoff", "dropoff must be a position on Earth (lat -90..90, lng -180..180)")
	}
	m := from.Meters(to)
	if m > MaxTripMeters {
		return 0, apperr.Field("dropoff", "a ride is at most %d km long", MaxTripMeters/1000)
	}
	return m, nil
}

// RequestInput is a ride as a rider asks for it.
type RequestInput struct {
	// ID is the rider's id for the request: it makes it idempotent.
	ID       string `json:"id"`
	Pickup   *Point `json:"pickup"`
	Dropoff  *Point `json:"dropoff"`
	Currency string `json:"currency,omitempty"`
}

// riderHoldID is the client id of a ride's request-time hold, keyed with
// the cluster's secret: a rider who could work it out could place a hold
// of their own under it beforehand and jam the ride's payment.
func (s *Service) riderHoldID(rideID string) string {
	return pay.ServiceHoldID(s.cfg.Secret, "ride-", "rider-hold/"+rideID)
}

// Request books a ride: it holds the estimated fare and a margin from the
// rider's wallet and logs the request, with a first offer to the nearest
// free driver; the dispatcher takes it from there. The hold and the request
// are committed at the same time, and the request is acknowledged once
// both are; should the hold be refused after all, the ride is cancelled.
// Errors: invalid_field, ride_active, idempotency_key_reused, the ledger's
// refusals (exceeds_credits: not enough money; limit_exceeded),
// unavailable.
func (s *Service) Request(ctx context.Context, rider string, in RequestInput) (View, Written, error) {
	var out Written
	if !clientIDRE.MatchString(in.ID) {
		return View{}, out, apperr.Field("id", "id must be 1-64 characters of letters, digits and . _ : -")
	}
	if in.Pickup == nil {
		return View{}, out, apperr.Field("pickup", "pickup is required")
	}
	if in.Dropoff == nil {
		return View{}, out, apperr.Field("dropoff", "dropoff is required")
	}
	if in.Currency == "" {
		in.Currency = Currency
	}
	if in.Currency != Currency {
		return View{}, out, apperr.Field("currency", "rides are priced in %s", Currency)
	}
	meters, err := tripMeters(*in.Pickup, *in.Dropoff)
	if err != nil {
		return View{}, out, err
	}
	id := RideID(rider, in.ID)
	fare := FareFor(meters)
	hold := HoldFor(fare)
	r, exists := s.state.Ride(id)
	switch {
	case exists && (r.Pickup != *in.Pickup || r.Dropoff != *in.Dropoff):
		return View{}, out, apperr.New(apperr.IdemReused, "this id was used for another ride")
	case exists && !r.Active():
		out.Replayed = true
		return r.ViewFor(rider), out, nil
	case !exists:
		if other, ok := s.state.ActiveRide(rider); ok {
			return View{}, out, &apperr.Error{Code: RideActive, Message: "you have a ride that has not ended: " + other}
		}
		if err := s.affords(rider, hold); err != nil {
			return View{}, out, err
		}
	}
	// The hold and the request go to their streams at once.
	holdIn := pay.HoldInput{ID: s.riderHoldID(id), Payee: PlatformUser, Amount: hold, Currency: Currency, ExpiresIn: 3600}
	holdID := pay.TransferID(rider, "hold/"+holdIn.ID)
	var hres cmdlog.Result
	var herr error
	held := make(chan struct{})
	go func() {
		defer close(held)
		_, hres, herr = s.pay.PlaceHold(ctx, rider, holdIn)
	}()
	var rerr error
	if !exists {
		c := requestCmd{RideID: id, Pickup: *in.Pickup, Dropoff: *in.Dropoff, DistanceMeters: int64(meters), Fare: fare, Hold: hold,
			Currency: Currency, HoldID: holdID, DC: s.cfg.DC}
		// The first offer goes with the request.
		if hits := s.disp.candidates(&Ride{Rider: rider, Pickup: *in.Pickup}, s.cfg.Now(), 1); len(hits) > 0 && s.disp.claim(s.disp.proposing, hits[0].ID) {
			defer s.disp.unclaim(s.disp.proposing, hits[0].ID)
			c.Offer = &offerCmd{Driver: hits[0].ID, TimeoutMs: s.cfg.OfferTimeout.Milliseconds(), PickupMeters: int64(hits[0].Meters), DC: s.cfg.DC}
		}
		var res cmdlog.Result
		res, rerr = s.sub.Submit(ctx, cmdlog.Write{ID: "ride/" + id, Hash: fingerprint(in.Pickup, in.Dropoff)}, kindRequest, rider, c)
		if rerr == nil {
			out.add(res)
		}
	}
	<-held
	if herr == nil {
		out.add(hres)
	}
	refused := func(err error) bool {
		switch apperr.From(err).Code {
		case apperr.Unavailable, apperr.Isolated, apperr.Internal:
			return false
		}
		return !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
	}
	switch {
	case herr != nil && pay.IsLedgerCode(apperr.From(herr).Code):
		// No money for it after all: no ride either.
		if r, ok := s.state.Ride(id); ok && r.Active() {
			if _, err := s.sub.Submit(ctx, cmdlog.Write{ID: "cancel/" + id + "/system"}, kindCancel, "", rideCmd{RideID: id, System: true, Reason: "payment_failed"}); err != nil {
				s.log.Warn("cancel a ride whose hold was refused", "ride", id, "err", err)
			}
		}
		return View{}, out, herr
	case herr != nil:
		return View{}, out, herr // the settlement places the hold if the client does not come back
	case rerr != nil && refused(rerr):
		// Refused (a race with another request): the money goes back.
		if _, _, err := s.pay.Release(ctx, PlatformUser, holdID); err != nil {
			s.log.Warn("release the hold of a refused request", "ride", id, "err", err)
		}
		return View{}, out, rerr
	case rerr != nil:
		return View{}, out, rerr
	}
	r, _ = s.state.Ride(id)
	out.Replayed = out.Replayed || exists
	return r.ViewFor(rider), out, nil
}

// affords checks, from this node's ledger, that the rider can pay a hold:
// most requests that would be refused are, before anything is written.
func (s *Service) affords(rider string, hold uint64) error {
	if hold > pay.PerTransferLimit {
		return &apperr.Error{Code: pay.LimitExceeded, Field: "dropoff", Message: fmt.Sprintf("this ride would hold %d won, more than %d", hold, pay.PerTransferLimit)}
	}
	for _, b := range s.pay.State().Balances(rider) {
		if b.Currency == Currency && b.Available >= hold {
			return nil
		}
	}
	return &apperr.Error{Code: ledger.ExceedsCredits, Message: fmt.Sprintf("this ride holds %d won: not enough money in the wallet", hold)}
}

func fingerprint(v ...any) string {
	b, _ := json.Marshal(v)
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:16])
}

// Ride returns a ride to its rider or driver, with the driver's live
// location while they are on it. Errors: not_found.
func (s *Service) Ride(id, user string) (View, error) {
	v, ok := s.state.RideFor(id, user)
	if !ok {
		return View{}, apperr.New(apperr.NotFound, "no such ride")
	}
	switch v.Status {
	case StatusAccepted, StatusArrived, StatusInProgress:
		if p, ok := s.loc.get(v.DriverID); ok {
			v.DriverLocation = &p
		}
	}
	return v, nil
}

// Offers lists the offers that stand for the driver.
func (s *Service) Offers(driver string) []OfferView { return s.state.Offers(driver, s.cfg.Now()) }

// driverWrite names a participant's step on a ride: one per ride, kind and
// user, so a retry (or a second tap) returns the first outcome.
func driverWrite(kind, rideID, user string) cmdlog.Write {
	return cmdlog.Write{ID: kind + "/" + rideID + "/" + user}
}

func (s *Service) step(ctx context.Context, kind, user, rideID string, c rideCmd) (View, Written, error) {
	var out Written
	if user == "" {
		return View{}, out, apperr.New(apperr.NotFound, "no such ride")
	}
	if _, ok := s.state.Ride(rideID); !ok {
		return View{}, out, apperr.New(apperr.NotFound, "no such ride")
	}
	c.RideID = rideID
	res, err := s.sub.Submit(ctx, driverWrite(kind, rideID, user), kind, user, c)
	if err != nil {
		if e := apperr.From(err); e.Code == PaymentPending {
			retry := *e
			retry.RetryAfter = 1 // not kept with the stored outcome
			return View{}, out, &retry
		}
		return View{}, out, err
	}
	out.add(res)
	switch kind {
	case kindAccept, kindComplete, kindCancel:
		// Settle now, so the caller sees the money moved; the settlement
		// loop finishes what this could not.
		if err := s.settle.Run1(ctx, rideID, true); err != nil {
			if ctx.Err() == nil {
				s.log.Info("settle after "+kind, "ride", rideID, "err", err)
			}
		} else {
			// The steps were taken here, by this call or the settlement
			// loop: what this node applied of the ledger covers them.
			out.add(cmdlog.Result{Position: cmdlog.Position{Stream: pay.Stream, Seq: s.pay.Machine().Applied()}})
		}
	}
	v, ok := s.state.RideFor(rideID, user)
	if !ok && kind == kindDecline {
		return View{ID: rideID, Status: "declined"}, out, nil
	}
	return v, out, nil
}

// Accept takes the ride offered to the driver. Errors: not_found,
// offer_expired, conflict.
func (s *Service) Accept(ctx context.Context, driver, rideID string) (View, Written, error) {
	return s.step(ctx, kindAccept, driver, rideID, rideCmd{})
}

// Decline turns the offer down; the ride goes to the next driver. Errors:
// not_found, offer_expired.
func (s *Service) Decline(ctx context.Context, driver, rideID string) (View, Written, error) {
	return s.step(ctx, kindDecline, driver, rideID, rideCmd{})
}

// Arrive says the driver waits at the pickup. Errors: not_found,
// forbidden (the rider), conflict.
func (s *Service) Arrive(ctx context.Context, driver, rideID string) (View, Written, error) {
	return s.step(ctx, kindArrive, driver, rideID, rideCmd{})
}

// StartTrip starts the trip with the rider on board. Errors: not_found,
// forbidden, conflict, payment_pending (retry shortly).
func (s *Service) StartTrip(ctx context.Context, driver, rideID string) (View, Written, error) {
	return s.step(ctx, kindStart, driver, rideID, rideCmd{})
}

// Complete ends the trip and charges its fare: the upfront fare the rider
// saw when requesting, never more (a driver's self-reported position must
// not set the price). The driver's earnings land in their wallet. Errors:
// not_found, forbidden, conflict.
func (s *Service) Complete(ctx context.Context, driver, rideID string) (View, Written, error) {
	r, ok := s.state.Ride(rideID)
	if !ok {
		return View{}, Written{}, apperr.New(apperr.NotFound, "no such ride")
	}
	return s.step(ctx, kindComplete, driver, rideID, rideCmd{Fare: r.EstimatedFare})
}

// Cancel cancels a ride, by its rider (free until a driver is assigned and
// for FreeCancelWindow after; then CancelFee) or its driver (never a
// charge). Errors: not_found, conflict.
func (s *Service) Cancel(ctx context.Context, user, rideID, reason string) (View, Written, error) {
	if len(reason) > 200 {
		return View{}, Written{}, apperr.Field("reason", "reason is at most 200 bytes")
	}
	return s.step(ctx, kindCancel, user, rideID, rideCmd{Reason: reason})
}

// driverHold is the id of the hold for r's driver, and the client id it is
// placed with. The client id is keyed with the cluster's secret: the
// driver, the hold's payee, cannot work it out and resolve the hold
// through the wallet API behind the ride's back.
func (s *Service) driverHold(r *Ride) (ledger.ID, string) {
	client := pay.ServiceHoldID(s.cfg.Secret, "ride-", "driver-hold/"+r.ID+"/"+r.Driver)
	return pay.TransferID(r.Rider, "hold/"+client), client
}
