package rides

import (
	"encoding/binary"
	"errors"
	"math"
	"time"
)

// Rides and drivers are written at every step of every trip, so they are
// stored in a compact binary form rather than JSON: a version byte, then
// the fields in a fixed order (varints, length-prefixed strings, floats as
// their IEEE bits, times as Unix seconds, nanoseconds and zone offset, so
// that a decoded time reads, and prints, as the one encoded).

const codecVersion = 1

var errCodec = errors.New("rides: bad stored record")

type enc struct{ b []byte }

func (e *enc) u(v uint64)   { e.b = binary.AppendUvarint(e.b, v) }
func (e *enc) i(v int64)    { e.b = binary.AppendVarint(e.b, v) }
func (e *enc) f(v float64)  { e.b = binary.LittleEndian.AppendUint64(e.b, math.Float64bits(v)) }
func (e *enc) str(s string) { e.u(uint64(len(s))); e.b = append(e.b, s...) }
func (e *enc) flag(ok bool) {
	if ok {
		e.b = append(e.b, 1)
	} else {
		e.b = append(e.b, 0)
	}
}

func (e *enc) time(t time.Time) {
	e.flag(!t.IsZero())
	if t.IsZero() {
		return
	}
	_, off := t.Zone()
	e.i(t.Unix())
	e.u(uint64(t.Nanosecond()))
	e.i(int64(off))
}

func (e *enc) ptime(t *time.Time) {
	e.flag(t != nil)
	if t != nil {
		e.time(*t)
	}
}

type dec struct {
	b   []byte
	bad bool
}

func (d *dec) fail() { d.bad, d.b = true, nil }

func (d *dec) u() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) i() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) f() float64 {
	if len(d.b) < 8 {
		d.fail()
		return 0
	}
	v := math.Float64frombits(binary.LittleEndian.Uint64(d.b))
	d.b = d.b[8:]
	return v
}

func (d *dec) str() string {
	n := d.u()
	if uint64(len(d.b)) < n {
		d.fail()
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *dec) flag() bool {
	if len(d.b) < 1 || d.b[0] > 1 {
		d.fail()
		return false
	}
	v := d.b[0] == 1
	d.b = d.b[1:]
	return v
}

func (d *dec) time() time.Time {
	if !d.flag() {
		return time.Time{}
	}
	sec, nsec, off := d.i(), d.u(), d.i()
	t := time.Unix(sec, int64(nsec))
	if off == 0 {
		return t.UTC()
	}
	return t.In(time.FixedZone("", int(off)))
}

func (d *dec) ptime() *time.Time {
	if !d.flag() {
		return nil
	}
	t := d.time()
	return &t
}

func (d *dec) id(v *[16]byte) {
	if len(d.b) < 16 {
		d.fail()
		return
	}
	copy(v[:], d.b)
	d.b = d.b[16:]
}

// err says whether the record was read whole: one this binary cannot
// read means the store is not what it wrote (the caller reports it with
// Space.Fail).
func (d *dec) err() error {
	if d.bad || len(d.b) != 0 {
		return errCodec
	}
	return nil
}

func (e *enc) point(p Point) { e.f(p.Lat); e.f(p.Lng) }
func (d *dec) point() Point  { return Point{Lat: d.f(), Lng: d.f()} }

// encodeRide encodes r, whether its offer's driver still holds it (State.offers)
// and the latest command time when it was written (State.lastAt).
func encodeRide(r *Ride, held bool, stamp time.Time) []byte {
	e := enc{b: make([]byte, 0, 256)}
	e.b = append(e.b, codecVersion)
	e.str(r.ID)
	e.str(r.Rider)
	e.str(r.Driver)
	e.str(r.Status)
	e.point(r.Pickup)
	e.point(r.Dropoff)
	e.i(r.DistanceMeters)
	e.u(r.EstimatedFare)
	e.u(r.HoldAmount)
	e.u(r.Fare)
	e.u(r.CancelFee)
	e.str(r.Currency)
	e.str(r.HomeDC)
	e.str(r.Dispatcher)
	e.flag(r.Offer != nil)
	if o := r.Offer; o != nil {
		e.flag(held)
		e.str(o.Driver)
		e.time(o.OfferedAt)
		e.time(o.ExpiresAt)
		e.i(o.PickupMeters)
	}
	e.i(int64(r.Attempts))
	e.u(uint64(len(r.Tried)))
	for _, t := range r.Tried {
		e.str(t)
	}
	e.b = append(e.b, r.RiderHold[:]...)
	e.b = append(e.b, r.DriverHold[:]...)
	e.time(r.RequestedAt)
	e.ptime(r.AcceptedAt)
	e.ptime(r.ArrivedAt)
	e.ptime(r.StartedAt)
	e.ptime(r.EndedAt)
	e.str(r.CancelledBy)
	e.str(r.CancelReason)
	e.time(r.IdleSince)
	e.time(stamp)
	return e.b
}

func decodeRide(b []byte) (r *Ride, held bool, stamp time.Time, err error) {
	d := dec{b: b}
	if len(b) == 0 || b[0] != codecVersion {
		d.fail()
	} else {
		d.b = b[1:]
	}
	r = &Ride{}
	r.ID = d.str()
	r.Rider = d.str()
	r.Driver = d.str()
	r.Status = d.str()
	r.Pickup = d.point()
	r.Dropoff = d.point()
	r.DistanceMeters = d.i()
	r.EstimatedFare = d.u()
	r.HoldAmount = d.u()
	r.Fare = d.u()
	r.CancelFee = d.u()
	r.Currency = d.str()
	r.HomeDC = d.str()
	r.Dispatcher = d.str()
	if d.flag() {
		held = d.flag()
		r.Offer = &Offer{Driver: d.str(), OfferedAt: d.time(), ExpiresAt: d.time(), PickupMeters: d.i()}
	}
	r.Attempts = int(d.i())
	if n := d.u(); n > 0 && n <= uint64(len(d.b)) {
		r.Tried = make([]string, n)
		for i := range r.Tried {
			r.Tried[i] = d.str()
		}
	} else if n > 0 {
		d.fail()
	}
	d.id((*[16]byte)(&r.RiderHold))
	d.id((*[16]byte)(&r.DriverHold))
	r.RequestedAt = d.time()
	r.AcceptedAt = d.ptime()
	r.ArrivedAt = d.ptime()
	r.StartedAt = d.ptime()
	r.EndedAt = d.ptime()
	r.CancelledBy = d.str()
	r.CancelReason = d.str()
	r.IdleSince = d.time()
	stamp = d.time()
	return r, held, stamp, d.err()
}

func encodeDriver(s *driverState) []byte {
	e := enc{b: make([]byte, 0, 32)}
	e.b = append(e.b, codecVersion)
	e.flag(s.Online)
	e.time(s.Since)
	return e.b
}

func decodeDriver(b []byte) (*driverState, error) {
	d := dec{b: b}
	if len(b) == 0 || b[0] != codecVersion {
		d.fail()
	} else {
		d.b = b[1:]
	}
	s := &driverState{}
	s.Online = d.flag()
	s.Since = d.time()
	return s, d.err()
}

func encodeTime(t time.Time) []byte {
	e := enc{b: []byte{codecVersion}}
	e.time(t)
	return e.b
}

func decodeTime(b []byte) (time.Time, error) {
	d := dec{b: b}
	if len(b) == 0 || b[0] != codecVersion {
		d.fail()
	} else {
		d.b = b[1:]
	}
	t := d.time()
	return t, d.err()
}
