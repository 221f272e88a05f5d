package store

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestRecordFormat pins how every kind of field is written: every record
// on every node's disk depends on it.
func TestRecordFormat(t *testing.T) {
	kst := time.FixedZone("KST", 9*3600)
	at := time.Unix(1_800_000_000, 123456789).In(kst)
	utc := time.Unix(-1, 0).UTC()
	e := NewEncoder(7, 0)
	e.Uint(300)
	e.Int(-3)
	e.Float(1.5)
	e.Str("hé")
	e.Blob(nil)
	e.Blob([]byte{1, 2})
	e.Fixed([]byte{0xaa, 0xbb})
	e.Bool(true)
	e.Bool(false)
	e.Time(time.Time{})
	e.Time(at)
	e.TimePtr(nil)
	e.TimePtr(&utc)
	want := strings.Join([]string{
		"07",               // the layout version
		"ac02",             // 300, a uvarint
		"05",               // -3, a varint (zig-zag)
		"000000000000f83f", // 1.5, IEEE 754 little-endian
		"03" + "68c3a9",    // "hé": length, UTF-8 bytes
		"00",               // an empty blob
		"02" + "0102",      // a blob
		"aabb",             // fixed bytes, no length
		"01", "00",         // true, false
		"00",              // the zero time: not set
		"01",              // a time: set,
		"80c8ceb40d",      // Unix seconds (varint),
		"959aef3a",        // nanoseconds (uvarint),
		"a0fa03",          // zone offset in seconds (varint)
		"00",              // a nil *time.Time
		"01" + "01010000", // a set one: the time, in UTC
	}, "")
	if got := hex.EncodeToString(e.Bytes()); got != want {
		t.Fatalf("record\n%s\nwant\n%s", got, want)
	}

	d := NewDecoder(e.Bytes(), 7)
	if v := d.Uint(); v != 300 {
		t.Fatalf("uint %d", v)
	}
	if v := d.Int(); v != -3 {
		t.Fatalf("int %d", v)
	}
	if v := d.Float(); v != 1.5 {
		t.Fatalf("float %v", v)
	}
	if v := d.Str(); v != "hé" {
		t.Fatalf("string %q", v)
	}
	if v := d.Blob(); v != nil {
		t.Fatalf("empty blob %v", v)
	}
	if v := d.Blob(); !bytes.Equal(v, []byte{1, 2}) {
		t.Fatalf("blob %v", v)
	}
	var fixed [2]byte
	if d.Fixed(fixed[:]); fixed != [2]byte{0xaa, 0xbb} {
		t.Fatalf("fixed %x", fixed)
	}
	if a, b := d.Bool(), d.Bool(); !a || b {
		t.Fatalf("bools %v %v", a, b)
	}
	if v := d.Time(); !v.IsZero() {
		t.Fatalf("zero time %v", v)
	}
	// A decoded time is the instant, and prints as the one encoded.
	if v := d.Time(); !v.Equal(at) || v.Format(time.RFC3339Nano) != at.Format(time.RFC3339Nano) {
		t.Fatalf("time %v, want %v", v, at)
	}
	if v := d.TimePtr(); v != nil {
		t.Fatalf("nil time %v", v)
	}
	if v := d.TimePtr(); v == nil || !v.Equal(utc) || v.Location() != time.UTC {
		t.Fatalf("time pointer %v", v)
	}
	if err := d.Err(); err != nil {
		t.Fatal(err)
	}
}

// TestBadRecords: a record this binary did not write, or not whole, is
// reported, never read as something else.
func TestBadRecords(t *testing.T) {
	e := NewEncoder(1, 64)
	e.Str("order")
	e.Uint(1 << 40)
	e.Time(time.Unix(5, 0))
	e.Bool(true)
	rec := e.Bytes()
	read := func(b []byte, version byte) error {
		d := NewDecoder(b, version)
		d.Str()
		d.Uint()
		d.Time()
		d.Bool()
		return d.Err()
	}
	if err := read(rec, 1); err != nil {
		t.Fatal(err)
	}
	for n := range len(rec) {
		if err := read(rec[:n], 1); !errors.Is(err, ErrBadRecord) {
			t.Fatalf("record cut to %d bytes: %v", n, err)
		}
	}
	if err := read(append(bytes.Clone(rec), 0), 1); !errors.Is(err, ErrBadRecord) {
		t.Fatalf("a byte left over: %v", err)
	}
	if err := read(rec, 2); !errors.Is(err, ErrBadRecord) {
		t.Fatalf("another version: %v", err)
	}
	bad := bytes.Clone(rec)
	bad[len(bad)-1] = 2
	if err := read(bad, 1); !errors.Is(err, ErrBadRecord) {
		t.Fatalf("a boolean of 2: %v", err)
	}

	// A count larger than what is left fails, reads 0, and every field
	// after it reads as a zero value.
	e = NewEncoder(1, 0)
	e.Uint(1000)
	e.Str("x")
	d := NewDecoder(e.Bytes(), 1)
	if n := d.Count(); n != 0 {
		t.Fatalf("count %d", n)
	}
	if s := d.Str(); s != "" || !errors.Is(d.Err(), ErrBadRecord) {
		t.Fatalf("after a bad count: %q %v", s, d.Err())
	}
	d = NewDecoder(e.Bytes(), 1)
	d.Fail("out of range")
	if err := d.Err(); !errors.Is(err, ErrBadRecord) || !strings.Contains(err.Error(), "out of range") {
		t.Fatalf("failed by the layout: %v", err)
	}
}

// TestDecodedValuesAreCopies: what a Decoder returns does not change when
// the record's bytes are reused (Pebble reuses them after a read).
func TestDecodedValuesAreCopies(t *testing.T) {
	e := NewEncoder(1, 0)
	e.Str("abc")
	e.Blob([]byte("def"))
	rec := e.Bytes()
	d := NewDecoder(rec, 1)
	s, b := d.Str(), d.Blob()
	for i := range rec {
		rec[i] = 'z'
	}
	if s != "abc" || string(b) != "def" {
		t.Fatalf("%q %q", s, b)
	}
}
