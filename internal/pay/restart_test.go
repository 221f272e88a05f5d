package pay

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"superapp/internal/cmdlog"
	"superapp/internal/ledger"
	"superapp/internal/store"
	"superapp/internal/store/storetest"
)

// stream builds LEDGER entries as the submitters write them.
type stream struct {
	tb      testing.TB
	at      time.Time
	entries [][]byte
	n       int
}

type cmd struct {
	kind, actor string
	data        any
}

// add appends an entry of one command, or of several (a group commit).
func (s *stream) add(cmds ...cmd) {
	s.tb.Helper()
	envs := make([]cmdlog.Envelope, len(cmds))
	for i, c := range cmds {
		raw, err := json.Marshal(c.data)
		if err != nil {
			s.tb.Fatal(err)
		}
		s.n++
		envs[i] = cmdlog.Envelope{ID: "c" + strconv.Itoa(s.n), Kind: c.kind, Actor: c.actor, At: s.at, Data: raw}
	}
	var b []byte
	var err error
	if len(envs) == 1 {
		b, err = json.Marshal(&envs[0])
	} else {
		b, err = json.Marshal(envs)
	}
	if err != nil {
		s.tb.Fatal(err)
	}
	s.entries = append(s.entries, b)
}

// node is a State and its Machine on a store.
type node struct {
	st *State
	m  *cmdlog.Machine
}

func startNode(tb testing.TB, db *store.DB) node {
	tb.Helper()
	st := NewState(db.Space(Stream))
	m := cmdlog.NewMachine(Stream, st.space, st.Apply, slog.New(slog.NewTextHandler(io.Discard, nil)))
	m.SetLoader(st.load)
	if err := m.Restore(); err != nil {
		tb.Fatal(err)
	}
	return node{st, m}
}

func (n node) apply(entries [][]byte) {
	for _, e := range entries {
		n.m.Apply(n.m.Applied()+1, e, 0)
	}
}

var users = []string{"kim", "lee", "park", "shop", "escrow"}

// view is every answer the state gives, for comparing nodes.
func view(tb testing.TB, st *State, holds, envelopes, sales, pendings []ledger.ID, codes []string) string {
	tb.Helper()
	v := map[string]any{}
	for _, u := range users {
		v["balances/"+u] = st.Balances(u)
		all, next := st.Statement(u, "", 0, 1000)
		v["statement/"+u] = []any{all, next}
		page, next := st.Statement(u, "KRW", 4, 2)
		v["page/"+u] = []any{page, next}
		m, ok := st.MerchantOf(u)
		v["merchant/"+u] = []any{m, ok}
		v["mlog/"+u] = st.MerchantStatement(u, 100)
	}
	for _, id := range holds {
		h, ok := st.HoldOf(id, "kim")
		v["hold/"+id.String()] = []any{h, ok}
	}
	for _, id := range envelopes {
		e, ok := st.EnvelopeOf(id, "lee")
		v["envelope/"+id.String()] = []any{e, ok}
	}
	for _, id := range sales {
		s, ok := st.SaleOf(id)
		v["sale/"+id.String()] = []any{s, ok}
	}
	for _, id := range pendings {
		ps, amount := st.pendingOf(id)
		t, ok := st.l.Transfer(st.space, id)
		v["pending/"+id.String()] = []any{ps, amount, t, ok}
	}
	for _, h := range codes {
		pc, ok := st.paymentCode(h)
		v["code/"+h] = []any{pc, ok}
	}
	for _, id := range []ledger.ID{MerchantAccountID("shop", "KRW"), PlatformAccountID("KRW"), SettlementID("KRW")} {
		b, ok := st.AccountBalance(id)
		v["account/"+id.String()] = []any{b, ok}
	}
	v["bankops"] = st.OpenBankOps()
	v["check"] = fmt.Sprint(st.Check())
	v["digest"] = st.Digest()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// TestRestart applies a day of pay through a machine on a store, starts a
// fresh State and Machine on the same store, and checks that it answers as
// the node did and as a node that applied everything from the first entry;
// then both apply more (which resolves, claims, expires and retries what
// the first part left open) and must still agree.
func TestRestart(t *testing.T) {
	day0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	s := &stream{tb: t, at: day0}
	id := ledger.IDFrom
	topup := func(u, cid string, amount uint64) cmd {
		return cmd{kindTopUp, u, moneyCmd{ID: TransferID(u, "topup/"+cid), ClientID: cid, To: u, Amount: amount, Currency: "KRW"}}
	}
	pay := func(from, to, cid string, amount uint64) cmd {
		return cmd{kindTransfer, from, moneyCmd{ID: TransferID(from, cid), ClientID: cid, From: from, To: to, Amount: amount, Currency: "KRW"}}
	}
	hold := func(from, to, cid string, amount uint64, timeout uint32) (cmd, ledger.ID) {
		hid := TransferID(from, "hold/"+cid)
		return cmd{kindHold, from, moneyCmd{ID: hid, ClientID: cid, From: from, To: to, Amount: amount, Currency: "KRW", Timeout: timeout}}, hid
	}
	codeHash := hashCode("123456789012345678")
	oldCode := hashCode("000000000000000001")
	envID := TransferID("kim", "envelope/e1")
	envID2 := TransferID("kim", "envelope/e2")
	withdrawID := TransferID("lee", "withdraw/w1")
	withdrawID2 := TransferID("lee", "withdraw/w2")

	// Part one.
	s.add(topup("kim", "t1", 3_000_000), topup("lee", "t1", 200_000))
	s.add(topup("park", "t1", 50_000))
	s.add(cmd{kindTopUpBegin, "park", topUpBegin{moneyCmd{ID: TransferID("park", "topup/t2"), ClientID: "t2", To: "park", Amount: 7_000, Currency: "KRW"}, "ref-t2", "dc1"}})
	s.add(cmd{kindTopUpBegin, "park", topUpBegin{moneyCmd{ID: TransferID("park", "topup/t3"), ClientID: "t3", To: "park", Amount: 9_000, Currency: "KRW"}, "ref-t3", "dc2"}})
	s.add(topup("park", "t2", 7_000))
	s.add(cmd{kindBankAbort, "park", map[string]ledger.ID{"transfer_id": TransferID("park", "topup/t3")}})
	s.add(pay("kim", "lee", "p1", 12_000), pay("lee", "park", "p1", 3_000), pay("park", "kim", "p1", 1_000_000)) // the last: too little money
	s.add(pay("kim", "lee", "p2", 2_500_000))                                                                    // over the per-payment limit
	h1c, h1 := hold("kim", "escrow", "h1", 23_000, 3600)
	h2c, h2 := hold("kim", "escrow", "h2", 8_000, 3600)
	h3c, h3 := hold("kim", "escrow", "h3", 5_000, 60) // expires
	h4c, h4 := hold("kim", "escrow", "h4", 4_000, 7200)
	h5c, h5 := hold("kim", "escrow", "h5", 6_000, 7200)
	h6c, h6 := hold("kim", "escrow", "h6", 7_000, 7200) // expires after the restart
	s.add(h1c, h2c)
	s.add(h3c)
	s.add(h4c, h5c, h6c)
	s.add(cmd{kindMerchant, "shop", Merchant{Name: "Shop"}})
	s.add(cmd{kindSplit, "escrow", splitCmd{HoldID: h1, Payouts: []Payout{{Kind: PayoutMerchant, User: "shop", Amount: 19_000}, {Kind: PayoutWallet, User: "park", Amount: 3_000}, {Kind: PayoutPlatform, Amount: 1_000}}}})
	s.add(cmd{kindCapture, "escrow", moneyCmd{ID: TransferID("escrow", "capture/h2"), HoldID: h2, Amount: 5_000}})
	s.add(cmd{kindQR, "shop", map[string]any{"id": "q1", "amount": 4_500, "currency": "KRW"}})
	s.add(cmd{kindSale, "lee", saleCmd{ID: TransferID("lee", "qr/s1"), ClientID: "s1", Merchant: "shop", Customer: "lee", QR: "q1"}})
	s.add(cmd{kindSale, "park", saleCmd{ID: TransferID("park", "qr/s2"), ClientID: "s2", Merchant: "shop", Customer: "park", QR: "q1"}}) // used
	s.add(cmd{kindCode, "kim", map[string]any{"hash": oldCode, "session": "sess0"}})
	s.add(cmd{kindRefund, "shop", saleCmd{ID: TransferID("shop", "refund/r1"), ClientID: "r1", Payment: TransferID("lee", "qr/s1"), Amount: 500}})
	s.add(cmd{kindEnvelope, "kim", envelopeCmd{ID: envID, ClientID: "e1", Conv: "conv1", Amount: 10_000, Currency: "KRW", Shares: 3, Split: "random", Eligible: []string{"lee", "park", "shop"}}})
	s.add(cmd{kindClaim, "lee", map[string]ledger.ID{"id": envID}})
	s.add(cmd{kindEnvelope, "kim", envelopeCmd{ID: envID2, ClientID: "e2", Conv: "conv1", Amount: 900, Currency: "KRW", Shares: 2, Split: "equal", Eligible: []string{"lee", "park"}}})
	s.add(cmd{kindWithdrawBegin, "lee", moneyCmd{ID: withdrawID, ClientID: "w1", From: "lee", Amount: 20_000, Currency: "KRW", DC: "dc1"}})
	s.add(cmd{kindWithdrawBegin, "lee", moneyCmd{ID: withdrawID2, ClientID: "w2", From: "lee", Amount: 1_000, Currency: "KRW", DC: "dc1"}})
	s.add(cmd{kindWithdrawEnd, "lee", struct {
		moneyCmd
		Paid bool `json:"paid"`
	}{moneyCmd{ID: withdrawID2, ClientID: "w2", From: "lee", Amount: 1_000, Currency: "KRW"}, false}})
	bank, acct := id("restart/bank"), id("restart/acct")
	s.add(cmd{kindBatch, "ops", packedBatch(t, Batch{
		Accounts: []ledger.Account{{ID: bank, Currency: "KRW"}, {ID: acct, Currency: "KRW", Flags: ledger.DebitsMustNotExceedCredits}},
		Transfers: []ledger.Transfer{
			{ID: id("r/t1"), DebitAccountID: bank, CreditAccountID: acct, Amount: 1_000, Currency: "KRW"},
			{ID: id("r/t2"), DebitAccountID: acct, CreditAccountID: bank, Amount: 300, Currency: "KRW", Flags: ledger.Pending, Timeout: 30},
			{ID: id("r/t3"), DebitAccountID: acct, CreditAccountID: bank, Amount: 200, Currency: "KRW", Flags: ledger.Pending, Timeout: 7200},
			{ID: id("r/t4"), DebitAccountID: acct, CreditAccountID: bank, Amount: 100, Currency: "KRW", Flags: ledger.Pending},
			{ID: id("r/t5"), DebitAccountID: acct, CreditAccountID: bank, Amount: 50, Currency: "KRW", Flags: ledger.Linked},
			{ID: id("r/t6"), DebitAccountID: acct, CreditAccountID: bank, Amount: 9_999, Currency: "KRW"},
		}})})
	s.add(cmd{kindBatch, "ops", Batch{Transfers: []ledger.Transfer{ // JSON: user data no binary record holds
		{ID: id("r/t7"), DebitAccountID: bank, CreditAccountID: acct, Amount: 70, Currency: "KRW", UserData: "a note longer than the twenty-eight bytes of a record"},
	}}})
	s.at = s.at.Add(2 * time.Minute) // h3 and r/t2 expire
	s.add(cmd{kindBatch, "ops", packedBatch(t, Batch{Transfers: []ledger.Transfer{
		{ID: id("r/t8"), PendingID: id("r/t2"), Flags: ledger.PostPending},
		{ID: id("r/t9"), PendingID: id("r/t4"), Amount: 60, Flags: ledger.PostPending},
	}})})
	s.add(cmd{kindCapture, "escrow", moneyCmd{ID: TransferID("escrow", "capture/h3"), HoldID: h3}})
	part1 := len(s.entries)

	// Part two, after the restart.
	s.at = s.at.Add(time.Hour)
	s.add(cmd{kindClaim, "park", map[string]ledger.ID{"id": envID}}, cmd{kindClaim, "shop", map[string]ledger.ID{"id": envID}})
	s.add(cmd{kindClaim, "lee", map[string]ledger.ID{"id": envID2}})
	s.add(cmd{kindRelease, "escrow", moneyCmd{ID: TransferID("escrow", "release/h4"), HoldID: h4}})
	s.add(cmd{kindSplit, "escrow", splitCmd{HoldID: h5, Payouts: []Payout{{Kind: PayoutMerchant, User: "shop", Amount: 6_000}}}})
	s.add(cmd{kindWithdrawEnd, "lee", struct {
		moneyCmd
		Paid bool `json:"paid"`
	}{moneyCmd{ID: withdrawID, ClientID: "w1", From: "lee", Amount: 20_000, Currency: "KRW"}, true}})
	s.add(cmd{kindCode, "lee", map[string]any{"hash": codeHash, "session": "sess1"}}) // forgets the old code
	s.add(cmd{kindSale, "shop", saleCmd{ID: TransferID("shop", "charge/c1"), ClientID: "c1", Merchant: "shop", Amount: 2_000, Currency: "KRW", CodeHash: codeHash, Session: "sess1"}})
	s.add(cmd{kindRefund, "shop", saleCmd{ID: TransferID("shop", "refund/r2"), ClientID: "r2", Payment: TransferID("lee", "qr/s1")}})
	s.add(topup("kim", "t1", 3_000_000), pay("kim", "lee", "p1", 12_000)) // retries: nothing moves
	s.add(cmd{kindBatch, "ops", packedBatch(t, Batch{Transfers: []ledger.Transfer{
		{ID: id("r/t1"), DebitAccountID: bank, CreditAccountID: acct, Amount: 1_000, Currency: "KRW"}, // exists
		{ID: id("r/t10"), PendingID: id("r/t3"), Flags: ledger.VoidPending},
		{ID: id("r/t11"), PendingID: id("r/t2"), Flags: ledger.VoidPending}, // expired before the restart
	}})})
	s.at = s.at.Add(25 * time.Hour) // envelope e2 returns its rest
	s.add(pay("lee", "kim", "p3", 1_000))
	s.add(cmd{kindCapture, "escrow", moneyCmd{ID: TransferID("escrow", "capture/h2"), HoldID: h2, Amount: 5_000}}) // a retry

	holds := []ledger.ID{h1, h2, h3, h4, h5, h6}
	envelopes := []ledger.ID{envID, envID2}
	sales := []ledger.ID{TransferID("lee", "qr/s1"), TransferID("shop", "charge/c1"), SplitTransferID(h1, 1), SplitTransferID(h5, 1)}
	pendings := []ledger.ID{withdrawID, withdrawID2, id("r/t2"), id("r/t3"), id("r/t4"), id("r/t7")}
	codes := []string{codeHash, oldCode}
	see := func(st *State) string { return view(t, st, holds, envelopes, sales, pendings, codes) }

	db := storetest.Open(t)
	first := startNode(t, db)
	first.apply(s.entries[:part1])
	replayed := startNode(t, storetest.Open(t))
	replayed.apply(s.entries[:part1])
	before := see(first.st)
	seq, digest := first.m.Digest()

	restarted := startNode(t, db)
	if got, gotDigest := restarted.m.Digest(); got != seq || gotDigest != digest {
		t.Fatalf("restored at %d %s, applied %d %s", got, gotDigest, seq, digest)
	}
	if after := see(restarted.st); after != before {
		t.Fatalf("restarted node answers differently:\n%s\nwas\n%s", after, before)
	}
	if want := see(replayed.st); before != want {
		t.Fatalf("node differs from one that replayed:\n%s\nwant\n%s", before, want)
	}
	if len(restarted.st.OpenBankOps()) != 1 || len(restarted.st.open) != 2 {
		t.Fatalf("restored %d bank operations, %d open envelopes", len(restarted.st.OpenBankOps()), len(restarted.st.open))
	}

	restarted.apply(s.entries[part1:])
	replayed.apply(s.entries[part1:])
	_, d1 := restarted.m.Digest()
	_, d2 := replayed.m.Digest()
	if d1 != d2 {
		t.Fatal("after more entries the restarted node's digest differs")
	}
	got, want := see(restarted.st), see(replayed.st)
	if got != want {
		t.Fatalf("after more entries:\n%s\nwant\n%s", got, want)
	}
	if err := restarted.st.Check(); err != nil {
		t.Fatal(err)
	}
	// The second part did what it says: the envelopes are settled, the
	// expired hold and batch transfer stay expired, the old code is gone.
	if len(restarted.st.open) != 0 || len(restarted.st.OpenBankOps()) != 0 {
		t.Fatalf("%d envelopes still open, %d bank operations", len(restarted.st.open), len(restarted.st.OpenBankOps()))
	}
	for _, h := range []ledger.ID{h3, h6} {
		if h, _ := restarted.st.HoldOf(h, "kim"); h.Status != "expired" {
			t.Fatalf("hold: %+v", h)
		}
	}
	if a, _ := restarted.st.l.Account(WalletID("kim", "KRW")); a.DebitsPending != 0 {
		t.Fatalf("kim still has %d held", a.DebitsPending)
	}
	if st, _ := restarted.st.l.PendingStateOf(restarted.st.space, id("r/t2")); st != ledger.StateExpired {
		t.Fatalf("r/t2: %v", st)
	}
	if _, ok := restarted.st.paymentCode(oldCode); ok {
		t.Fatal("the old payment code was not forgotten")
	}
	if e, _ := restarted.st.EnvelopeOf(envID2, "lee"); e.Status != "returned" || e.Remaining != 0 {
		t.Fatalf("envelope e2: %+v", e)
	}
	// A third node restarts at the end and answers the same.
	if again := see(startNode(t, db).st); again != want {
		t.Fatalf("restarted at the end:\n%s\nwant\n%s", again, want)
	}
}

func packedBatch(tb testing.TB, b Batch) []byte { return packed(tb, b) }
