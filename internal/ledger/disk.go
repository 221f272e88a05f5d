package ledger

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"math/bits"
	"slices"
	"strings"

	"superapp/internal/store"
)

// What the ledger keeps on disk (keys.go) is written in the batch of the
// entry being applied, once per call (flush), and read back by Load when
// the node restores the stream. Values are the binary records of codec.go
// with their zero words left out, as PackBatch leaves them out: a full
// batch writes thousands of transfers and accounts, a record costs no
// parsing, and a typical one takes 70 bytes instead of 128 in the
// memtable, the write-ahead log and every compaction.

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

// A stored transfer is its packed record, one byte of pending state, then
// its user data when the record cannot hold it. A full batch writes
// thousands: the record's words are made from r's fields (as
// appendTransfer lays them out) and packed, with no record in between.
func appendStoredTransfer(dst []byte, r *record) []byte {
	var w [RecordSize / 8]uint64
	w[0], w[1] = le.Uint64(r.ID[0:8]), le.Uint64(r.ID[8:16])
	w[2], w[3] = le.Uint64(r.DebitAccountID[0:8]), le.Uint64(r.DebitAccountID[8:16])
	w[4], w[5] = le.Uint64(r.CreditAccountID[0:8]), le.Uint64(r.CreditAccountID[8:16])
	w[6] = r.Amount
	w[8], w[9] = le.Uint64(r.PendingID[0:8]), le.Uint64(r.PendingID[8:16])
	long := !fitsRecord(r.userData)
	if !long && r.userData != "" {
		var ud [32]byte // bytes 80 to 112: user data, then the timeout
		copy(ud[:UserDataSize], r.userData)
		le.PutUint32(ud[28:], r.Timeout)
		w[10], w[11], w[12], w[13] = le.Uint64(ud[0:8]), le.Uint64(ud[8:16]), le.Uint64(ud[16:24]), le.Uint64(ud[24:32])
	} else {
		w[13] = uint64(r.Timeout) << 32
	}
	w[14] = uint64(r.currency[0]) | uint64(r.currency[1])<<8 | uint64(r.currency[2])<<16 | uint64(r.Code)<<32 | uint64(r.Flags)<<48
	w[15] = uint64(r.Timestamp)
	dst = packWords(dst, &w)
	dst = append(dst, byte(r.state))
	if long {
		dst = append(dst, r.userData...)
	}
	return dst
}

// packWords appends a record's words as packRecord packs the record.
func packWords(dst []byte, w *[RecordSize / 8]uint64) []byte {
	n := len(dst)
	dst = slices.Grow(dst, 2+RecordSize)[:n+2+RecordSize]
	p := n + 2
	var mask uint16
	for i, v := range w {
		if v != 0 {
			mask |= 1 << i
			le.PutUint64(dst[p:], v)
			p += 8
		}
	}
	le.PutUint16(dst[n:], mask)
	return dst[:p]
}

// decodeStoredTransfer decodes a stored transfer into r.
func decodeStoredTransfer(v []byte, r *record) {
	var rec [RecordSize]byte
	rest, ok := unpackRecord(v, &rec)
	if !ok || len(rest) == 0 {
		corrupt("transfer", fmt.Errorf("%d bytes", len(v)))
	}
	var t Transfer
	if field, reason := decodeTransfer(rec[:], &t); field != "" {
		corrupt("transfer", fmt.Errorf("%s: %s", field, reason))
	}
	if len(rest) > 1 {
		t.UserData = string(rest[1:])
	}
	*r = recordOf(&t)
	r.state = PendingState(rest[0])
}

// storedPendingState reads a stored transfer's flags and pending state.
func storedPendingState(v []byte) (TransferFlags, PendingState) {
	var rec [RecordSize]byte
	rest, ok := unpackRecord(v, &rec)
	if !ok || len(rest) == 0 {
		corrupt("transfer", fmt.Errorf("%d bytes", len(v)))
	}
	return TransferFlags(le.Uint16(rec[118:120])), PendingState(rest[0])
}

// A stored account is its packed record, then its user data when the
// record cannot hold it.
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
	l.space.Scan(accountPrefix, "", false, func(_ string, v []byte) bool {
		a := decodeStoredAccount(v)
		l.accounts[a.ID] = &account{Account: a, written: true}
		return true
	})
	l.meta = meta{}
	if v, ok := l.space.Get(metaKey); ok {
		l.meta = decodeMeta(v)
	}
	l.loadJournal()
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
