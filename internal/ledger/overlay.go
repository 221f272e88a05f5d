package ledger

import (
	"math/bits"
	"math/rand/v2"
)

// The overlay holds what the entry being applied has changed among the
// transfers: the transfers its calls (CreateTransfers, CreateAccounts)
// created, and the stored pending transfers whose state they changed. Each
// call writes its part to the entry's batch when it ends (flush), blind
// (store.Tx.SetBlind): the batch does not index them, so the overlay is
// where a later call of the same entry (an entry holds several commands)
// finds them, and Transfer and PendingStateOf too, when asked about the
// entry's batch. A linked chain that fails drops its part of the overlay
// (rollback) and so never reaches the store. Lookups look here first, then
// in the store. It holds one entry's worth at most and is reset, keeping
// its memory, by the first call of the next entry.

// record is a transfer in the overlay.
type record struct {
	ID, DebitAccountID, CreditAccountID, PendingID ID
	Amount                                         uint64
	Timestamp                                      int64
	// dnum and cnum are the numbers of the debit and credit accounts.
	dnum, cnum uint32
	Timeout    uint32
	Code       uint16
	Flags      TransferFlags
	currency   [3]byte
	// state is a pending transfer's state (0 for the others).
	state PendingState
	// written: the store holds it (committed, or in the entry's batch)
	// with state writtenState, and the digest's sum counts it so.
	written      bool
	writtenState PendingState
	// gen is the call that created it or last changed its state: flush
	// writes what the current call changed.
	gen      uint64
	userData string
}

const (
	chunkBits = 10
	chunkSize = 1 << chunkBits
)

// records is a sequence of records that never moves one; reset keeps its
// chunks for the next entry.
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

func (s *records) reset() {
	for i := range s.n {
		s.at(i).userData = "" // no string kept alive past its entry
	}
	s.n = 0
}

// recordOf is t as a record.
func recordOf(t *Transfer) record {
	r := record{ID: t.ID, DebitAccountID: t.DebitAccountID, CreditAccountID: t.CreditAccountID, PendingID: t.PendingID,
		Amount: t.Amount, Timestamp: t.Timestamp, Timeout: t.Timeout, Code: t.Code, Flags: t.Flags, userData: t.UserData}
	copy(r.currency[:], t.Currency) // validated: an account's currency
	return r
}

// transfer is r as a Transfer.
func (r *record) transfer() Transfer {
	return Transfer{ID: r.ID, DebitAccountID: r.DebitAccountID, CreditAccountID: r.CreditAccountID, PendingID: r.PendingID,
		Amount: r.Amount, Timestamp: r.Timestamp, Timeout: r.Timeout, Code: r.Code, Flags: r.Flags,
		Currency: currencyName(r.currency), UserData: r.userData}
}

// currencyName is a stored currency's name, without an allocation for the
// common ones.
func currencyName(c [3]byte) string {
	if c == [3]byte{} {
		return ""
	}
	for _, s := range currencies {
		if s == string(c[:]) {
			return s
		}
	}
	return string(c[:])
}

// index maps the overlay's transfer ids to their records. It is a hash
// table of open addressing with linear probing, in 256 shards chosen by
// the hash's top byte. A slot holds 32 bits of the id's hash and the
// record's index, 8 bytes, and the id is compared in the record only when
// those bits match. A shard grows on its own and keeps its size when the
// next entry clears it (reset), so a full batch after a full batch
// allocates nothing. The seed is random: it only places entries, it never
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

// reset empties the index, clearing only the shards in use.
func (x *index) reset() {
	if x.n == 0 {
		return
	}
	for k := range x.shards {
		if sh := &x.shards[k]; sh.n > 0 {
			clear(sh.slots)
			sh.n = 0
		}
	}
	x.n = 0
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
