package ledger

// A ledger keeps every transfer it ever stored: millions of them. They
// live in chunks of records that hold no pointers, indexed by a map whose
// values are not pointers either, so the garbage collector never scans
// them, and a stored transfer costs 96 bytes instead of a 144-byte object
// of its own with two strings.

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
