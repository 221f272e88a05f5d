package ledger

import (
	"fmt"
	"math/bits"
	"slices"

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
// replays the journal over acct/). When the journal holds more records
// than journalLimit, its oldest chunk is folded: each account whose newest
// record it holds is written under acct/, and the chunk is deleted. Chunks
// are folded in order, so an account no chunk holds (chunk 0) is in no
// chunk left in the store. When the accounts are touched again and again
// (as by full batches) the oldest chunk holds almost no account's newest
// record and folding writes almost nothing.
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
const journalMin = 64

// journalLimit is how many account records the journal may hold before
// its oldest chunk is folded: enough that an account touched by one full
// batch in every few is touched again before its chunk is folded.
func (l *Ledger) journalLimit() int {
	if l.testJournalLimit > 0 {
		return l.testJournalLimit
	}
	return 2*len(l.accounts) + 1<<16
}

// writeAccounts writes the accounts the call changed (l.dirty) to the
// entry's batch: to a new chunk, or under acct/, as the journal's rules
// say. It reports whether it wrote a chunk (the meta counts them).
func (l *Ledger) writeAccounts(tx *store.Tx) bool {
	big := len(l.dirty) >= journalMin
	n := l.meta.chunks + 1 // the chunk, if there is one
	chunk := l.spareChunk()
	keys := l.keys[:0]
	buf := l.jbuf[:0]
	// One pass: the accounts are spread over memory, each is read once.
	for i, a := range l.dirty {
		switch {
		case a.gone:
		case big || a.chunk != 0:
			chunk = append(chunk, a)
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
		buf = appendStoredAccount(buf[:0], &a.Account)
		tx.SetBlind(accountKey(a.ID), buf)
		a.written = true
	}
	l.buf = buf
}

// fold writes under acct/ the accounts whose newest record is in the
// journal's oldest chunk and deletes the chunk.
func (l *Ledger) fold(tx *store.Tx) {
	c := l.journal[0]
	keys := l.keys[:0]
	for i, a := range c.accounts {
		if a.chunk == c.n {
			a.chunk = 0
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
//	tag journalFull: the stored account (disk.go), its length (u32) before it
//	otherwise:       the id, then the balances the tag's bits say are not zero
//	                 (1 debits pending, 2 debits posted, 4 credits pending,
//	                 8 credits posted), 8 bytes each
//
// All integers are little-endian.
const journalFull = 0x10

func appendJournalRecord(dst []byte, a *account) []byte {
	if !a.written {
		n := len(dst)
		dst = append(dst, journalFull, 0, 0, 0, 0)
		dst = appendStoredAccount(dst, &a.Account)
		le.PutUint32(dst[n+1:], uint32(len(dst)-n-5))
		return dst
	}
	n := len(dst)
	dst = slices.Grow(dst, 1+16+32)[:n+1+16+32]
	copy(dst[n+1:], a.ID[:])
	p := n + 1 + 16
	var tag byte
	for i, v := range [4]uint64{a.DebitsPending, a.DebitsPosted, a.CreditsPending, a.CreditsPosted} {
		if v != 0 {
			tag |= 1 << i
			le.PutUint64(dst[p:], v)
			p += 8
		}
	}
	dst[n] = tag
	return dst[:p]
}

// nextJournalRecord decodes the record v begins with into the ledger's
// accounts and returns the account and what follows the record.
func (l *Ledger) nextJournalRecord(v []byte) (*account, []byte) {
	tag := v[0]
	v = v[1:]
	if tag == journalFull {
		if len(v) < 4 || int(le.Uint32(v)) > len(v)-4 {
			return nil, nil
		}
		size := int(le.Uint32(v))
		a := decodeStoredAccount(v[4 : 4+size])
		cur, ok := l.accounts[a.ID]
		if ok {
			cur.Account = a
		} else {
			cur = &account{Account: a}
			l.accounts[a.ID] = cur
		}
		return cur, v[4+size:]
	}
	if tag > 0xf || len(v) < 16+8*bits.OnesCount8(tag) {
		return nil, nil
	}
	cur, ok := l.accounts[ID(v[:16])]
	if !ok {
		return nil, nil
	}
	v = v[16:]
	for i, b := range [4]*uint64{&cur.DebitsPending, &cur.DebitsPosted, &cur.CreditsPending, &cur.CreditsPosted} {
		*b = 0
		if tag&(1<<i) != 0 {
			*b, v = le.Uint64(v), v[8:]
		}
	}
	return cur, v
}

// loadJournal replays the journal over the accounts Load read from acct/
// and restores what the ledger knows of the journal.
func (l *Ledger) loadJournal() {
	l.journal, l.journaled, l.spare = nil, 0, nil
	l.space.Scan(journalPrefix, "", false, func(k string, v []byte) bool {
		n := store.ParseSeq(k[len(journalPrefix):])
		if n == 0 || n > l.meta.chunks {
			corrupt("journal key", fmt.Errorf("chunk %d of %d", n, l.meta.chunks))
		}
		var chunk []*account
		for len(v) > 0 {
			a, rest := l.nextJournalRecord(v)
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
}
