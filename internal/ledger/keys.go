package ledger

import "superapp/internal/store"

// The ledger's layout in its stream's space. Package pay shares the space
// (the LEDGER stream's) and declares its own families in pay/keys.go; none
// begins like these. <id> is an ID's 16 raw bytes: fixed length, so it
// needs no separator, and half the size of hex in the keys every transfer
// of a batch is looked up by.
//
//	acct/<id>               an account: its number (accounts are numbered in the order
//	                        first written), then its 128-byte record (see codec.go;
//	                        balances included) packed, then its user data when the
//	                        record cannot hold it (disk.go). Written when the call
//	                        that changes it changes few accounts, else when the
//	                        journal is folded.
//	journal/<n>             the accounts one call changed when it changed many (or
//	                        some the journal already holds): each whole the first time
//	                        it is written, then its number and balances. <n> is
//	                        store.Seq, from 1. An account as of now is in the newest
//	                        chunk holding it, else under acct/. The oldest chunks are
//	                        folded into acct/ and deleted, so the journal holds about
//	                        twice as many records as there are accounts (journal.go).
//	xfer/<id>               a transfer: its fields, its accounts by number, its pending
//	                        state (0 unless it is a pending transfer), about 20 bytes
//	                        (disk.go). Written once; a pending transfer's is written
//	                        again when it is posted, voided or expires.
//	expiry/<deadline><id>   a pending transfer with a timeout, while it is pending;
//	                        empty. <deadline> is its deadline in ns, 8 bytes big-endian
//	                        with the sign bit flipped, so the queue sorts by deadline.
//	ledger                  the ledger's own: its time, how many transfers it stored
//	                        and their digest, how many journal chunks it wrote (meta).
const (
	accountPrefix  = "acct/"
	journalPrefix  = "journal/"
	transferPrefix = "xfer/"
	expiryPrefix   = "expiry/"
	metaKey        = "ledger"
)

func accountKey(id ID) string { return accountPrefix + string(id[:]) }

func journalKey(n uint64) string { return journalPrefix + store.Seq(n) }

func transferKey(id ID) string { return transferPrefix + string(id[:]) }

func expiryKey(deadline int64, id ID) string {
	return expiryPrefix + store.Seq(uint64(deadline)^1<<63) + string(id[:])
}

// parseExpiryKey returns the deadline and the id of an expiry key, without
// its prefix.
func parseExpiryKey(k string) (int64, ID, bool) {
	var id ID
	if len(k) != len(expiryPrefix)+8+16 {
		return 0, id, false
	}
	k = k[len(expiryPrefix):]
	copy(id[:], k[8:])
	return int64(store.ParseSeq(k[:8]) ^ 1<<63), id, true
}
