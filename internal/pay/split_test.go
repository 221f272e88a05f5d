package pay

import (
	"encoding/json"
	"testing"
	"time"

	"superapp/internal/apperr"
	"superapp/internal/cmdlog"
	"superapp/internal/ledger"
)

func applyCmd(t *testing.T, st *State, kind, actor string, at time.Time, data any) (any, *apperr.Error) {
	t.Helper()
	raw, err := json.Marshal(data)
	if err != nil {
		t.Fatal(err)
	}
	return applyEntry(st, &cmdlog.Envelope{ID: cmdlog.NewID(), Kind: kind, Actor: actor, At: at, Data: raw})
}

func walletOf(st *State, user string) (avail, pending uint64) {
	for _, b := range st.Balances(user) {
		if b.Currency == "KRW" {
			return b.Available, b.Pending
		}
	}
	return 0, 0
}

// TestSplit captures a hold and pays a merchant, a courier and the
// platform in one step: to the won, once, and all or nothing.
func TestSplit(t *testing.T) {
	st := newTestState(t)
	at := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	must := func(v any, err *apperr.Error) any {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	must(applyCmd(t, st, kindTopUp, "kim", at, moneyCmd{ID: TransferID("kim", "t1"), To: "kim", Amount: 50_000, Currency: "KRW"}))
	must(applyCmd(t, st, kindMerchant, "shop", at, Merchant{Name: "Shop"}))
	hold := TransferID("kim", "hold/o1")
	must(applyCmd(t, st, kindHold, "kim", at, moneyCmd{ID: hold, From: "kim", To: "escrow", Amount: 23_000, Currency: "KRW", Timeout: 3600}))
	payouts := []Payout{{Kind: PayoutMerchant, User: "shop", Amount: 19_000}, {Kind: PayoutWallet, User: "courier", Amount: 3_000}, {Kind: PayoutPlatform, Amount: 1_000}}

	// Only the payee splits; bad payouts name their field; too much is refused whole.
	if _, err := applyCmd(t, st, kindSplit, "kim", at, splitCmd{HoldID: hold, Payouts: payouts}); err == nil || err.Code != apperr.NotFound {
		t.Fatalf("payer split: %v", err)
	}
	over := append([]Payout{}, payouts...)
	over[2].Amount = 1_001
	if _, err := applyCmd(t, st, kindSplit, "escrow", at, splitCmd{HoldID: hold, Payouts: over}); err == nil || err.Field != "payouts" {
		t.Fatalf("over split: %v", err)
	}
	if _, err := applyCmd(t, st, kindSplit, "escrow", at, splitCmd{HoldID: hold, Payouts: []Payout{{Kind: PayoutMerchant, User: "nobody", Amount: 1}}}); err == nil || err.Code != NotMerchant {
		t.Fatalf("unknown merchant: %v", err)
	}
	if av, pe := walletOf(st, "kim"); av != 27_000 || pe != 23_000 {
		t.Fatalf("after refusals: %d %d", av, pe)
	}

	v := must(applyCmd(t, st, kindSplit, "escrow", at, splitCmd{HoldID: hold, Payouts: payouts})).(Split)
	if v.Captured != 23_000 || v.SaleID != SplitTransferID(hold, 1) {
		t.Fatalf("split: %+v", v)
	}
	// Again (another node's settler, a retry): nothing moves twice.
	must(applyCmd(t, st, kindSplit, "escrow", at, splitCmd{HoldID: hold, Payouts: payouts}))
	if _, err := applyCmd(t, st, kindRelease, "escrow", at, moneyCmd{ID: TransferID("escrow", "rel"), HoldID: hold}); err == nil {
		t.Fatal("released a captured hold")
	}
	if av, pe := walletOf(st, "kim"); av != 27_000 || pe != 0 {
		t.Fatalf("payer: %d %d", av, pe)
	}
	if av, _ := walletOf(st, "courier"); av != 3_000 {
		t.Fatalf("courier: %d", av)
	}
	if b, _ := st.AccountBalance(MerchantAccountID("shop", "KRW")); b != 19_000 {
		t.Fatalf("merchant: %d", b)
	}
	if b, _ := st.AccountBalance(PlatformAccountID("KRW")); b != 1_000 {
		t.Fatalf("platform: %d", b)
	}
	if b, _ := st.AccountBalance(WalletID("escrow", "KRW")); b != 0 {
		t.Fatalf("escrow keeps %d", b)
	}
	if h, _ := st.HoldOf(hold, "kim"); h.Status != "captured" || h.Captured != 23_000 {
		t.Fatalf("hold: %+v", h)
	}
	// The merchant's part is a sale it can refund.
	must(applyCmd(t, st, kindRefund, "shop", at, saleCmd{ID: TransferID("shop", "refund/r1"), Payment: v.SaleID, Amount: 5_000}))
	if av, _ := walletOf(st, "kim"); av != 32_000 {
		t.Fatalf("after refund: %d", av)
	}
	if err := st.Check(); err != nil {
		t.Fatal(err)
	}
}

// TestSplitPartialCapture pays out less than the hold: the rest goes back.
func TestSplitPartialCapture(t *testing.T) {
	st := newTestState(t)
	at := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	if _, err := applyCmd(t, st, kindTopUp, "kim", at, moneyCmd{ID: TransferID("kim", "t1"), To: "kim", Amount: 10_000, Currency: "KRW"}); err != nil {
		t.Fatal(err)
	}
	hold := TransferID("kim", "hold/o2")
	if _, err := applyCmd(t, st, kindHold, "kim", at, moneyCmd{ID: hold, From: "kim", To: "escrow", Amount: 8_000, Currency: "KRW"}); err != nil {
		t.Fatal(err)
	}
	if _, err := applyCmd(t, st, kindSplit, "escrow", at, splitCmd{HoldID: hold, Payouts: []Payout{{Kind: PayoutWallet, User: "lee", Amount: 5_000}}}); err != nil {
		t.Fatal(err)
	}
	if av, pe := walletOf(st, "kim"); av != 5_000 || pe != 0 {
		t.Fatalf("payer: %d %d", av, pe)
	}
	if _, ok := st.l.Transfer(st.space, SplitTransferID(hold, 1)); !ok {
		t.Fatal("payout missing")
	}
	var zero ledger.ID
	if _, err := applyCmd(t, st, kindSplit, "escrow", at, splitCmd{HoldID: zero}); err == nil {
		t.Fatal("split of no hold")
	}
	if err := st.Check(); err != nil {
		t.Fatal(err)
	}
}

// TestSplitAllOrNothing: a payout the ledger refuses at the end of the
// chain undoes the capture and every payout before it.
func TestSplitAllOrNothing(t *testing.T) {
	st := newTestState(t)
	at := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	if _, err := applyCmd(t, st, kindTopUp, "kim", at, moneyCmd{ID: TransferID("kim", "t1"), To: "kim", Amount: 10_000, Currency: "KRW"}); err != nil {
		t.Fatal(err)
	}
	hold := TransferID("kim", "hold/o3")
	if _, err := applyCmd(t, st, kindHold, "kim", at, moneyCmd{ID: hold, From: "kim", To: "escrow", Amount: 8_000, Currency: "KRW"}); err != nil {
		t.Fatal(err)
	}
	// A platform account that takes no credits: the last payout fails.
	inEntry(st, func() {
		st.l.CreateAccounts(at.UnixNano(), []ledger.Account{{ID: PlatformAccountID("KRW"), Currency: "KRW", Code: CodePlatform, Flags: ledger.CreditsMustNotExceedDebits}})
	})
	payouts := []Payout{{Kind: PayoutWallet, User: "lee", Amount: 5_000}, {Kind: PayoutPlatform, Amount: 1_000}}
	if _, err := applyCmd(t, st, kindSplit, "escrow", at, splitCmd{HoldID: hold, Payouts: payouts}); err == nil || err.Code != ledger.ExceedsDebits {
		t.Fatalf("split: %v", err)
	}
	if av, pe := walletOf(st, "kim"); av != 2_000 || pe != 8_000 {
		t.Fatalf("payer: %d %d", av, pe)
	}
	if av, _ := walletOf(st, "lee"); av != 0 {
		t.Fatalf("payee got %d from a refused split", av)
	}
	if h, _ := st.HoldOf(hold, "kim"); h.Status != "pending" {
		t.Fatalf("hold: %+v", h)
	}
	// Released instead: the money is back, and the hold is spent.
	if _, err := applyCmd(t, st, kindRelease, "escrow", at, moneyCmd{ID: TransferID("escrow", "rel"), HoldID: hold}); err != nil {
		t.Fatal(err)
	}
	if _, err := applyCmd(t, st, kindSplit, "escrow", at, splitCmd{HoldID: hold, Payouts: payouts[:1]}); err == nil {
		t.Fatal("split a released hold")
	}
	if av, pe := walletOf(st, "kim"); av != 10_000 || pe != 0 {
		t.Fatalf("payer after release: %d %d", av, pe)
	}
	if err := st.Check(); err != nil {
		t.Fatal(err)
	}
}
