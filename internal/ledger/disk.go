package ledger

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strings"

	"superapp/internal/store"
)

// What the ledger keeps on disk (keys.go) is written in the batch of the
// entry being applied, once per call (flush), and read back by Load when
// the node restores the stream (accounts) or when a transfer is looked
// up. Values are compact binary: an account is the binary record of
// codec.go with its zero words left out, as PackBatch leaves them out; a
// transfer is its fields as varints, its accounts by number. A full batch
// writes thousands of transfers, and every byte goes through the batch,
// the memtable, the write-ahead log and every compaction.

// Reader is where the ledger's stored transfers are read from: the
// committed store (*store.Space) for queries, the entry's batch
// (*store.Tx) while applying.
type Reader interface {
	Get(key string) ([]byte, bool)
}

var (
	_ Reader = (*store.Space)(nil)
	_ Reader = (*store.Tx)(nil)
)

// fitsRecord reports whether user data fits in a binary record.
func fitsRecord(userData string) bool {
	return len(userData) <= UserDataSize && strings.IndexByte(userData, 0) < 0
}

// packRecord appends a 128-byte record without its zero words: a 16-bit
// mask of the words present (bit i: word i), then those words.
func packRecord(dst, rec []byte) []byte {
	n := len(dst)
	dst = append(dst, 0, 0)
	var mask uint16
	for w := range RecordSize / 8 {
		if v := le.Uint64(rec[w*8:]); v != 0 {
			mask |= 1 << w
			dst = le.AppendUint64(dst, v)
		}
	}
	le.PutUint16(dst[n:], mask)
	return dst
}

// unpackRecord restores a record packRecord packed and returns what
// follows it.
func unpackRecord(p []byte, rec *[RecordSize]byte) ([]byte, bool) {
	if len(p) < 2 {
		return nil, false
	}
	mask := le.Uint16(p)
	p = p[2:]
	if len(p) < bits.OnesCount16(mask)*8 {
		return nil, false
	}
	for w := range RecordSize / 8 {
		var v uint64
		if mask&(1<<w) != 0 {
			v, p = le.Uint64(p), p[8:]
		}
		le.PutUint64(rec[w*8:], v)
	}
	return p, true
}

// A stored transfer (its id is its key's) is, all integers little-endian
// or unsigned varints (uv):
//
//	1 byte    header: pending state (bits 0-2); a pending id follows (bit 3)
//	uv        flags
//	uv        code
//	3 bytes   currency (zero: none)
//	uv        debit account's number (0: the zero id)
//	uv        credit account's number (likewise)
//	uv        amount
//	uv        timeout
//	8 bytes   timestamp
//	16 bytes  pending id, if the header says so
//	…         user data, the rest
//
// Accounts are numbered in the order they are first written (journal.go):
// a number takes two or three bytes where an id takes sixteen. A full
// batch writes thousands of transfers, and every byte of them goes
// through the batch, the memtable, the write-ahead log and every
// compaction: a typical transfer takes 20 bytes, not the 128 of its
// binary record.
const pendingIDFollows = 1 << 3

func appendStoredTransfer(dst []byte, r *record) []byte {
	if (r.dnum == 0) != r.DebitAccountID.IsZero() || (r.cnum == 0) != r.CreditAccountID.IsZero() {
		panic(fmt.Sprintf("ledger: transfer %x names an account with no number", r.ID))
	}
	h := byte(r.state)
	if !r.PendingID.IsZero() {
		h |= pendingIDFollows
	}
	dst = append(dst, h)
	dst = binary.AppendUvarint(dst, uint64(r.Flags))
	dst = binary.AppendUvarint(dst, uint64(r.Code))
	dst = append(dst, r.currency[:]...)
	dst = binary.AppendUvarint(dst, uint64(r.dnum))
	dst = binary.AppendUvarint(dst, uint64(r.cnum))
	dst = binary.AppendUvarint(dst, r.Amount)
	dst = binary.AppendUvarint(dst, uint64(r.Timeout))
	dst = le.AppendUint64(dst, uint64(r.Timestamp))
	if h&pendingIDFollows != 0 {
		dst = append(dst, r.PendingID[:]...)
	}
	return append(dst, r.userData...)
}

// storedTransfer reads what a stored transfer is made of into r, its id
// and account ids aside; it reports false when v is not one.
func storedTransfer(v []byte, r *record) bool {
	if len(v) == 0 || v[0]&^(pendingIDFollows|7) != 0 {
		return false
	}
	h := v[0]
	p, ok := 1, true
	next := func(max uint64) uint64 {
		x, n := binary.Uvarint(v[p:])
		if n <= 0 || x > max {
			ok = false
			return 0
		}
		p += n
		return x
	}
	r.state = PendingState(h & 7)
	r.Flags = TransferFlags(next(math.MaxUint16))
	r.Code = uint16(next(math.MaxUint16))
	if !ok || p+3 > len(v) {
		return false
	}
	copy(r.currency[:], v[p:p+3])
	p += 3
	r.dnum = uint32(next(math.MaxUint32))
	r.cnum = uint32(next(math.MaxUint32))
	r.Amount = next(math.MaxUint64)
	r.Timeout = uint32(next(math.MaxUint32))
	if !ok || p+8 > len(v) {
		return false
	}
	r.Timestamp = int64(le.Uint64(v[p:]))
	p += 8
	r.PendingID = ID{}
	if h&pendingIDFollows != 0 {
		if p+16 > len(v) {
			return false
		}
		r.PendingID = ID(v[p : p+16])
		p += 16
	}
	r.userData = ""
	if p < len(v) {
		r.userData = string(v[p:])
	}
	return true
}

// readTransfer decodes the stored transfer id into r.
func (l *Ledger) readTransfer(id ID, v []byte, r *record) {
	*r = record{}
	if !storedTransfer(v, r) {
		corrupt("transfer", fmt.Errorf("%x: %d bytes", id, len(v)))
	}
	r.ID = id
	var ok bool
	if r.DebitAccountID, ok = l.accountID(r.dnum); !ok {
		corrupt("transfer", fmt.Errorf("%x: no account number %d", id, r.dnum))
	}
	if r.CreditAccountID, ok = l.accountID(r.cnum); !ok {
		corrupt("transfer", fmt.Errorf("%x: no account number %d", id, r.cnum))
	}
}

// storedPendingState reads a stored transfer's flags and pending state.
func storedPendingState(v []byte) (TransferFlags, PendingState) {
	var r record
	if !storedTransfer(v, &r) {
		corrupt("transfer", fmt.Errorf("%d bytes", len(v)))
	}
	return r.Flags, r.state
}

// An account's value (under acct/, and whole in the journal) is its
// number (uv), then the stored account: its packed record, then its user
// data when the record cannot hold it.
func appendAccountValue(dst []byte, a *account) []byte {
	dst = binary.AppendUvarint(dst, uint64(a.num))
	return appendStoredAccount(dst, &a.Account)
}

func decodeAccountValue(v []byte) (uint32, Account) {
	num, n := binary.Uvarint(v)
	if n <= 0 || num == 0 || num > math.MaxUint32 {
		corrupt("account", fmt.Errorf("bad number (%d bytes)", len(v)))
	}
	return uint32(num), decodeStoredAccount(v[n:])
}

func appendStoredAccount(dst []byte, a *Account) []byte {
	c := *a
	long := !fitsRecord(c.UserData)
	if long {
		c.UserData = ""
	}
	var rec [RecordSize]byte
	appendAccount(rec[:0], &c)
	dst = packRecord(dst, rec[:])
	if long {
		dst = append(dst, a.UserData...)
	}
	return dst
}

func decodeStoredAccount(v []byte) Account {
	var rec [RecordSize]byte
	rest, ok := unpackRecord(v, &rec)
	if !ok {
		corrupt("account", fmt.Errorf("%d bytes", len(v)))
	}
	var a Account
	if field, reason := decodeAccount(rec[:], &a); field != "" {
		corrupt("account", fmt.Errorf("%s: %s", field, reason))
	}
	if len(rest) > 0 {
		a.UserData = string(rest)
	}
	return a
}

// corrupt stops the entry: what the ledger wrote does not read back.
func corrupt(what string, err error) {
	panic(store.Failure{Err: fmt.Errorf("ledger: stored %s unreadable: %w", what, err)})
}

// sortKey is an id as two big-endian halves, for sorting in key order
// with no pointer chased, and the place of what it identifies.
type sortKey struct {
	hi, lo uint64
	i      int32
}

func keyOf(id *ID, i int32) sortKey {
	return sortKey{binary.BigEndian.Uint64(id[:8]), binary.BigEndian.Uint64(id[8:]), i}
}

func sortKeys(keys []sortKey) {
	slices.SortFunc(keys, func(a, b sortKey) int {
		if a.hi != b.hi {
			return cmp.Compare(a.hi, b.hi)
		}
		return cmp.Compare(a.lo, b.lo)
	})
}

// meta is the ledger's own record: its time, how many transfers it stored
// and their digest, how many journal chunks it wrote (journal.go).
type meta struct {
	now    int64
	stored uint64
	sum    [2]uint64
	chunks uint64
}

func (m *meta) encode() []byte {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 40), uint64(m.now))
	b = binary.BigEndian.AppendUint64(b, m.stored)
	b = binary.BigEndian.AppendUint64(b, m.sum[0])
	b = binary.BigEndian.AppendUint64(b, m.sum[1])
	return binary.BigEndian.AppendUint64(b, m.chunks)
}

func decodeMeta(v []byte) meta {
	if len(v) != 40 {
		corrupt("meta", fmt.Errorf("%d bytes", len(v)))
	}
	return meta{now: int64(binary.BigEndian.Uint64(v)), stored: binary.BigEndian.Uint64(v[8:]),
		sum:    [2]uint64{binary.BigEndian.Uint64(v[16:]), binary.BigEndian.Uint64(v[24:])},
		chunks: binary.BigEndian.Uint64(v[32:])}
}

// Load fills the ledger from its store: the accounts (under acct/, then
// the journal's newer records), the ledger's time, and the transfers'
// count and digest. Call it once, when the node restores the stream,
// before the first entry is applied.
func (l *Ledger) Load() {
	l.accounts = map[ID]*account{}
	var ids []ID
	l.space.Scan(accountPrefix, "", false, func(_ string, v []byte) bool {
		num, a := decodeAccountValue(v)
		l.accounts[a.ID] = &account{Account: a, num: num, written: true}
		ids = numbered(ids, num, a.ID)
		return true
	})
	l.meta = meta{}
	if v, ok := l.space.Get(metaKey); ok {
		l.meta = decodeMeta(v)
	}
	ids = l.loadJournal(ids)
	for n, id := range ids {
		if id.IsZero() {
			corrupt("account", fmt.Errorf("no account number %d of %d", n+1, len(ids)))
		}
	}
	l.idsMu.Lock()
	l.ids = ids
	l.idsMu.Unlock()
	l.now = l.meta.now
	l.nextExpiry = 0
	l.space.Scan(expiryPrefix, "", false, func(k string, _ []byte) bool {
		l.nextExpiry, _, _ = parseExpiryKey(k)
		return false
	})
}

// flush writes what the call changed to the entry's batch: the transfers
// it put in the overlay or restated, their places in the expiry queue, the
// accounts it touched (journal.go) and the ledger's meta. Transfers,
// accounts and meta are written blind: apply never reads them back from
// the batch (the overlay answers for the transfers, memory for the
// accounts and the meta); the expiry queue, which tick scans, and the
// journal's deletions are indexed.
func (l *Ledger) flush() {
	tx := l.tx
	buf := l.buf[:0]
	changed := false
	// In key order: the memtable, when the batch is committed, inserts a
	// key after the one before it much faster.
	keys := l.keys[:0]
	for i := l.first; i < l.cur.n; i++ {
		keys = append(keys, keyOf(&l.cur.at(i).ID, int32(i)))
	}
	for _, i := range l.restated {
		keys = append(keys, keyOf(&l.cur.at(i).ID, int32(i)))
	}
	sortKeys(keys)
	for _, k := range keys {
		r := l.cur.at(uint32(k.i))
		buf = appendStoredTransfer(buf[:0], r)
		tx.SetBlind(transferKey(r.ID), buf)
		changed = true
		if r.written {
			l.meta.sum = sub(l.meta.sum, transferSum(r.ID, r.Amount, r.writtenState))
		} else {
			l.meta.stored++
		}
		l.meta.sum = add(l.meta.sum, transferSum(r.ID, r.Amount, r.state))
		queued := r.written && r.writtenState == StatePending
		r.written, r.writtenState = true, r.state
		if r.Flags&Pending == 0 || r.Timeout == 0 {
			continue
		}
		deadline := r.Timestamp + int64(r.Timeout)*1e9
		switch want := r.state == StatePending; {
		case want && !queued:
			tx.Set(expiryKey(deadline, r.ID), nil)
			if l.nextExpiry == 0 || deadline < l.nextExpiry {
				l.nextExpiry = deadline
			}
		case queued && !want:
			tx.Delete(expiryKey(deadline, r.ID))
		}
	}
	l.keys, l.buf = keys, buf
	if l.writeAccounts(tx) {
		changed = true
	}
	if changed || l.now != l.meta.now {
		l.meta.now = l.now
		tx.SetBlind(metaKey, l.meta.encode())
	}
	l.dirty = l.dirty[:0]
	l.restated = l.restated[:0]
	l.first = l.cur.n
	l.tx = nil
}

// The state digest sums a 128-bit hash of every transfer (id, amount,
// pending state) and of every account (id, balances, flags), lane by lane
// modulo 2^64: the sum does not depend on order, so a transfer is added
// when it is stored and its pending state swapped in place, with no
// transfer read back, and the accounts are summed without sorting them.
// It compares nodes that applied the same log; it is not a defence against
// someone who crafts collisions.

func mum(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

const (
	wy0 = 0xa0761d6478bd642f
	wy1 = 0xe7037ed1a0b428db
	wy2 = 0x8ebc6af09c88c6e3
	wy3 = 0x589965cc75374cc3
)

// hash2 folds words into 128 bits.
func hash2(words ...uint64) [2]uint64 {
	h0, h1 := uint64(wy2), uint64(wy3)
	for _, w := range words {
		h0 = mum(h0^wy0, w^wy1)
		h1 = mum(h1^w^wy2, h0^wy3)
	}
	return [2]uint64{h0, h1}
}

func transferSum(id ID, amount uint64, st PendingState) [2]uint64 {
	return hash2(le.Uint64(id[0:8]), le.Uint64(id[8:16]), amount, uint64(st))
}

func add(a, b [2]uint64) [2]uint64 { return [2]uint64{a[0] + b[0], a[1] + b[1]} }

func sub(a, b [2]uint64) [2]uint64 { return [2]uint64{a[0] - b[0], a[1] - b[1]} }
