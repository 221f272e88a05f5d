package food

import (
	"encoding/binary"
	"errors"
	"time"
)

// Orders are written at every step, and stores, items and carts read at
// every checkout, so they are stored in a compact binary form rather than
// JSON: a version byte, then the fields in a fixed order (varints, length-prefixed strings, times as Unix seconds,
// nanoseconds and zone offset, so that a decoded time reads, and prints,
// as the one encoded).

const codecVersion = 1

var errCodec = errors.New("food: bad stored record")

type enc struct{ b []byte }

func (e *enc) u(v uint64)   { e.b = binary.AppendUvarint(e.b, v) }
func (e *enc) i(v int64)    { e.b = binary.AppendVarint(e.b, v) }
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

func (e *enc) lines(ls []Line) {
	e.u(uint64(len(ls)))
	for _, l := range ls {
		e.str(l.ItemID)
		e.str(l.Name)
		e.u(l.Price)
		e.i(l.Quantity)
	}
}

func (d *dec) lines() []Line {
	n := d.u()
	if n > uint64(len(d.b)) {
		d.fail()
		return nil
	}
	ls := make([]Line, n)
	for i := range ls {
		ls[i] = Line{ItemID: d.str(), Name: d.str(), Price: d.u(), Quantity: d.i()}
	}
	return ls
}

func newEnc() enc { return enc{b: append(make([]byte, 0, 256), codecVersion)} }

func newDec(b []byte) *dec {
	d := &dec{b: b}
	if len(b) == 0 || b[0] != codecVersion {
		d.fail()
	} else {
		d.b = b[1:]
	}
	return d
}

// err says whether the record was read whole: one this binary cannot
// read means the store is not what it wrote (the reader reports it with
// Fail).
func (d *dec) err() error {
	if d.bad || len(d.b) != 0 {
		return errCodec
	}
	return nil
}

// encodeOrder is an order as stored.
func encodeOrder(o *Order) []byte {
	e := newEnc()
	e.str(o.ID)
	e.str(o.User)
	e.str(o.StoreID)
	e.str(o.Merchant)
	e.str(o.Courier)
	e.str(o.Status)
	e.lines(o.Lines)
	e.str(o.Address)
	e.u(o.FoodTotal)
	e.u(o.DeliveryFee)
	e.u(o.PlatformFee)
	e.u(o.Total)
	e.str(o.Currency)
	e.b = append(e.b, o.HoldID[:]...)
	e.u(o.Refunded)
	e.str(o.HomeDC)
	e.time(o.PlacedAt)
	e.time(o.UpdatedAt)
	e.flag(o.EndedAt != nil)
	if o.EndedAt != nil {
		e.time(*o.EndedAt)
	}
	e.str(o.CancelledBy)
	e.str(o.Reason)
	return e.b
}

func decodeOrder(b []byte) (*Order, error) {
	d := newDec(b)
	o := &Order{}
	o.ID = d.str()
	o.User = d.str()
	o.StoreID = d.str()
	o.Merchant = d.str()
	o.Courier = d.str()
	o.Status = d.str()
	o.Lines = d.lines()
	o.Address = d.str()
	o.FoodTotal = d.u()
	o.DeliveryFee = d.u()
	o.PlatformFee = d.u()
	o.Total = d.u()
	o.Currency = d.str()
	if len(d.b) >= len(o.HoldID) {
		d.b = d.b[copy(o.HoldID[:], d.b):]
	} else {
		d.fail()
	}
	o.Refunded = d.u()
	o.HomeDC = d.str()
	o.PlacedAt = d.time()
	o.UpdatedAt = d.time()
	if d.flag() {
		t := d.time()
		o.EndedAt = &t
	}
	o.CancelledBy = d.str()
	o.Reason = d.str()
	return o, d.err()
}

func encodeStore(st *storeRec) []byte {
	e := newEnc()
	e.str(st.ID)
	e.str(st.Merchant)
	e.str(st.Name)
	e.u(uint64(len(st.Hours)))
	for _, h := range st.Hours {
		e.i(int64(h.Day))
		e.str(h.Open)
		e.str(h.Close)
	}
	e.u(st.DeliveryFee)
	e.str(st.Currency)
	e.time(st.CreatedAt)
	e.i(int64(st.Items))
	e.i(int64(st.Next))
	return e.b
}

func decodeStore(b []byte) (*storeRec, error) {
	d := newDec(b)
	st := &storeRec{}
	st.ID = d.str()
	st.Merchant = d.str()
	st.Name = d.str()
	if n := d.u(); n <= uint64(len(d.b)) {
		st.Hours = make([]Hours, n)
		for i := range st.Hours {
			st.Hours[i] = Hours{Day: int(d.i()), Open: d.str(), Close: d.str()}
		}
	} else {
		d.fail()
	}
	st.DeliveryFee = d.u()
	st.Currency = d.str()
	st.CreatedAt = d.time()
	st.Items = int(d.i())
	st.Next = int(d.i())
	return st, d.err()
}

func encodeItem(it *itemRec) []byte {
	e := newEnc()
	e.i(int64(it.Pos))
	e.str(it.Item.ID)
	e.str(it.Item.Name)
	e.u(it.Item.Price)
	e.flag(it.Item.Stock != nil)
	if it.Item.Stock != nil {
		e.i(*it.Item.Stock)
	}
	return e.b
}

func decodeItem(b []byte) (*itemRec, error) {
	d := newDec(b)
	it := &itemRec{Pos: int(d.i())}
	it.Item.ID = d.str()
	it.Item.Name = d.str()
	it.Item.Price = d.u()
	if d.flag() {
		n := d.i()
		it.Item.Stock = &n
	}
	return it, d.err()
}

func encodeCart(ls []Line) []byte {
	e := newEnc()
	e.lines(ls)
	return e.b
}

func decodeCart(b []byte) ([]Line, error) {
	d := newDec(b)
	ls := d.lines()
	return ls, d.err()
}
