package rides

import (
	"time"

	"superapp/internal/store"
)

// Rides and drivers are written at every step of every trip, so they are
// stored as compact binary records (store.Encoder) rather than JSON. The
// layouts below are the stored format: a field is never moved or removed,
// only a new layout version added.

// codecVersion is the layout version of every rides record.
const codecVersion = 1

func newDec(b []byte) *store.Decoder { return store.NewDecoder(b, codecVersion) }

func encPoint(e *store.Encoder, p Point) { e.Float(p.Lat); e.Float(p.Lng) }
func decPoint(d *store.Decoder) Point    { return Point{Lat: d.Float(), Lng: d.Float()} }

// encodeRide encodes r, whether its offer's driver still holds it (State.offers)
// and the latest command time when it was written (State.lastAt).
func encodeRide(r *Ride, held bool, stamp time.Time) []byte {
	e := store.NewEncoder(codecVersion, 256)
	e.Str(r.ID)
	e.Str(r.Rider)
	e.Str(r.Driver)
	e.Str(r.Status)
	encPoint(e, r.Pickup)
	encPoint(e, r.Dropoff)
	e.Int(r.DistanceMeters)
	e.Uint(r.EstimatedFare)
	e.Uint(r.HoldAmount)
	e.Uint(r.Fare)
	e.Uint(r.CancelFee)
	e.Str(r.Currency)
	e.Str(r.HomeDC)
	e.Str(r.Dispatcher)
	e.Bool(r.Offer != nil)
	if o := r.Offer; o != nil {
		e.Bool(held)
		e.Str(o.Driver)
		e.Time(o.OfferedAt)
		e.Time(o.ExpiresAt)
		e.Int(o.PickupMeters)
	}
	e.Int(int64(r.Attempts))
	e.Uint(uint64(len(r.Tried)))
	for _, t := range r.Tried {
		e.Str(t)
	}
	e.Fixed(r.RiderHold[:])
	e.Fixed(r.DriverHold[:])
	e.Time(r.RequestedAt)
	e.TimePtr(r.AcceptedAt)
	e.TimePtr(r.ArrivedAt)
	e.TimePtr(r.StartedAt)
	e.TimePtr(r.EndedAt)
	e.Str(r.CancelledBy)
	e.Str(r.CancelReason)
	e.Time(r.IdleSince)
	e.Time(stamp)
	return e.Bytes()
}

func decodeRide(b []byte) (r *Ride, held bool, stamp time.Time, err error) {
	d := newDec(b)
	r = &Ride{}
	r.ID = d.Str()
	r.Rider = d.Str()
	r.Driver = d.Str()
	r.Status = d.Str()
	r.Pickup = decPoint(d)
	r.Dropoff = decPoint(d)
	r.DistanceMeters = d.Int()
	r.EstimatedFare = d.Uint()
	r.HoldAmount = d.Uint()
	r.Fare = d.Uint()
	r.CancelFee = d.Uint()
	r.Currency = d.Str()
	r.HomeDC = d.Str()
	r.Dispatcher = d.Str()
	if d.Bool() {
		held = d.Bool()
		r.Offer = &Offer{Driver: d.Str(), OfferedAt: d.Time(), ExpiresAt: d.Time(), PickupMeters: d.Int()}
	}
	r.Attempts = int(d.Int())
	if n := d.Count(); n > 0 { // none stays nil, as it was
		r.Tried = make([]string, n)
		for i := range r.Tried {
			r.Tried[i] = d.Str()
		}
	}
	d.Fixed(r.RiderHold[:])
	d.Fixed(r.DriverHold[:])
	r.RequestedAt = d.Time()
	r.AcceptedAt = d.TimePtr()
	r.ArrivedAt = d.TimePtr()
	r.StartedAt = d.TimePtr()
	r.EndedAt = d.TimePtr()
	r.CancelledBy = d.Str()
	r.CancelReason = d.Str()
	r.IdleSince = d.Time()
	stamp = d.Time()
	return r, held, stamp, d.Err()
}

func encodeDriver(s *driverState) []byte {
	e := store.NewEncoder(codecVersion, 32)
	e.Bool(s.Online)
	e.Time(s.Since)
	return e.Bytes()
}

func decodeDriver(b []byte) (*driverState, error) {
	d := newDec(b)
	s := &driverState{}
	s.Online = d.Bool()
	s.Since = d.Time()
	return s, d.Err()
}

func encodeTime(t time.Time) []byte {
	e := store.NewEncoder(codecVersion, 1)
	e.Time(t)
	return e.Bytes()
}

func decodeTime(b []byte) (time.Time, error) {
	d := newDec(b)
	t := d.Time()
	return t, d.Err()
}
