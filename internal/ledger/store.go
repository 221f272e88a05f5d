package ledger

import (
	"math/bits"
	"math/rand/v2"
)

// A ledger keeps every transfer it ever stored: millions of them. They
// live in chunks of records that hold no pointers, found through an index
// that holds none either, so the garbage collector never scans them (it
// did, on every cycle, when each was a *Transfer in a map), and a stored
// transfer costs 96 bytes and 13 to 26 of index instead of a 144-byte
// object of its own with two strings. Records are numbered with uint32: a
// ledger in memory never holds 2^32 transfers (400 GB of records).

// record is a stored transfer.
type record struct {
	ID, DebitAccountID, CreditAccountID, PendingID ID
	Amount                                         uint64
	Timestamp                                      int64
	Timeout                                        uint32
	Code                                           uint16
	Flags                                          TransferFlags
	currency                                       [3]byte
	// userData indexes Ledger.userData; 0 is none.
	userData uint32
}

const (
	chunkBits = 12
	chunkSize = 1 << chunkBits
)

// records is an append-only sequence of records that never moves one.
type records struct {
	chunks [][]record
	n      uint32
}

func (s *records) at(i uint32) *record { return &s.chunks[i>>chunkBits][i&(chunkSize-1)] }

func (s *records) add(r *record) uint32 {
	if int(s.n>>chunkBits) == len(s.chunks) {
		s.chunks = append(s.chunks, make([]record, chunkSize))
	}
	i := s.n
	*s.at(i) = *r
	s.n++
	return i
}

// storeTransfer keeps t and returns its index.
func (l *Ledger) storeTransfer(t *Transfer) uint32 {
	r := record{ID: t.ID, DebitAccountID: t.DebitAccountID, CreditAccountID: t.CreditAccountID, PendingID: t.PendingID,
		Amount: t.Amount, Timestamp: t.Timestamp, Timeout: t.Timeout, Code: t.Code, Flags: t.Flags}
	copy(r.currency[:], t.Currency) // validated: an account's currency
	if t.UserData != "" {
		l.userData = append(l.userData, t.UserData)
		r.userData = uint32(len(l.userData) - 1)
	}
	return l.records.add(&r)
}

// transferAt returns the stored transfer at index i.
func (l *Ledger) transferAt(i uint32) Transfer {
	r := l.records.at(i)
	return Transfer{ID: r.ID, DebitAccountID: r.DebitAccountID, CreditAccountID: r.CreditAccountID, PendingID: r.PendingID,
		Amount: r.Amount, Timestamp: r.Timestamp, Timeout: r.Timeout, Code: r.Code, Flags: r.Flags,
		Currency: currencyName(r.currency), UserData: l.userData[r.userData]}
}

// currencyName is a stored currency's name, without an allocation for the
// common ones.
func currencyName(c [3]byte) string {
	for _, s := range currencies {
		if s == string(c[:]) {
			return s
		}
	}
	return string(c[:])
}

// index maps transfer ids to their records. It is a hash table of open
// addressing with linear probing, in 256 shards chosen by the hash's top
// byte. A slot holds 32 bits of the id's hash and the record's index, 8
// bytes, and the id is compared in the record only when those bits match:
// a ledger looks up every transfer it is sent in a table far bigger than
// any cache, and one random access into a small table (a Go map takes
// three dependent ones into a big one: directory, table, group) is what
// makes a full batch quick. A shard grows on its own, from the hash bits
// it holds, so growing never stops a batch for longer than rehashing 1/256
// of the table. The seed is random: it only places entries, it never
// changes a result.
type index struct {
	recs   *records
	shards [256]shard
	n      int
	seed   [2]uint64
	// tagBits is all ones; tests clear bits to make ids collide.
	tagBits uint32
}

type shard struct {
	slots []slot // a power of two
	n     int
}

// slot is an entry: the low 32 bits of its id's hash (never 0, which
// marks an empty slot), which also give its place, and its record.
type slot struct {
	tag, i uint32
}

const minShard = 16

func newIndex(recs *records) index {
	return index{recs: recs, seed: [2]uint64{rand.Uint64(), rand.Uint64()}, tagBits: ^uint32(0)}
}

// hash returns id's shard and tag.
func (x *index) hash(id *ID) (*shard, uint32) {
	hi, lo := bits.Mul64(le.Uint64(id[0:8])^x.seed[0], le.Uint64(id[8:16])^x.seed[1])
	h := hi ^ lo
	return &x.shards[h>>56], max(uint32(h)&x.tagBits, 1)
}

// get returns the record index of id.
func (x *index) get(id ID) (uint32, bool) {
	sh, tag := x.hash(&id)
	if len(sh.slots) == 0 {
		return 0, false
	}
	mask := uint32(len(sh.slots) - 1)
	for s := tag & mask; sh.slots[s].tag != 0; s = (s + 1) & mask {
		if e := sh.slots[s]; e.tag == tag && x.recs.at(e.i).ID == id {
			return e.i, true
		}
	}
	return 0, false
}

// put adds id, which must not be there yet, for record i.
func (x *index) put(id ID, i uint32) {
	sh, tag := x.hash(&id)
	if (sh.n+1)*8 > len(sh.slots)*5 { // at most 5/8 full: short probes
		sh.grow()
	}
	sh.insert(slot{tag: tag, i: i})
	sh.n++
	x.n++
}

func (sh *shard) insert(e slot) {
	mask := uint32(len(sh.slots) - 1)
	s := e.tag & mask
	for sh.slots[s].tag != 0 {
		s = (s + 1) & mask
	}
	sh.slots[s] = e
}

func (sh *shard) grow() {
	old := sh.slots
	sh.slots = make([]slot, max(minShard, 2*len(old)))
	for _, e := range old {
		if e.tag != 0 {
			sh.insert(e)
		}
	}
}

// delete removes id, shifting back the entries that probed past it so that
// no lookup stops short at the hole.
func (x *index) delete(id ID) {
	sh, tag := x.hash(&id)
	if len(sh.slots) == 0 {
		return
	}
	mask := uint32(len(sh.slots) - 1)
	s := tag & mask
	for {
		e := sh.slots[s]
		if e.tag == 0 {
			return
		}
		if e.tag == tag && x.recs.at(e.i).ID == id {
			break
		}
		s = (s + 1) & mask
	}
	for next := (s + 1) & mask; sh.slots[next].tag != 0; next = (next + 1) & mask {
		// The entry at next may fill the hole at s unless its home lies
		// cyclically in (s, next].
		home := sh.slots[next].tag & mask
		if (s < next && s < home && home <= next) || (s > next && (s < home || home <= next)) {
			continue
		}
		sh.slots[s] = sh.slots[next]
		s = next
	}
	sh.slots[s] = slot{}
	sh.n--
	x.n--
}

// all calls fn with the record of every entry, in no order.
func (x *index) all(fn func(i uint32)) {
	for k := range x.shards {
		for _, e := range x.shards[k].slots {
			if e.tag != 0 {
				fn(e.i)
			}
		}
	}
}
