package ledger

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

func genID(t *rapid.T, label string) ID {
	var id ID
	if rapid.IntRange(0, 4).Draw(t, label+"zero") == 0 {
		return id
	}
	copy(id[:], rapid.SliceOfN(rapid.Byte(), 16, 16).Draw(t, label))
	return id
}

func genCurrency(t *rapid.T) string {
	return rapid.SampledFrom([]string{"", "KRW", "USD", "XAU", "ZZZ"}).Draw(t, "currency")
}

func genUserData(t *rapid.T) string {
	// Valid UTF-8 without a zero byte, up to 28 bytes.
	s := rapid.StringMatching(`[a-zA-Z0-9 é€/-]{0,9}`).Draw(t, "user_data")
	for len(s) > UserDataSize {
		s = s[:len(s)-1]
	}
	return strings.ToValidUTF8(s, "")
}

func genTransfer(t *rapid.T) Transfer {
	return Transfer{
		ID: genID(t, "id"), DebitAccountID: genID(t, "dr"), CreditAccountID: genID(t, "cr"),
		Amount: rapid.Uint64().Draw(t, "amount"), PendingID: genID(t, "pending"),
		Timeout: rapid.Uint32().Draw(t, "timeout"), Currency: genCurrency(t), Code: rapid.Uint16().Draw(t, "code"),
		Flags: TransferFlags(rapid.Uint16().Draw(t, "flags")), UserData: genUserData(t), Timestamp: rapid.Int64().Draw(t, "ts"),
	}
}

func genAccount(t *rapid.T) Account {
	return Account{
		ID: genID(t, "id"), Currency: genCurrency(t), Code: rapid.Uint16().Draw(t, "code"),
		Flags: AccountFlags(rapid.Uint16().Draw(t, "flags")), UserData: genUserData(t),
		DebitsPending: rapid.Uint64().Draw(t, "dp"), DebitsPosted: rapid.Uint64().Draw(t, "dP"),
		CreditsPending: rapid.Uint64().Draw(t, "cp"), CreditsPosted: rapid.Uint64().Draw(t, "cP"),
		Timestamp: rapid.Int64().Draw(t, "ts"),
	}
}

func TestCodecRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		as := rapid.SliceOfN(rapid.Custom(genAccount), 0, 5).Draw(t, "accounts")
		ts := rapid.SliceOfN(rapid.Custom(genTransfer), 0, 5).Draw(t, "transfers")
		b, err := EncodeBatch(as, ts)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) != BatchHeaderSize+RecordSize*(len(as)+len(ts)) {
			t.Fatalf("batch of %d+%d is %d bytes", len(as), len(ts), len(b))
		}
		gotA, gotT, err := DecodeBatch(b)
		if err != nil {
			t.Fatal(err)
		}
		if len(gotA) != len(as) || len(gotT) != len(ts) || (len(as) > 0 && !reflect.DeepEqual(gotA, as)) || (len(ts) > 0 && !reflect.DeepEqual(gotT, ts)) {
			t.Fatalf("round trip:\n%+v\n%+v\n->\n%+v\n%+v", as, ts, gotA, gotT)
		}
		if na, nt, err := CheckBatch(b); err != nil || na != len(as) || nt != len(ts) {
			t.Fatalf("check: %d %d %v", na, nt, err)
		}
		// The log's packed form gives the same bytes back.
		p, err := PackBatch(b)
		if err != nil {
			t.Fatal(err)
		}
		if u, err := UnpackBatch(p); err != nil || !bytes.Equal(u, b) {
			t.Fatalf("unpack: %v", err)
		}
		pa, pt, err := DecodePackedBatch(p)
		if err != nil || !reflect.DeepEqual(pa, gotA) || !reflect.DeepEqual(pt, gotT) {
			t.Fatalf("decode packed: %v", err)
		}
		// The record functions agree with the batch ones.
		if len(ts) > 0 {
			enc, err := EncodeTransfers(ts)
			if err != nil || !bytes.Equal(enc, b[BatchHeaderSize+len(as)*RecordSize:]) {
				t.Fatalf("EncodeTransfers: %v", err)
			}
			dec, err := DecodeTransfers(enc)
			if err != nil || !reflect.DeepEqual(dec, ts) {
				t.Fatalf("DecodeTransfers: %v", err)
			}
			one, err := DecodeTransfer(enc[:RecordSize])
			if err != nil || one != ts[0] {
				t.Fatalf("DecodeTransfer: %+v %v", one, err)
			}
		}
		if len(as) > 0 {
			enc, err := EncodeAccounts(as)
			if err != nil || !bytes.Equal(enc, b[BatchHeaderSize:BatchHeaderSize+len(as)*RecordSize]) {
				t.Fatalf("EncodeAccounts: %v", err)
			}
			dec, err := DecodeAccounts(enc)
			if err != nil || !reflect.DeepEqual(dec, as) {
				t.Fatalf("DecodeAccounts: %v", err)
			}
		}
	})
}

// TestCodecLayout pins the wire layout: the offsets are a public contract.
func TestCodecLayout(t *testing.T) {
	tr := Transfer{ID: ID{0: 1, 15: 2}, DebitAccountID: ID{0: 3}, CreditAccountID: ID{0: 4}, Amount: 0x0102,
		PendingID: ID{0: 5}, UserData: "hi", Timeout: 7, Currency: "KRW", Code: 9, Flags: Pending | Linked, Timestamp: 11}
	r, err := AppendTransfer(nil, &tr)
	if err != nil || len(r) != RecordSize {
		t.Fatal(len(r), err)
	}
	want := map[int]byte{0: 1, 15: 2, 16: 3, 32: 4, 48: 2, 49: 1, 64: 5, 80: 'h', 81: 'i', 108: 7, 112: 'K', 113: 'R', 114: 'W', 116: 9, 118: 3, 120: 11}
	for i, c := range r {
		if c != want[i] {
			t.Errorf("transfer byte %d = %d, want %d", i, c, want[i])
		}
	}
	a := Account{ID: ID{0: 1}, DebitsPending: 2, DebitsPosted: 3, CreditsPending: 4, CreditsPosted: 5, UserData: "u",
		Currency: "USD", Code: 6, Flags: DebitsMustNotExceedCredits, Timestamp: 8}
	r, err = AppendAccount(nil, &a)
	if err != nil {
		t.Fatal(err)
	}
	want = map[int]byte{0: 1, 16: 2, 32: 3, 48: 4, 64: 5, 80: 'u', 112: 'U', 113: 'S', 114: 'D', 116: 6, 118: 2, 120: 8}
	for i, c := range r {
		if c != want[i] {
			t.Errorf("account byte %d = %d, want %d", i, c, want[i])
		}
	}
	b, _ := EncodeBatch([]Account{a}, []Transfer{tr, tr})
	if !bytes.Equal(b[:8], []byte{1, 0, 0, 0, 2, 0, 0, 0}) {
		t.Fatalf("header % x", b[:8])
	}
}

func TestCodecRefuses(t *testing.T) {
	tr := Transfer{ID: idN(1), DebitAccountID: idN(2), CreditAccountID: idN(3), Amount: 5, Currency: "KRW"}
	good, _ := EncodeBatch(nil, []Transfer{tr})
	set := func(off int, v ...byte) []byte {
		b := bytes.Clone(good)
		copy(b[BatchHeaderSize+off:], v)
		return b
	}
	for _, c := range []struct {
		name  string
		body  []byte
		field string
	}{
		{"empty", nil, "header"},
		{"short header", []byte{1, 0, 0}, "header"},
		{"count beyond the body", append([]byte{0, 0, 0, 0, 2, 0, 0, 0}, good[8:]...), "header"},
		{"trailing bytes", append(bytes.Clone(good), 0), "header"},
		{"huge counts", []byte{255, 255, 255, 255, 255, 255, 255, 255}, "header"},
		{"amount of 2^64", set(56, 1), "transfers[0].amount"},
		{"lower-case currency", set(112, 'k', 'r', 'w'), "transfers[0].currency"},
		{"4-letter currency", set(112, 'K', 'R', 'W', 'X'), "transfers[0].currency"},
		{"currency with a digit", set(112, 'K', '1', 'W'), "transfers[0].currency"},
		{"user data after its end", set(80, 'a', 0, 'b'), "transfers[0].user_data"},
		{"user data not UTF-8", set(80, 0xff), "transfers[0].user_data"},
	} {
		_, _, err := DecodeBatch(c.body)
		var fe *FormatError
		if !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("%s: got %v, want an error on %s", c.name, err, c.field)
		}
		if _, _, err2 := CheckBatch(c.body); (err2 == nil) != (err == nil) {
			t.Errorf("%s: CheckBatch says %v, DecodeBatch %v", c.name, err2, err)
		}
	}
	acc, _ := EncodeBatch([]Account{{ID: idN(1), Currency: "KRW"}}, nil)
	acc[BatchHeaderSize+108] = 1
	if _, _, err := DecodeBatch(acc); err == nil || !strings.Contains(err.Error(), "accounts[0].reserved") {
		t.Errorf("reserved bytes: %v", err)
	}
	for _, bad := range []Transfer{{Currency: "krw"}, {Currency: "KRWX"}, {UserData: strings.Repeat("x", 29)}, {UserData: "a\x00b"}} {
		if _, err := EncodeTransfers([]Transfer{tr, bad}); err == nil || !strings.HasPrefix(err.Error(), "transfers[1].") {
			t.Errorf("encoded %+v: %v", bad, err)
		}
	}
	if _, err := UnpackBatch([]byte{0, 0, 0, 0, 1, 0, 0, 0, 0xff, 0xff}); err == nil {
		t.Error("unpacked a record cut short")
	}
}

// FuzzDecodeTransfers feeds arbitrary bytes to every decoder: none may
// panic, and whatever decodes must encode back to the same bytes.
func FuzzDecodeTransfers(f *testing.F) {
	tr := Transfer{ID: idN(1), DebitAccountID: idN(2), CreditAccountID: idN(3), Amount: 5, Currency: "KRW", UserData: "order 17"}
	rec, _ := EncodeTransfers([]Transfer{tr, {ID: idN(4), PendingID: idN(1), Flags: PostPending}})
	f.Add(rec)
	b, _ := EncodeBatch([]Account{{ID: idN(2), Currency: "KRW"}}, []Transfer{tr})
	f.Add(b)
	p, _ := PackBatch(b)
	f.Add(p)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		if ts, err := DecodeTransfers(in); err == nil {
			out, err := EncodeTransfers(ts)
			if err != nil || !bytes.Equal(out, in) {
				t.Fatalf("transfers do not round-trip: %v", err)
			}
		}
		if as, err := DecodeAccounts(in); err == nil {
			out, err := EncodeAccounts(as)
			if err != nil || !bytes.Equal(out, in) {
				t.Fatalf("accounts do not round-trip: %v", err)
			}
		}
		if len(in) >= RecordSize {
			_, _ = DecodeTransfer(in[:RecordSize])
			_, _ = DecodeAccount(in[:RecordSize])
		}
		as, ts, err := DecodeBatch(in)
		if _, _, cerr := CheckBatch(in); (cerr == nil) != (err == nil) {
			t.Fatalf("CheckBatch %v, DecodeBatch %v", cerr, err)
		}
		if err == nil {
			out, err := EncodeBatch(as, ts)
			if err != nil || !bytes.Equal(out, in) {
				t.Fatalf("batch does not round-trip: %v", err)
			}
			p, err := PackBatch(in)
			if err != nil {
				t.Fatal(err)
			}
			if u, err := UnpackBatch(p); err != nil || !bytes.Equal(u, in) {
				t.Fatalf("pack does not round-trip: %v", err)
			}
		}
		u, uerr := UnpackBatch(in)
		if uerr == nil && len(u) > BatchHeaderSize+64*len(in) {
			t.Fatalf("unpacked %d bytes from %d", len(u), len(in))
		}
		pa, pt, perr := DecodePackedBatch(in)
		if uerr == nil {
			ua, ut, derr := DecodeBatch(u)
			if (derr == nil) != (perr == nil) || !reflect.DeepEqual(ua, pa) || !reflect.DeepEqual(ut, pt) {
				t.Fatalf("DecodePackedBatch %v, DecodeBatch of UnpackBatch %v", perr, derr)
			}
		} else if perr == nil {
			t.Fatalf("DecodePackedBatch took what UnpackBatch refused: %v", uerr)
		}
	})
}

// BenchmarkDecodeBatch measures decoding a full batch of transfers.
func BenchmarkDecodeBatch(b *testing.B) {
	ts := make([]Transfer, MaxBatch)
	for i := range ts {
		ts[i] = Transfer{ID: idN(i + 1), DebitAccountID: IDFrom("a"), CreditAccountID: IDFrom("b"), Amount: 1, Currency: "KRW"}
	}
	body, _ := EncodeBatch(nil, ts)
	p, _ := PackBatch(body)
	for b.Loop() {
		if _, _, err := DecodePackedBatch(p); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(p))/MaxBatch, "packed-bytes/transfer")
}
