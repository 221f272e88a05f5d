package ledger

import (
	"slices"
	"testing"

	"superapp/internal/store/storetest"
)

const sec = int64(1e9)

func TestTwoPhaseAndChains(t *testing.T) {
	l := newTestLedger(storetest.Open(t))
	bank, alice, shop := idN(1), idN(2), idN(3)
	if r := l.CreateAccounts(sec, []Account{
		{ID: bank, Currency: "KRW"},
		{ID: alice, Currency: "KRW", Flags: DebitsMustNotExceedCredits},
		{ID: shop, Currency: "KRW", Flags: DebitsMustNotExceedCredits},
	}); !slices.Equal(r, []string{OK, OK, OK}) {
		t.Fatalf("accounts: %v", r)
	}
	r := l.CreateTransfers(2*sec, []Transfer{
		{ID: idN(10), DebitAccountID: bank, CreditAccountID: alice, Amount: 10_000, Currency: "KRW"},                             // top-up
		{ID: idN(11), DebitAccountID: alice, CreditAccountID: shop, Amount: 7_000, Currency: "KRW", Flags: Pending, Timeout: 60}, // hold
		{ID: idN(12), DebitAccountID: alice, CreditAccountID: shop, Amount: 4_000, Currency: "KRW"},                              // too much now
		{ID: idN(10), DebitAccountID: bank, CreditAccountID: alice, Amount: 10_000, Currency: "KRW"},                             // retry
		{ID: idN(10), DebitAccountID: bank, CreditAccountID: alice, Amount: 1, Currency: "KRW"},                                  // same id, other transfer
	})
	if !slices.Equal(r, []string{OK, OK, ExceedsCredits, Exists, ExistsWithDifferentFields}) {
		t.Fatalf("transfers: %v", r)
	}
	// Capture part of the hold: the rest goes back to alice.
	if r := l.CreateTransfers(3*sec, []Transfer{{ID: idN(13), PendingID: idN(11), Amount: 5_000, Flags: PostPending}}); r[0] != OK {
		t.Fatalf("post: %v", r)
	}
	a, _ := l.Account(alice)
	if a.DebitsPosted != 5_000 || a.DebitsPending != 0 || a.CreditsPosted != 10_000 {
		t.Fatalf("alice after partial capture: %+v", a)
	}
	// The same post again, as the client first sent it: exists.
	if r := l.CreateTransfers(3*sec, []Transfer{{ID: idN(13), PendingID: idN(11), Amount: 5_000, Flags: PostPending}}); r[0] != Exists {
		t.Fatalf("retried post: %v", r)
	}
	if r := l.CreateTransfers(4*sec, []Transfer{{ID: idN(14), PendingID: idN(11), Flags: VoidPending}}); r[0] != PendingTransferAlreadyPosted {
		t.Fatalf("void after post: %v", r)
	}
	// A hold that times out releases itself.
	l.CreateTransfers(5*sec, []Transfer{{ID: idN(15), DebitAccountID: alice, CreditAccountID: shop, Amount: 1_000, Currency: "KRW", Flags: Pending, Timeout: 2}})
	if r := l.CreateTransfers(8*sec, []Transfer{{ID: idN(16), PendingID: idN(15), Flags: PostPending}}); r[0] != PendingTransferExpired {
		t.Fatalf("post after expiry: %v", r)
	}
	if a, _ := l.Account(alice); a.DebitsPending != 0 {
		t.Fatalf("expired hold still pending: %+v", a)
	}
	// A linked chain fails as a whole and leaves no trace.
	r = l.CreateTransfers(9*sec, []Transfer{
		{ID: idN(17), DebitAccountID: alice, CreditAccountID: shop, Amount: 1_000, Currency: "KRW", Flags: Linked},
		{ID: idN(18), DebitAccountID: alice, CreditAccountID: shop, Amount: 9_000, Currency: "KRW"},
	})
	if !slices.Equal(r, []string{LinkedEventFailed, ExceedsCredits}) {
		t.Fatalf("chain: %v", r)
	}
	if _, ok := l.Transfer(idN(17)); ok {
		t.Fatal("failed chain left a transfer")
	}
	if a, _ := l.Account(alice); a.DebitsPosted != 5_000 {
		t.Fatalf("failed chain moved money: %+v", a)
	}
	if err := l.Check(); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkCreateTransfers measures applying full batches, each in a store
// batch of its own that is committed: the ledger's own ceiling, before any
// network, log or command decoding.
func BenchmarkCreateTransfers(b *testing.B) {
	l := newTestLedger(storetest.Open(b))
	const accounts = 10_000
	accs := make([]Account, accounts)
	for i := range accs {
		accs[i] = Account{ID: IDFrom(string(rune(i)) + "acct"), Currency: "KRW"}
	}
	l.CreateAccounts(1, accs)
	batch := make([]Transfer, MaxBatch)
	n := 0
	b.ResetTimer()
	for b.Loop() {
		for i := range batch {
			n++
			var id ID
			id[0], id[1], id[2], id[3] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
			batch[i] = Transfer{ID: id, DebitAccountID: accs[n%accounts].ID, CreditAccountID: accs[(n*7+1)%accounts].ID, Amount: 1, Currency: "KRW"}
		}
		l.CreateTransfers(int64(n), batch)
	}
	b.ReportMetric(float64(b.N*MaxBatch)/b.Elapsed().Seconds(), "transfers/s")
}
