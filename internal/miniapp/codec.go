package miniapp

import (
	"encoding/binary"
	"errors"
	"time"
)

// Pay requests and deliveries are written at every decision and attempt,
// so they are stored in a compact binary form rather than JSON: a version
// byte, then the fields in a fixed order (varints, length-prefixed
// strings, times as Unix seconds, nanoseconds and zone offset, so that a
// decoded time reads, and prints, as the one encoded).

const codecVersion = 1

var errCodec = errors.New("miniapp: bad stored record")

type enc struct{ b []byte }

func newEnc() enc { return enc{b: append(make([]byte, 0, 256), codecVersion)} }

func (e *enc) u(v uint64)   { e.b = binary.AppendUvarint(e.b, v) }
func (e *enc) i(v int64)    { e.b = binary.AppendVarint(e.b, v) }
func (e *enc) str(s string) { e.u(uint64(len(s))); e.b = append(e.b, s...) }
func (e *enc) bytes(b []byte) {
	e.u(uint64(len(b)))
	e.b = append(e.b, b...)
}
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

func newDec(b []byte) *dec {
	d := &dec{b: b}
	if len(b) == 0 || b[0] != codecVersion {
		d.fail()
	} else {
		d.b = b[1:]
	}
	return d
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

func (d *dec) bytes() []byte {
	n := d.u()
	if uint64(len(d.b)) < n {
		d.fail()
		return nil
	}
	b := append([]byte(nil), d.b[:n]...)
	d.b = d.b[n:]
	return b
}

func (d *dec) str() string { return string(d.bytes()) }

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

// err says whether the record was read whole: one this binary cannot
// read means the store is not what it wrote (the caller reports it with
// Space.Fail).
func (d *dec) err() error {
	if d.bad || len(d.b) != 0 {
		return errCodec
	}
	return nil
}

func encodeRequest(r *reqRec) []byte {
	e := newEnc()
	e.str(r.ID)
	e.str(r.ClientKey)
	e.str(r.ClientID)
	e.str(r.UserID)
	e.u(r.Amount)
	e.str(r.Currency)
	e.str(r.Description)
	e.str(r.Capture)
	e.str(r.Status)
	e.time(r.CreatedAt)
	e.time(r.ExpiresAt)
	e.ptime(r.DecidedAt)
	e.str(r.PaymentID)
	e.str(r.HoldID)
	e.u(r.Captured)
	e.u(r.Cursor)
	return e.b
}

func decodeRequest(b []byte) (*reqRec, error) {
	d := newDec(b)
	r := &reqRec{}
	r.ID = d.str()
	r.ClientKey = d.str()
	r.ClientID = d.str()
	r.UserID = d.str()
	r.Amount = d.u()
	r.Currency = d.str()
	r.Description = d.str()
	r.Capture = d.str()
	r.Status = d.str()
	r.CreatedAt = d.time()
	r.ExpiresAt = d.time()
	r.DecidedAt = d.ptime()
	r.PaymentID = d.str()
	r.HoldID = d.str()
	r.Captured = d.u()
	r.Cursor = d.u()
	return r, d.err()
}

func encodeDelivery(x *Delivery) []byte {
	e := newEnc()
	e.str(x.ID)
	e.str(x.ClientID)
	e.str(x.Event)
	e.bytes(x.Data)
	e.time(x.CreatedAt)
	e.str(x.Status)
	e.u(uint64(len(x.Attempts)))
	for _, a := range x.Attempts {
		e.time(a.At)
		e.str(a.DC)
		e.i(int64(a.StatusCode))
		e.str(a.Error)
		e.i(a.DurationMS)
	}
	e.ptime(x.NextAttemptAt)
	e.str(x.LeasedBy)
	e.ptime(x.LeaseUntil)
	e.str(x.leaseOwner)
	return e.b
}

func decodeDelivery(b []byte) (*Delivery, error) {
	d := newDec(b)
	x := &Delivery{}
	x.ID = d.str()
	x.ClientID = d.str()
	x.Event = d.str()
	x.Data = d.bytes()
	x.CreatedAt = d.time()
	x.Status = d.str()
	if n := d.u(); n <= uint64(len(d.b)) {
		x.Attempts = make([]Attempt, n)
		for i := range x.Attempts {
			x.Attempts[i] = Attempt{At: d.time(), DC: d.str(), StatusCode: int(d.i()), Error: d.str(), DurationMS: d.i()}
		}
	} else {
		d.fail()
	}
	x.NextAttemptAt = d.ptime()
	x.LeasedBy = d.str()
	x.LeaseUntil = d.ptime()
	x.leaseOwner = d.str()
	return x, d.err()
}
