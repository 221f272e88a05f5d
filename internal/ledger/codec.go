package ledger

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/bits"
	"strconv"
	"unicode/utf8"
)

// The binary layouts follow TigerBeetle's: every account and every transfer
// is one fixed 128-byte record, all integers little-endian, so a full batch
// is decoded with no parsing and no per-field allocation. Offsets match
// TigerBeetle's wherever our fields match theirs; its three user_data
// fields are one 28-byte string here, and its u32 ledger holds our
// currency.
//
// Transfer record:
//
//	offset size field
//	     0   16 id
//	    16   16 debit_account_id
//	    32   16 credit_account_id
//	    48   16 amount             u128; must be below 2^64
//	    64   16 pending_id
//	    80   28 user_data          UTF-8, padded with zero bytes; no zero byte inside
//	   108    4 timeout            u32, seconds
//	   112    4 currency           ISO 4217 code: 3 ASCII capital letters, then a zero byte;
//	                               all zero: none (a post or void takes its pending transfer's)
//	   116    2 code               u16
//	   118    2 flags              u16 (TransferFlags)
//	   120    8 timestamp          i64 ns; set by the ledger, ignored on input
//
// Account record:
//
//	offset size field
//	     0   16 id
//	    16   16 debits_pending     u128; must be below 2^64 (ignored on input)
//	    32   16 debits_posted      u128; likewise
//	    48   16 credits_pending    u128; likewise
//	    64   16 credits_posted     u128; likewise
//	    80   28 user_data          as in a transfer
//	   108    4 reserved           zero
//	   112    4 currency           as in a transfer
//	   116    2 code               u16
//	   118    2 flags              u16 (AccountFlags)
//	   120    8 timestamp          i64 ns; set by the ledger, ignored on input
//
// A batch (the body of POST /v1/ledger/batches as application/octet-stream):
//
//	offset size field
//	     0    4 accounts           u32: how many account records follow
//	     4    4 transfers          u32: how many transfer records follow them
//	     8    … accounts × 128 bytes of account records, then transfers × 128 of transfer records
//
// Its length is exactly 8 + 128 × (accounts + transfers).
const (
	// RecordSize is the size of one account or transfer record.
	RecordSize = 128
	// BatchHeaderSize is the size of a batch's header.
	BatchHeaderSize = 8
	// UserDataSize is the most bytes a binary record's user_data holds.
	UserDataSize = 28
)

// A FormatError says which record and field of binary input is wrong, or
// which account or transfer cannot be put in binary form.
type FormatError struct {
	// Field names what is wrong: "transfers[3].currency", "header"...
	Field string
	// Reason says why, in words.
	Reason string
}

func (e *FormatError) Error() string { return e.Field + ": " + e.Reason }

func formatErr(prefix string, i int, field, reason string) *FormatError {
	if prefix == "" {
		return &FormatError{Field: field, Reason: reason}
	}
	return &FormatError{Field: prefix + "[" + strconv.Itoa(i) + "]." + field, Reason: reason}
}

var le = binary.LittleEndian

// AppendTransfer appends t's 128-byte record to dst. It fails when t
// cannot be represented: a currency that is not an ISO 4217 code (or
// empty), or user_data longer than UserDataSize bytes or holding a zero
// byte.
func AppendTransfer(dst []byte, t *Transfer) ([]byte, error) {
	if field, reason := checkStrings(t.Currency, t.UserData); field != "" {
		return dst, &FormatError{Field: field, Reason: reason}
	}
	return appendTransfer(dst, t), nil
}

func appendTransfer(dst []byte, t *Transfer) []byte {
	dst, r := grow(dst)
	copy(r[0:16], t.ID[:])
	copy(r[16:32], t.DebitAccountID[:])
	copy(r[32:48], t.CreditAccountID[:])
	le.PutUint64(r[48:56], t.Amount)
	copy(r[64:80], t.PendingID[:])
	copy(r[80:108], t.UserData)
	le.PutUint32(r[108:112], t.Timeout)
	copy(r[112:115], t.Currency)
	le.PutUint16(r[116:118], t.Code)
	le.PutUint16(r[118:120], uint16(t.Flags))
	le.PutUint64(r[120:128], uint64(t.Timestamp))
	return dst
}

// AppendAccount appends a's 128-byte record to dst. It fails as
// AppendTransfer does.
func AppendAccount(dst []byte, a *Account) ([]byte, error) {
	if field, reason := checkStrings(a.Currency, a.UserData); field != "" {
		return dst, &FormatError{Field: field, Reason: reason}
	}
	return appendAccount(dst, a), nil
}

func appendAccount(dst []byte, a *Account) []byte {
	dst, r := grow(dst)
	copy(r[0:16], a.ID[:])
	le.PutUint64(r[16:24], a.DebitsPending)
	le.PutUint64(r[32:40], a.DebitsPosted)
	le.PutUint64(r[48:56], a.CreditsPending)
	le.PutUint64(r[64:72], a.CreditsPosted)
	copy(r[80:108], a.UserData)
	copy(r[112:115], a.Currency)
	le.PutUint16(r[116:118], a.Code)
	le.PutUint16(r[118:120], uint16(a.Flags))
	le.PutUint64(r[120:128], uint64(a.Timestamp))
	return dst
}

// grow extends dst by one zeroed record and returns it and the record.
func grow(dst []byte) ([]byte, []byte) {
	n := len(dst)
	dst = append(dst, make([]byte, RecordSize)...)
	return dst, dst[n : n+RecordSize]
}

func checkStrings(currency, userData string) (field, reason string) {
	if currency != "" && !validCurrency(currency) {
		return "currency", fmt.Sprintf("currency %q is not an ISO 4217 code (3 capital letters)", currency)
	}
	if len(userData) > UserDataSize {
		return "user_data", fmt.Sprintf("user_data is %d bytes; the binary form holds at most %d", len(userData), UserDataSize)
	}
	if bytes.IndexByte([]byte(userData), 0) >= 0 {
		return "user_data", "user_data must not hold a zero byte"
	}
	return "", ""
}

func validCurrency(s string) bool {
	return len(s) == 3 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z' && s[2] >= 'A' && s[2] <= 'Z'
}

// DecodeTransfer decodes one 128-byte transfer record. It never panics:
// a record of the wrong size or with a field out of range is an error.
func DecodeTransfer(rec []byte) (Transfer, error) {
	var t Transfer
	if len(rec) != RecordSize {
		return t, &FormatError{Field: "record", Reason: fmt.Sprintf("a record is %d bytes, not %d", RecordSize, len(rec))}
	}
	if field, reason := decodeTransfer(rec, &t); field != "" {
		return Transfer{}, &FormatError{Field: field, Reason: reason}
	}
	return t, nil
}

func decodeTransfer(r []byte, t *Transfer) (field, reason string) {
	r = r[:RecordSize]
	copy(t.ID[:], r[0:16])
	copy(t.DebitAccountID[:], r[16:32])
	copy(t.CreditAccountID[:], r[32:48])
	var ok bool
	if t.Amount, ok = u128(r[48:64]); !ok {
		return "amount", "amount must be below 2^64"
	}
	copy(t.PendingID[:], r[64:80])
	if t.UserData, reason = userData(r[80:108]); reason != "" {
		return "user_data", reason
	}
	t.Timeout = le.Uint32(r[108:112])
	if t.Currency, reason = currency(r[112:116]); reason != "" {
		return "currency", reason
	}
	t.Code = le.Uint16(r[116:118])
	t.Flags = TransferFlags(le.Uint16(r[118:120]))
	t.Timestamp = int64(le.Uint64(r[120:128]))
	return "", ""
}

// DecodeAccount decodes one 128-byte account record. It never panics.
func DecodeAccount(rec []byte) (Account, error) {
	var a Account
	if len(rec) != RecordSize {
		return a, &FormatError{Field: "record", Reason: fmt.Sprintf("a record is %d bytes, not %d", RecordSize, len(rec))}
	}
	if field, reason := decodeAccount(rec, &a); field != "" {
		return Account{}, &FormatError{Field: field, Reason: reason}
	}
	return a, nil
}

func decodeAccount(r []byte, a *Account) (field, reason string) {
	r = r[:RecordSize]
	copy(a.ID[:], r[0:16])
	for _, b := range []struct {
		name string
		off  int
		v    *uint64
	}{{"debits_pending", 16, &a.DebitsPending}, {"debits_posted", 32, &a.DebitsPosted},
		{"credits_pending", 48, &a.CreditsPending}, {"credits_posted", 64, &a.CreditsPosted}} {
		var ok bool
		if *b.v, ok = u128(r[b.off : b.off+16]); !ok {
			return b.name, b.name + " must be below 2^64"
		}
	}
	if a.UserData, reason = userData(r[80:108]); reason != "" {
		return "user_data", reason
	}
	if le.Uint32(r[108:112]) != 0 {
		return "reserved", "bytes 108 to 111 of an account record are reserved and must be zero"
	}
	if a.Currency, reason = currency(r[112:116]); reason != "" {
		return "currency", reason
	}
	a.Code = le.Uint16(r[116:118])
	a.Flags = AccountFlags(le.Uint16(r[118:120]))
	a.Timestamp = int64(le.Uint64(r[120:128]))
	return "", ""
}

func u128(b []byte) (uint64, bool) {
	return le.Uint64(b[0:8]), le.Uint64(b[8:16]) == 0
}

func userData(b []byte) (string, string) {
	n := bytes.IndexByte(b, 0)
	if n < 0 {
		n = len(b)
	}
	for _, c := range b[n:] {
		if c != 0 {
			return "", "user_data has bytes after the zero byte that ends it"
		}
	}
	if !utf8.Valid(b[:n]) {
		return "", "user_data must be UTF-8"
	}
	if n == 0 {
		return "", ""
	}
	return string(b[:n]), ""
}

// currencies are names decoded without an allocation: a batch is mostly
// thousands of transfers in one currency, and the ledger keeps each one.
var currencies = [...]string{"KRW", "USD", "EUR", "JPY", "CNY", "GBP"}

func currency(b []byte) (string, string) {
	c := le.Uint32(b)
	if c == 0 {
		return "", ""
	}
	if b[3] != 0 || b[0] < 'A' || b[0] > 'Z' || b[1] < 'A' || b[1] > 'Z' || b[2] < 'A' || b[2] > 'Z' {
		return "", fmt.Sprintf("currency must be an ISO 4217 code, 3 ASCII capital letters and a zero byte (or all zero for none), not % x", b)
	}
	for _, s := range currencies {
		if s == string(b[:3]) {
			return s, ""
		}
	}
	return string(b[:3]), ""
}

// EncodeTransfers encodes transfers as consecutive records.
func EncodeTransfers(ts []Transfer) ([]byte, error) {
	out := make([]byte, 0, len(ts)*RecordSize)
	for i := range ts {
		if field, reason := checkStrings(ts[i].Currency, ts[i].UserData); field != "" {
			return nil, formatErr("transfers", i, field, reason)
		}
		out = appendTransfer(out, &ts[i])
	}
	return out, nil
}

// DecodeTransfers decodes consecutive transfer records. It never panics.
func DecodeTransfers(b []byte) ([]Transfer, error) {
	if len(b)%RecordSize != 0 {
		return nil, &FormatError{Field: "transfers", Reason: fmt.Sprintf("%d bytes is not a whole number of %d-byte records", len(b), RecordSize)}
	}
	return decodeTransfers(b, len(b)/RecordSize)
}

func decodeTransfers(b []byte, n int) ([]Transfer, error) {
	if n == 0 {
		return nil, nil
	}
	ts := make([]Transfer, n)
	for i := range ts {
		if field, reason := decodeTransfer(b[i*RecordSize:], &ts[i]); field != "" {
			return nil, formatErr("transfers", i, field, reason)
		}
	}
	return ts, nil
}

// EncodeAccounts encodes accounts as consecutive records.
func EncodeAccounts(as []Account) ([]byte, error) {
	out := make([]byte, 0, len(as)*RecordSize)
	for i := range as {
		if field, reason := checkStrings(as[i].Currency, as[i].UserData); field != "" {
			return nil, formatErr("accounts", i, field, reason)
		}
		out = appendAccount(out, &as[i])
	}
	return out, nil
}

// DecodeAccounts decodes consecutive account records. It never panics.
func DecodeAccounts(b []byte) ([]Account, error) {
	if len(b)%RecordSize != 0 {
		return nil, &FormatError{Field: "accounts", Reason: fmt.Sprintf("%d bytes is not a whole number of %d-byte records", len(b), RecordSize)}
	}
	return decodeAccounts(b, len(b)/RecordSize)
}

func decodeAccounts(b []byte, n int) ([]Account, error) {
	if n == 0 {
		return nil, nil
	}
	as := make([]Account, n)
	for i := range as {
		if field, reason := decodeAccount(b[i*RecordSize:], &as[i]); field != "" {
			return nil, formatErr("accounts", i, field, reason)
		}
	}
	return as, nil
}

// EncodeBatch encodes accounts and transfers as a batch: the header, then
// the records.
func EncodeBatch(as []Account, ts []Transfer) ([]byte, error) {
	out := make([]byte, BatchHeaderSize, BatchHeaderSize+(len(as)+len(ts))*RecordSize)
	le.PutUint32(out[0:4], uint32(len(as)))
	le.PutUint32(out[4:8], uint32(len(ts)))
	for i := range as {
		if field, reason := checkStrings(as[i].Currency, as[i].UserData); field != "" {
			return nil, formatErr("accounts", i, field, reason)
		}
		out = appendAccount(out, &as[i])
	}
	for i := range ts {
		if field, reason := checkStrings(ts[i].Currency, ts[i].UserData); field != "" {
			return nil, formatErr("transfers", i, field, reason)
		}
		out = appendTransfer(out, &ts[i])
	}
	return out, nil
}

// BatchCounts checks a batch's header against its length and returns how
// many accounts and transfers it holds; it does not look at the records.
func BatchCounts(b []byte) (accounts, transfers int, err error) {
	if len(b) < BatchHeaderSize {
		return 0, 0, &FormatError{Field: "header", Reason: fmt.Sprintf("a batch starts with an %d-byte header (account and transfer counts); got %d bytes", BatchHeaderSize, len(b))}
	}
	na, nt := uint64(le.Uint32(b[0:4])), uint64(le.Uint32(b[4:8]))
	if want := BatchHeaderSize + (na+nt)*RecordSize; uint64(len(b)) != want {
		return 0, 0, &FormatError{Field: "header", Reason: fmt.Sprintf("the header counts %d accounts and %d transfers, so the batch must be %d bytes; it is %d", na, nt, want, len(b))}
	}
	return int(na), int(nt), nil
}

// DecodeBatch decodes a batch. It never panics: a header that does not
// match the length, or any record out of range, is a *FormatError naming
// it.
func DecodeBatch(b []byte) ([]Account, []Transfer, error) {
	na, nt, err := BatchCounts(b)
	if err != nil {
		return nil, nil, err
	}
	as, err := decodeAccounts(b[BatchHeaderSize:], na)
	if err != nil {
		return nil, nil, err
	}
	ts, err := decodeTransfers(b[BatchHeaderSize+na*RecordSize:], nt)
	if err != nil {
		return nil, nil, err
	}
	return as, ts, nil
}

// CheckBatch validates every record of a batch, as DecodeBatch does, without
// keeping them, and returns the counts.
func CheckBatch(b []byte) (accounts, transfers int, err error) {
	na, nt, err := BatchCounts(b)
	if err != nil {
		return 0, 0, err
	}
	recs := b[BatchHeaderSize:]
	var a Account
	for i := 0; i < na; i++ {
		if field, reason := decodeAccount(recs[i*RecordSize:], &a); field != "" {
			return 0, 0, formatErr("accounts", i, field, reason)
		}
	}
	recs = recs[na*RecordSize:]
	var t Transfer
	for i := 0; i < nt; i++ {
		if field, reason := decodeTransfer(recs[i*RecordSize:], &t); field != "" {
			return 0, 0, formatErr("transfers", i, field, reason)
		}
	}
	return na, nt, nil
}

// The packed form of a batch is what the log stores. Each record is read
// as 16 little-endian 8-byte words and XORed with the record before it
// (the first with zeros): a word that repeats (currency, code and flags,
// the amount, the high half of time-ordered ids) or that is zero in both
// (no pending id, no user data, no timeout) becomes zero, and zero words
// are left out. A record is a 16-bit mask of its non-zero words, then
// those words. A typical transfer takes 42 bytes instead of 128, which
// cuts what every replica writes, sends, reads back and parses.
//
//	offset size field
//	     0    8 the batch's header, as is
//	     8    … per record: u16 mask (bit i: word i is present), then the present words, in order

// PackBatch packs a batch whose length matches its header (see BatchCounts).
func PackBatch(b []byte) ([]byte, error) {
	na, nt, err := BatchCounts(b)
	if err != nil {
		return nil, err
	}
	out := make([]byte, BatchHeaderSize, len(b)/2+BatchHeaderSize)
	copy(out, b[:BatchHeaderSize])
	recs := b[BatchHeaderSize:]
	var prev [16]uint64
	for i := 0; i < na+nt; i++ {
		r := recs[i*RecordSize : (i+1)*RecordSize]
		var words [16]uint64
		var mask uint16
		for w := range words {
			v := le.Uint64(r[w*8:])
			words[w], prev[w] = v^prev[w], v
			if words[w] != 0 {
				mask |= 1 << w
			}
		}
		out = le.AppendUint16(out, mask)
		for w := range words {
			if words[w] != 0 {
				out = le.AppendUint64(out, words[w])
			}
		}
	}
	return out, nil
}

// unpack calls fn with each record of a packed batch, restored in rec,
// and the batch's counts first. It never panics, and lets fn allocate at
// most for as many records as the input could hold: one takes at least its
// 2-byte mask.
func unpack(p []byte, counts func(accounts, transfers int), fn func(i int, rec []byte) error) error {
	if len(p) < BatchHeaderSize {
		return &FormatError{Field: "header", Reason: "a packed batch starts with the 8-byte header"}
	}
	na, nt := uint64(le.Uint32(p[0:4])), uint64(le.Uint32(p[4:8]))
	if na+nt > uint64(len(p)-BatchHeaderSize)/2 {
		return &FormatError{Field: "header", Reason: fmt.Sprintf("the header counts %d records, more than %d bytes can pack", na+nt, len(p)-BatchHeaderSize)}
	}
	counts(int(na), int(nt))
	in := p[BatchHeaderSize:]
	var prev [16]uint64
	var rec [RecordSize]byte
	for i := range int(na + nt) {
		if len(in) < 2 {
			return &FormatError{Field: "records", Reason: fmt.Sprintf("packed record %d is cut short", i)}
		}
		mask := le.Uint16(in)
		in = in[2:]
		if size := bits.OnesCount16(mask) * 8; len(in) < size {
			return &FormatError{Field: "records", Reason: fmt.Sprintf("packed record %d is cut short", i)}
		}
		for w := range prev {
			if mask&(1<<w) != 0 {
				prev[w] ^= le.Uint64(in)
				in = in[8:]
			}
			le.PutUint64(rec[w*8:], prev[w])
		}
		if err := fn(i, rec[:]); err != nil {
			return err
		}
	}
	if len(in) != 0 {
		return &FormatError{Field: "records", Reason: fmt.Sprintf("%d bytes after the last packed record", len(in))}
	}
	return nil
}

// UnpackBatch restores a packed batch's bytes. It never panics.
func UnpackBatch(p []byte) ([]byte, error) {
	var out []byte
	err := unpack(p, func(na, nt int) {
		out = make([]byte, BatchHeaderSize, BatchHeaderSize+(na+nt)*RecordSize)
		copy(out, p[:BatchHeaderSize])
	}, func(_ int, rec []byte) error {
		out = append(out, rec...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DecodePackedBatch decodes a packed batch, as DecodeBatch decodes the
// batch UnpackBatch restores, without restoring it first. It never panics.
func DecodePackedBatch(p []byte) ([]Account, []Transfer, error) {
	var as []Account
	var ts []Transfer
	err := unpack(p, func(na, nt int) {
		if na > 0 {
			as = make([]Account, na)
		}
		if nt > 0 {
			ts = make([]Transfer, nt)
		}
	}, func(i int, rec []byte) error {
		if i < len(as) {
			if field, reason := decodeAccount(rec, &as[i]); field != "" {
				return formatErr("accounts", i, field, reason)
			}
			return nil
		}
		if field, reason := decodeTransfer(rec, &ts[i-len(as)]); field != "" {
			return formatErr("transfers", i-len(as), field, reason)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return as, ts, nil
}
