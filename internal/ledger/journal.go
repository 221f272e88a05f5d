package ledger

import (
	"encoding/binary"
	"fmt"

	"superapp/internal/store"
)

// The journal is how a call that changes many accounts writes them: one
// key (a chunk) holding them all, instead of a key each. A full batch of
// transfers touches most accounts, and rewriting each account's key at
// every entry filled the memtable with thousands of versions of the same
// keys, each insert a walk among them: two thirds of the time apply took.
// A chunk is one insert, and the accounts in it need no key of their own
// until the chunk is folded.
//
// An account as of now is in the newest chunk that holds it, else under
// acct/. Calls that change few accounts write them under acct/, except an
// account the journal holds (its newest record must stay newest: Load
// replays the journal over acct/). A chunk holds an account whole the
// first time it is written, and then only its balances (the rest never
// changes), so its whole record is under acct/ or in one chunk (base).
// When the journal holds more records than journalLimit, its oldest chunk
// is folded: each account whose newest or whole record it holds is
// written under acct/, and the chunk is deleted. Chunks are folded in
// order, so an account no chunk holds (chunk 0) is in no chunk left in
// the store. When the accounts are touched again and again (as by full
// batches) the oldest chunk holds almost no account's newest record and
// folding writes almost nothing.
//
// Which accounts go where and when a chunk is folded depend only on the
// calls and on what the journal holds, which Load restores as it was: a
// restarted node writes what the others write.

// journalChunk is a chunk and the accounts it holds, in the order written.
type journalChunk struct {
	n        uint64
	accounts []*account
}

// journalMin is the fewest accounts a call changes for all of them to go
// to the journal.
func (l *Ledger) journalMin() int {
	if l.testJournal.min > 0 {
		return l.testJournal.min
	}
	return 64
}

// journalLimit is how many account records the journal may hold before
// its oldest chunk is folded: enough that an account touched by one full
// batch in every few is touched again before its chunk is folded.
func (l *Ledger) journalLimit() int {
	if l.testJournal.limit > 0 {
		return l.testJournal.limit
	}
	return 2*len(l.accounts) + 1<<16
}

// writeAccounts writes the accounts the call changed (l.dirty) to the
// entry's batch: to a new chunk, or under acct/, as the journal's rules
// say. It reports whether it wrote a chunk (the meta counts them).
func (l *Ledger) writeAccounts(tx *store.Tx) bool {
	big := len(l.dirty) >= l.journalMin()
	n := l.meta.chunks + 1 // the chunk, if there is one
	chunk := l.spareChunk()
	keys := l.keys[:0]
	buf := l.jbuf[:0]
	// One pass: the accounts are spread over memory, each is read once.
	for i, a := range l.dirty {
		if !a.written && !a.gone {
			l.number(a)
		}
		switch {
		case a.gone:
		case big || a.chunk != 0:
			chunk = append(chunk, a)
			if !a.written {
				a.base = n // its whole record, where the others hold balances
			}
			buf = appendJournalRecord(buf, a)
			a.chunk, a.written = n, true
		default:
			keys = append(keys, keyOf(&a.ID, int32(i)))
		}
	}
	l.keys, l.jbuf = keys, buf
	l.writeDirect(tx, keys, l.dirty)
	if len(chunk) == 0 {
		if chunk != nil {
			l.spare = append(l.spare, chunk)
		}
		return false
	}
	l.meta.chunks = n
	tx.SetBlind(journalKey(n), buf)
	l.journal = append(l.journal, journalChunk{n: n, accounts: chunk})
	l.journaled += len(chunk)
	for l.journaled > l.journalLimit() {
		l.fold(tx)
	}
	return true
}

// writeDirect writes under acct/ the accounts keys point to in accounts,
// in key order: the memtable inserts a key after the one before it much
// faster.
func (l *Ledger) writeDirect(tx *store.Tx, keys []sortKey, accounts []*account) {
	sortKeys(keys)
	buf := l.buf[:0]
	for _, k := range keys {
		a := accounts[k.i]
		buf = appendAccountValue(buf[:0], a)
		tx.SetBlind(accountKey(a.ID), buf)
		a.written = true
	}
	l.buf = buf
}

// fold writes under acct/ the accounts whose newest record or whole
// record is in the journal's oldest chunk, and deletes the chunk.
func (l *Ledger) fold(tx *store.Tx) {
	c := l.journal[0]
	keys := l.keys[:0]
	for i, a := range c.accounts {
		if a.chunk == c.n || a.base == c.n {
			if a.chunk == c.n {
				a.chunk = 0
			}
			a.base = 0
			keys = append(keys, keyOf(&a.ID, int32(i)))
		}
	}
	l.keys = keys
	l.writeDirect(tx, keys, c.accounts)
	tx.Delete(journalKey(c.n))
	l.journaled -= len(c.accounts)
	l.journal[0] = journalChunk{}
	l.journal = l.journal[1:]
	clear(c.accounts)
	l.spare = append(l.spare, c.accounts[:0])
}

// spareChunk is an empty slice for a chunk's accounts, a folded chunk's
// when there is one.
func (l *Ledger) spareChunk() []*account {
	if n := len(l.spare); n > 0 {
		c := l.spare[n-1]
		l.spare = l.spare[:n-1]
		return c
	}
	return nil
}

// A journal record is an account's balances, or the whole account when it
// was never written before (only balances change once it is): a tag
// byte, then
//
//	tag journalFull: the account's value (disk.go), its length (u32) before it
//	otherwise:       the account's number (uv), then the balances the tag's
//	                 bits say are not zero (1 debits pending, 2 debits posted,
//	                 4 credits pending, 8 credits posted), uv each
//
// All integers are little-endian or unsigned varints (uv).
const journalFull = 0x10

func appendJournalRecord(dst []byte, a *account) []byte {
	if !a.written {
		n := len(dst)
		dst = append(dst, journalFull, 0, 0, 0, 0)
		dst = appendAccountValue(dst, a)
		le.PutUint32(dst[n+1:], uint32(len(dst)-n-5))
		return dst
	}
	n := len(dst)
	dst = binary.AppendUvarint(append(dst, 0), uint64(a.num))
	var tag byte
	for i, v := range [4]uint64{a.DebitsPending, a.DebitsPosted, a.CreditsPending, a.CreditsPosted} {
		if v != 0 {
			tag |= 1 << i
			dst = binary.AppendUvarint(dst, v)
		}
	}
	dst[n] = tag
	return dst
}

// nextJournalRecord decodes the record v, of chunk, begins with into the
// ledger's accounts (ids: their ids by number, so far) and returns the
// account, the numbers and what follows the record.
func (l *Ledger) nextJournalRecord(v []byte, chunk uint64, ids []ID) (*account, []ID, []byte) {
	tag := v[0]
	v = v[1:]
	if tag == journalFull {
		if len(v) < 4 || int(le.Uint32(v)) > len(v)-4 {
			return nil, ids, nil
		}
		size := int(le.Uint32(v))
		num, a := decodeAccountValue(v[4 : 4+size])
		cur, ok := l.accounts[a.ID]
		if ok {
			cur.Account = a
		} else {
			cur = &account{Account: a}
			l.accounts[a.ID] = cur
		}
		cur.num, cur.base = num, chunk
		return cur, numbered(ids, num, a.ID), v[4+size:]
	}
	num, n := binary.Uvarint(v)
	if tag > 0xf || n <= 0 || num == 0 || num > uint64(len(ids)) {
		return nil, ids, nil
	}
	cur, ok := l.accounts[ids[num-1]]
	if !ok {
		return nil, ids, nil
	}
	v = v[n:]
	for i, b := range [4]*uint64{&cur.DebitsPending, &cur.DebitsPosted, &cur.CreditsPending, &cur.CreditsPosted} {
		*b = 0
		if tag&(1<<i) != 0 {
			if *b, n = binary.Uvarint(v); n <= 0 {
				return nil, ids, nil
			}
			v = v[n:]
		}
	}
	return cur, ids, v
}

// loadJournal replays the journal over the accounts Load read from acct/
// (ids: their ids by number) and restores what the ledger knows of the
// journal. It returns the ids by number of all the accounts.
func (l *Ledger) loadJournal(ids []ID) []ID {
	l.journal, l.journaled, l.spare = nil, 0, nil
	l.space.Scan(journalPrefix, "", false, func(k string, v []byte) bool {
		n := store.ParseSeq(k[len(journalPrefix):])
		if n == 0 || n > l.meta.chunks {
			corrupt("journal key", fmt.Errorf("chunk %d of %d", n, l.meta.chunks))
		}
		var chunk []*account
		for len(v) > 0 {
			var a *account
			var rest []byte
			a, ids, rest = l.nextJournalRecord(v, n, ids)
			if a == nil {
				corrupt("journal", fmt.Errorf("chunk %d: bad record, %d bytes left", n, len(v)))
			}
			v = rest
			a.chunk, a.written = n, true
			chunk = append(chunk, a)
		}
		l.journal = append(l.journal, journalChunk{n: n, accounts: chunk})
		l.journaled += len(chunk)
		return true
	})
	return ids
}

// number gives an account written for the first time the next number.
func (l *Ledger) number(a *account) {
	l.idsMu.Lock()
	l.ids = append(l.ids, a.ID)
	a.num = uint32(len(l.ids))
	l.idsMu.Unlock()
}

// numbered records that account number num is id.
func numbered(ids []ID, num uint32, id ID) []ID {
	if int(num) > len(ids) {
		ids = append(ids, make([]ID, int(num)-len(ids))...)
	}
	if !ids[num-1].IsZero() {
		corrupt("account", fmt.Errorf("number %d is %x and %x", num, ids[num-1], id))
	}
	ids[num-1] = id
	return ids
}

// accountID is the id of account number n (0: the zero id). Queries read
// transfers while apply numbers accounts: it holds idsMu.
func (l *Ledger) accountID(n uint32) (ID, bool) {
	if n == 0 {
		return ID{}, true
	}
	l.idsMu.RLock()
	defer l.idsMu.RUnlock()
	if int(n) > len(l.ids) {
		return ID{}, false
	}
	return l.ids[n-1], true
}
