package pay

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"strconv"
	"testing"
	"time"

	"superapp/internal/cmdlog"
	"superapp/internal/ledger"
)

// batchEntry is a LEDGER stream entry holding one batch command, with its
// data as submitBatch writes it: packed binary ([]byte) or a Batch.
func batchEntry(tb testing.TB, id string, at time.Time, data any) []byte {
	tb.Helper()
	raw, err := json.Marshal(data)
	if err != nil {
		tb.Fatal(err)
	}
	b, err := json.Marshal(&cmdlog.Envelope{ID: id, Kind: kindBatch, At: at, Data: raw})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func packed(tb testing.TB, b Batch) []byte {
	tb.Helper()
	body, err := ledger.EncodeBatch(b.Accounts, b.Transfers)
	if err != nil {
		tb.Fatal(err)
	}
	p, err := ledger.PackBatch(body)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

func newMachine(t testing.TB, st *State) *cmdlog.Machine {
	m := cmdlog.NewMachine(Stream, st.space, st.Apply, slog.New(slog.NewTextHandler(io.Discard, nil)))
	m.SetLoader(st.load)
	if err := m.Restore(); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestBatchCommandForms applies the same batches as binary commands on two
// nodes and as JSON commands (the form logged before the binary one) on a
// third: the same result codes, the same state digest everywhere.
func TestBatchCommandForms(t *testing.T) {
	id := func(s string) ledger.ID { return ledger.IDFrom(s) }
	batches := []Batch{
		{Accounts: []ledger.Account{{ID: id("bank"), Currency: "KRW"}, {ID: id("w"), Currency: "KRW", Flags: ledger.DebitsMustNotExceedCredits}}},
		{Transfers: []ledger.Transfer{
			{ID: id("t1"), DebitAccountID: id("bank"), CreditAccountID: id("w"), Amount: 100, Currency: "KRW"},
			{ID: id("t2"), DebitAccountID: id("w"), CreditAccountID: id("bank"), Amount: 60, Currency: "KRW", Flags: ledger.Pending, Timeout: 30},
			{ID: id("t3"), DebitAccountID: id("w"), CreditAccountID: id("bank"), Amount: 30, Currency: "KRW", Flags: ledger.Linked},
			{ID: id("t4"), DebitAccountID: id("w"), CreditAccountID: id("bank"), Amount: 20, Currency: "KRW"},
			{ID: id("t5"), PendingID: id("t2"), Amount: 50, Flags: ledger.PostPending},
		}},
		{Transfers: []ledger.Transfer{ // a retry of the batch's ids
			{ID: id("t1"), DebitAccountID: id("bank"), CreditAccountID: id("w"), Amount: 100, Currency: "KRW"},
			{ID: id("t5"), PendingID: id("t2"), Amount: 50, Flags: ledger.PostPending},
			{ID: id("t1"), DebitAccountID: id("bank"), CreditAccountID: id("w"), Amount: 99, Currency: "KRW"},
		}},
	}
	want := [][]string{{"ok", "ok"}, {"ok", "ok", "linked_event_failed", "exceeds_credits", "ok"}, {"exists", "exists", "exists_with_different_fields"}}
	nodes := []*State{newTestState(t), newTestState(t), newTestState(t)}
	machines := []*cmdlog.Machine{newMachine(t, nodes[0]), newMachine(t, nodes[1]), newMachine(t, nodes[2])}
	at := time.Unix(1_800_000_000, 0)
	for i, b := range batches {
		bin := batchEntry(t, "b"+strconv.Itoa(i), at, packed(t, b))
		js := batchEntry(t, "b"+strconv.Itoa(i), at, b)
		for n, m := range machines {
			entry := bin
			if n == 2 {
				entry = js
			}
			m.Apply(uint64(i+1), entry, 0)
			o, _ := m.Outcome("b" + strconv.Itoa(i))
			var r BatchResult
			if o.Err != nil || json.Unmarshal(o.Value, &r) != nil {
				t.Fatalf("node %d batch %d: %+v", n, i, o)
			}
			got := r.Transfers
			if len(b.Accounts) > 0 {
				got = r.Accounts
			}
			if !reflect.DeepEqual(got, want[i]) {
				t.Fatalf("node %d batch %d: %v, want %v", n, i, got, want[i])
			}
		}
	}
	for n, st := range nodes {
		if err := st.Check(); err != nil {
			t.Fatalf("node %d: %v", n, err)
		}
		if st.Digest() != nodes[0].Digest() {
			t.Fatalf("node %d's state differs", n)
		}
	}
	_, d0 := machines[0].Digest()
	if _, d1 := machines[1].Digest(); d1 != d0 {
		t.Fatal("two nodes applying the same entries differ")
	}
	// A damaged binary command is refused the same way on every node and
	// changes nothing.
	before := nodes[0].Digest()
	for _, data := range []string{`"AAAA"`, `"not base64!"`, `"` + "AQAAAA" + `"`} {
		machines[0].Apply(machines[0].Applied()+1, []byte(fmt.Sprintf(`{"id":"bad","kind":%q,"at":"2027-01-15T08:00:00Z","data":%s}`, kindBatch, data)), 0)
		if o, _ := machines[0].Outcome("bad"); o.Err == nil || o.Err.Code != "malformed_json" {
			t.Fatalf("damaged command %s: %+v", data, o)
		}
	}
	if nodes[0].Digest() != before {
		t.Fatal("a damaged command changed the state")
	}
}

// BenchmarkApplyBatch measures what every node does per entry of a full
// batch of transfers: decode the envelope and the command, apply it,
// record the outcome. It compares the binary command with the JSON one.
func BenchmarkApplyBatch(b *testing.B) {
	for _, form := range []string{"binary", "json"} {
		b.Run(form, func(b *testing.B) {
			st := newTestState(b)
			accs := make([]ledger.Account, 10_000)
			for i := range accs {
				accs[i] = ledger.Account{ID: ledger.IDFrom("a" + strconv.Itoa(i)), Currency: "KRW"}
			}
			inEntry(st, func() {
				st.l.CreateAccounts(1, accs[:ledger.MaxBatch])
				st.l.CreateAccounts(1, accs[ledger.MaxBatch:])
			})
			m := newMachine(b, st)
			// Enough distinct batches that the timed ones are all new.
			entries := make([][]byte, 64)
			seq := 0
			for e := range entries {
				ts := make([]ledger.Transfer, ledger.MaxBatch)
				for i := range ts {
					seq++
					var id ledger.ID
					id[0] = 0xbe
					for k := 0; k < 8; k++ {
						id[15-k] = byte(seq >> (8 * k))
					}
					dr := (seq * 7919) % len(accs)
					ts[i] = ledger.Transfer{ID: id, DebitAccountID: accs[dr].ID, CreditAccountID: accs[(dr+1+seq%97)%len(accs)].ID, Amount: 1, Currency: "KRW"}
				}
				var data any = Batch{Transfers: ts}
				if form == "binary" {
					data = packed(b, Batch{Transfers: ts})
				}
				entries[e] = batchEntry(b, "e"+strconv.Itoa(e), time.Unix(2, 0), data)
			}
			n := 0
			for b.Loop() {
				if n == len(entries) {
					b.StopTimer()
					st, n = newTestState(b), 0
					inEntry(st, func() {
						st.l.CreateAccounts(1, accs[:ledger.MaxBatch])
						st.l.CreateAccounts(1, accs[ledger.MaxBatch:])
					})
					m = newMachine(b, st)
					b.StartTimer()
				}
				m.Apply(uint64(n+1), entries[n], 0)
				n++
			}
			b.ReportMetric(float64(b.N*ledger.MaxBatch)/b.Elapsed().Seconds(), "transfers/s")
			b.ReportMetric(float64(len(entries[0])), "entry-bytes")
		})
	}
}
