package chat

import (
	"encoding/binary"
	"errors"
	"slices"
	"time"
)

// The records a send reads and writes (a conversation, a member, a
// receipt, a feed entry) are small and hot: they are kept in a compact
// binary form, not JSON, which would cost more than the store's own work.
// Messages stay JSON, their API shape: a send encodes one once, as its
// record and its outcome, and pages read them. Every record begins with
// its format byte. A record that cannot be decoded is the store failing:
// decoders return errCorrupt and the reader reports it (reader.Fail).

const codecV1 = 1

var errCorrupt = errors.New("malformed record")

type encoder struct{ b []byte }

func newEncoder() *encoder { return &encoder{b: append(make([]byte, 0, 64), codecV1)} }

func (e *encoder) uint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) int(v int64)   { e.b = binary.AppendVarint(e.b, v) }
func (e *encoder) str(s string) {
	e.uint(uint64(len(s)))
	e.b = append(e.b, s...)
}

// time keeps the instant and the zone offset, as JSON would show them:
// seconds and nanoseconds since 1970, then the offset in seconds, plus
// one, 0 meaning UTC (every time the service makes). Unlike
// time.MarshalBinary it allocates nothing.
func (e *encoder) time(t time.Time) {
	e.int(t.Unix())
	e.uint(uint64(t.Nanosecond()))
	if t.Location() == time.UTC {
		e.int(0)
		return
	}
	_, off := t.Zone()
	e.int(int64(off) + 1)
}

type decoder struct {
	b   []byte
	err error
	// strs is the record from its first string on, as a string made by
	// the first str: every string decoded is a part of it, one
	// allocation for a roster's thousand names.
	strs string
}

// newDecoder reads a record; done says whether it was well formed.
func newDecoder(b []byte) decoder {
	d := decoder{b: b}
	if len(b) == 0 || b[0] != codecV1 {
		d.fail()
	} else {
		d.b = b[1:]
	}
	return d
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = errCorrupt
		d.b = nil
	}
}

func (d *decoder) uint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) int() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) str() string {
	n := d.uint()
	if n > uint64(len(d.b)) {
		d.fail()
		return ""
	}
	if n == 0 {
		return ""
	}
	if d.strs == "" {
		d.strs = string(d.b)
	}
	at := len(d.strs) - len(d.b) // d.b is the end of d.strs
	s := d.strs[at : at+int(n)]
	d.b = d.b[n:]
	return s
}

func (d *decoder) time() time.Time {
	sec, nsec := d.int(), d.uint()
	zone := d.int()
	if nsec >= 1e9 {
		d.fail()
		return time.Time{}
	}
	t := time.Unix(sec, int64(nsec))
	if zone == 0 {
		return t.UTC()
	}
	return t.In(time.FixedZone("", int(zone-1)))
}

// done is errCorrupt if the record was not read whole and well.
func (d *decoder) done() error {
	if d.err == nil && len(d.b) != 0 {
		d.err = errCorrupt
	}
	return d.err
}

// convRec flags.
const (
	convForeignIDs = 1 << iota // see convRec.ForeignIDs
)

func (c *convRec) encode() []byte {
	e := newEncoder()
	e.str(c.ID)
	e.str(c.Kind)
	e.str(c.Title)
	e.time(c.CreatedAt)
	e.time(c.UpdatedAt)
	e.uint(c.Last)
	e.uint(c.Counted)
	var flags uint64
	if c.ForeignIDs {
		flags |= convForeignIDs
	}
	e.uint(flags)
	c.Members.put(e)
	e.uint(uint64(len(c.Receipts)))
	for i := range c.Receipts {
		c.Receipts[i].put(e)
	}
	return e.b
}

func (c *convRec) decode(b []byte) error {
	d := newDecoder(b)
	c.ID, c.Kind, c.Title = d.str(), d.str(), d.str()
	c.CreatedAt, c.UpdatedAt = d.time(), d.time()
	c.Last, c.Counted = d.uint(), d.uint()
	c.ForeignIDs = d.uint()&convForeignIDs != 0
	c.Members = getRoster(&d)
	// As many receipts as members: a group's are records of their own.
	if n := d.uint(); n != uint64(len(c.Members)) || (c.Kind == Group && n > 0) {
		d.fail()
	} else if n > 0 {
		c.Receipts = make([]receiptRec, n)
		for i := range c.Receipts {
			c.Receipts[i].get(&d)
		}
	}
	return d.done()
}

func (m *memberRec) put(e *encoder) {
	e.str(m.Role)
	e.time(m.Joined)
	e.uint(m.From)
}

func (m *memberRec) get(d *decoder) {
	m.Role, m.Joined, m.From = d.str(), d.time(), d.uint()
}

func (m *memberRec) encode() []byte {
	e := newEncoder()
	m.put(e)
	return e.b
}

func (m *memberRec) decode(b []byte) error {
	d := newDecoder(b)
	m.get(&d)
	return d.done()
}

func (r roster) put(e *encoder) {
	e.uint(uint64(len(r)))
	for i := range r {
		e.str(r[i].User)
		r[i].put(e)
	}
}

func getRoster(d *decoder) roster {
	n := d.uint()
	if n > uint64(len(d.b)) {
		d.fail()
		n = 0
	}
	if n == 0 {
		return nil
	}
	r := make(roster, n)
	for i := range r {
		r[i].User = d.str()
		r[i].get(d)
	}
	return r
}

func (r roster) encode() []byte {
	e := newEncoder()
	r.put(e)
	return e.b
}

func decodeRoster(b []byte) (roster, error) {
	d := newDecoder(b)
	r := getRoster(&d)
	return r, d.done()
}

func (r *receiptRec) put(e *encoder) {
	e.uint(r.Read)
	e.uint(r.Delivered)
	e.int(int64(r.Unread))
	e.uint(r.Base)
}

func (r *receiptRec) get(d *decoder) {
	r.Read, r.Delivered = d.uint(), d.uint()
	r.Unread = int(d.int())
	r.Base = d.uint()
}

func (r *receiptRec) encode() []byte {
	e := newEncoder()
	r.put(e)
	return e.b
}

func (r *receiptRec) decode(b []byte) error {
	d := newDecoder(b)
	r.get(&d)
	return d.done()
}

// Feed events. A feed entry is written for every recipient of every
// command (a group's message: one per member), so each event says only
// what it has: its type as a number, a flag per field it holds, and no
// time for a message event (its message's SentAt, found when the message
// is read). A group message's event is a dozen bytes and its id.

// feedTypes numbers the event types a feed holds (1 and up; 0 is a type
// spelled out). Append only: the numbers are stored.
var feedTypes = []string{EvMessage, EvDeleted, EvRead, EvDelivered, EvMembers, EvRenamed, EvJoined, EvLeft}

// Which fields a feed event holds.
const (
	feMsg     = 1 << iota // Msg
	feUser                // UserID
	feSeq                 // Seq
	feUnread              // Unread
	feTitle               // Title
	feAtOfMsg             // no At: it is the message's SentAt
)

func encodeFeedEvents(fes []feedEvent) []byte {
	e := newEncoder()
	e.uint(uint64(len(fes)))
	for i := range fes {
		fe := &fes[i]
		code := slices.Index(feedTypes, fe.Type) + 1
		e.uint(uint64(code))
		if code == 0 {
			e.str(fe.Type)
		}
		var flags uint64
		if fe.Msg != 0 {
			flags |= feMsg
		}
		if fe.UserID != "" {
			flags |= feUser
		}
		if fe.Seq != 0 {
			flags |= feSeq
		}
		if fe.Unread != nil {
			flags |= feUnread
		}
		if fe.Title != "" {
			flags |= feTitle
		}
		if fe.AtOfMsg {
			flags |= feAtOfMsg
		}
		e.uint(flags)
		e.str(fe.Conv)
		if fe.Msg != 0 {
			e.uint(fe.Msg)
		}
		if fe.UserID != "" {
			e.str(fe.UserID)
		}
		if fe.Seq != 0 {
			e.uint(fe.Seq)
		}
		if fe.Unread != nil {
			e.int(int64(*fe.Unread))
		}
		if fe.Title != "" {
			e.str(fe.Title)
		}
		if !fe.AtOfMsg {
			e.time(fe.At)
		}
	}
	return e.b
}

func decodeFeedEvents(b []byte) ([]feedEvent, error) {
	d := newDecoder(b)
	n := d.uint()
	if n > uint64(len(d.b)) {
		d.fail()
		n = 0
	}
	fes := make([]feedEvent, n)
	for i := range fes {
		fe := &fes[i]
		switch code := d.uint(); {
		case code == 0:
			fe.Type = d.str()
		case code <= uint64(len(feedTypes)):
			fe.Type = feedTypes[code-1]
		default:
			d.fail()
		}
		flags := d.uint()
		fe.Conv = d.str()
		if flags&feMsg != 0 {
			fe.Msg = d.uint()
		}
		if flags&feUser != 0 {
			fe.UserID = d.str()
		}
		if flags&feSeq != 0 {
			fe.Seq = d.uint()
		}
		if flags&feUnread != 0 {
			u := int(d.int())
			fe.Unread = &u
		}
		if flags&feTitle != 0 {
			fe.Title = d.str()
		}
		if flags&feAtOfMsg != 0 {
			fe.AtOfMsg = true
			if fe.Msg == 0 {
				d.fail() // no message to take the time from
			}
		} else {
			fe.At = d.time()
		}
	}
	return fes, d.done()
}
