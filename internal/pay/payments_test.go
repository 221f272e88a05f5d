package pay

import (
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"superapp/internal/store/storetest"
)

// BenchmarkApplyPayments measures what every node does per wallet payment
// (the HTTP API's path): entries of 64 commands, as submitters group
// them, each a payment between two of 10,000 users who were topped up.
func BenchmarkApplyPayments(b *testing.B) {
	const users, perEntry = 10_000, 64
	user := func(i int) string { return "u" + strconv.Itoa(i) }
	build := func(from, n int) [][]byte {
		s := &stream{tb: b, at: time.Unix(1_800_000_000, 0)}
		r := rand.New(rand.NewPCG(uint64(from), 1))
		for e := 0; e < n; e++ {
			cmds := make([]cmd, perEntry)
			for i := range cmds {
				u, v := r.IntN(users), r.IntN(users-1)
				if v >= u {
					v++
				}
				cid := "p" + strconv.Itoa(from+e*perEntry+i)
				cmds[i] = cmd{kindTransfer, user(u), moneyCmd{ID: TransferID(user(u), cid), ClientID: cid, From: user(u), To: user(v), Amount: 1, Currency: "KRW"}}
			}
			s.add(cmds...)
		}
		return s.entries
	}
	start := func() node {
		n := startNode(b, storetest.Open(b))
		s := &stream{tb: b, at: time.Unix(1_800_000_000, 0), n: 1 << 30} // command ids apart from the payments'
		for i := 0; i < users; i += perEntry {
			cmds := make([]cmd, 0, perEntry)
			for u := i; u < min(i+perEntry, users); u++ {
				cmds = append(cmds, cmd{kindTopUp, user(u), moneyCmd{ID: TransferID(user(u), "topup/t"), ClientID: "t", To: user(u), Amount: 1_000_000, Currency: "KRW"}})
			}
			s.add(cmds...)
		}
		n.apply(s.entries)
		return n
	}
	const entries = 64
	work := build(0, entries)
	n, next := start(), 0
	b.ResetTimer()
	for b.Loop() {
		if next == len(work) {
			b.StopTimer()
			n, next = start(), 0
			b.StartTimer()
		}
		n.m.Apply(n.m.Applied()+1, work[next], 0)
		next++
	}
	b.ReportMetric(float64(b.N*perEntry)/b.Elapsed().Seconds(), "payments/s")
	b.StopTimer()
	if o, _ := n.m.Outcome("c" + strconv.Itoa(next*perEntry)); o.Err != nil || o.Seq != n.m.Applied() {
		b.Fatalf("the last payment: %+v, at %d", o, n.m.Applied())
	}
	if err := n.st.Check(); err != nil {
		b.Fatal(err)
	}
}
