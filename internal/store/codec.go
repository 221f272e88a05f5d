package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// A record is a value a feature writes at every step of its hottest
// commands (an order, a ride, a pay request), so it is stored in a compact
// binary form rather than JSON: a version byte, then the fields in the
// order the feature's record layout lists them, with no names and no
// padding. The layout is the feature's own (it says which fields, in which
// order); the Encoder and Decoder only say how each field is written:
//
//   - unsigned and signed integers as varints (encoding/binary's Uvarint
//     and Varint);
//   - strings and byte slices as their length (a uvarint), then the bytes;
//   - booleans as one byte, 0 or 1;
//   - floats as their IEEE 754 bits, 8 bytes little-endian;
//   - times as a boolean (false for the zero time, and nothing follows),
//     then Unix seconds (varint), nanoseconds (uvarint) and the zone's
//     offset in seconds (varint), so that a decoded time reads, and prints,
//     as the one encoded; a *time.Time as a boolean (false for nil), then
//     the time;
//   - fixed-size values (16-byte ids) as their bytes.
//
// Changing how any of these is written changes every record on every
// node's disk: it takes a new FormatVersion, never an edit here.

// ErrBadRecord is what Decoder.Err wraps when a record is not what this
// binary writes: cut short, with bytes left over, or of another version.
// A reader that finds one reports the store broken (Space.Fail).
var ErrBadRecord = errors.New("store: bad stored record")

// Encoder writes one record. The zero value is not usable: start with
// NewEncoder.
type Encoder struct{ b []byte }

// NewEncoder starts a record of the given layout version, with room for
// size bytes (a hint: the record grows as needed).
func NewEncoder(version byte, size int) *Encoder {
	return &Encoder{b: append(make([]byte, 0, max(size, 1)), version)}
}

// Bytes is the record written so far. The Encoder must not be used after.
func (e *Encoder) Bytes() []byte { return e.b }

// Uint writes v as a uvarint.
func (e *Encoder) Uint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }

// Int writes v as a varint.
func (e *Encoder) Int(v int64) { e.b = binary.AppendVarint(e.b, v) }

// Float writes v as its IEEE 754 bits, little-endian.
func (e *Encoder) Float(v float64) {
	e.b = binary.LittleEndian.AppendUint64(e.b, math.Float64bits(v))
}

// Str writes s as its length, then its bytes.
func (e *Encoder) Str(s string) { e.Uint(uint64(len(s))); e.b = append(e.b, s...) }

// Blob writes b as its length, then its bytes.
func (e *Encoder) Blob(b []byte) { e.Uint(uint64(len(b))); e.b = append(e.b, b...) }

// Fixed writes b as it is, without its length: for values whose size the
// layout fixes (a 16-byte id), which Decoder.Fixed reads back.
func (e *Encoder) Fixed(b []byte) { e.b = append(e.b, b...) }

// Bool writes ok as one byte.
func (e *Encoder) Bool(ok bool) {
	if ok {
		e.b = append(e.b, 1)
	} else {
		e.b = append(e.b, 0)
	}
}

// Time writes t: whether it is set, then (if it is) its Unix seconds,
// nanoseconds and zone offset.
func (e *Encoder) Time(t time.Time) {
	e.Bool(!t.IsZero())
	if t.IsZero() {
		return
	}
	_, off := t.Zone()
	e.Int(t.Unix())
	e.Uint(uint64(t.Nanosecond()))
	e.Int(int64(off))
}

// TimePtr writes whether t is set, then (if it is) the time.
func (e *Encoder) TimePtr(t *time.Time) {
	e.Bool(t != nil)
	if t != nil {
		e.Time(*t)
	}
}

// Decoder reads one record, field by field in the order it was written.
// A field that cannot be read fails the decoder: it and every field after
// it read as zero values, and Err reports it; the caller checks Err once,
// after the last field.
type Decoder struct {
	b   []byte
	bad string // why the record cannot be read; "" while it can
}

// NewDecoder starts reading b, a record of the given layout version (a
// record of another version fails the decoder). Strings and byte slices
// it returns are copies: b may be reused after.
func NewDecoder(b []byte, version byte) *Decoder {
	d := &Decoder{b: b}
	switch {
	case len(b) == 0:
		d.Fail("empty record")
	case b[0] != version:
		d.Fail("another layout version")
	default:
		d.b = b[1:]
	}
	return d
}

// Fail marks the record unreadable, for a check the layout makes itself
// (a value out of range).
func (d *Decoder) Fail(why string) {
	if d.bad == "" {
		d.bad = why
	}
	d.b = nil
}

// Err says whether the record was read whole: nil, or an error wrapping
// ErrBadRecord when a field could not be read or bytes are left over.
func (d *Decoder) Err() error {
	switch {
	case d.bad != "":
		return fmt.Errorf("%w: %s", ErrBadRecord, d.bad)
	case len(d.b) != 0:
		return fmt.Errorf("%w: %d bytes left over", ErrBadRecord, len(d.b))
	}
	return nil
}

func (d *Decoder) short() { d.Fail("record cut short") }

// Uint reads a uvarint.
func (d *Decoder) Uint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.short()
		return 0
	}
	d.b = d.b[n:]
	return v
}

// Int reads a varint.
func (d *Decoder) Int() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.short()
		return 0
	}
	d.b = d.b[n:]
	return v
}

// Float reads what Encoder.Float wrote.
func (d *Decoder) Float() float64 {
	if len(d.b) < 8 {
		d.short()
		return 0
	}
	v := math.Float64frombits(binary.LittleEndian.Uint64(d.b))
	d.b = d.b[8:]
	return v
}

// next returns the next n bytes of the record (not a copy).
func (d *Decoder) next(n uint64) ([]byte, bool) {
	if uint64(len(d.b)) < n {
		d.short()
		return nil, false
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v, true
}

// Str reads what Encoder.Str wrote.
func (d *Decoder) Str() string {
	v, _ := d.next(d.Uint())
	return string(v)
}

// Blob reads what Encoder.Blob wrote, as a copy (nil when it was empty).
func (d *Decoder) Blob() []byte {
	v, ok := d.next(d.Uint())
	if !ok {
		return nil
	}
	return append([]byte(nil), v...)
}

// Fixed fills dst with what Encoder.Fixed wrote.
func (d *Decoder) Fixed(dst []byte) {
	if v, ok := d.next(uint64(len(dst))); ok {
		copy(dst, v)
	}
}

// Count reads the length of a list written as a Uint before its items.
// Every item takes at least one byte, so a count larger than what is left
// of the record fails the decoder (and reads 0) instead of making a huge
// slice.
func (d *Decoder) Count() int {
	n := d.Uint()
	if n > uint64(len(d.b)) {
		d.short()
		return 0
	}
	return int(n)
}

// Bool reads what Encoder.Bool wrote.
func (d *Decoder) Bool() bool {
	if len(d.b) < 1 || d.b[0] > 1 {
		d.Fail("bad boolean")
		return false
	}
	v := d.b[0] == 1
	d.b = d.b[1:]
	return v
}

// Time reads what Encoder.Time wrote: the zero time, or the time with its
// zone's offset (UTC when the offset is 0).
func (d *Decoder) Time() time.Time {
	if !d.Bool() {
		return time.Time{}
	}
	sec, nsec, off := d.Int(), d.Uint(), d.Int()
	t := time.Unix(sec, int64(nsec))
	if off == 0 {
		return t.UTC()
	}
	return t.In(time.FixedZone("", int(off)))
}

// TimePtr reads what Encoder.TimePtr wrote.
func (d *Decoder) TimePtr() *time.Time {
	if !d.Bool() {
		return nil
	}
	t := d.Time()
	return &t
}
