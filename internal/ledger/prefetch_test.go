package ledger

import (
	"slices"
	"testing"

	"pgregory.net/rapid"

	"superapp/internal/store/storetest"
)

// TestPrefetch applies batches big enough to be looked up ahead (prefetch)
// to one ledger and the same events in calls too small for it to a twin:
// the same results and state, whether the batch's ids are time-ordered
// (one walk settles them), interleaved with other clients' or spread over
// the key space (looked up one by one), new, stored before or repeated in
// the batch.
func TestPrefetch(t *testing.T) {
	db := storetest.Open(t)
	rapid.Check(t, func(t *rapid.T) {
		big, small := newTestLedger(db), newTestLedger(db)
		accs := []Account{{ID: idN(1), Currency: "KRW"}, {ID: idN(2), Currency: "KRW", Flags: DebitsMustNotExceedCredits}}
		big.CreateAccounts(1, accs)
		small.CreateAccounts(1, accs)
		seqID := func(n uint64) ID {
			var id ID
			id[0] = 0xbe
			for k := 0; k < 8; k++ {
				id[15-k] = byte(n >> (8 * k))
			}
			return id
		}
		var stored []ID
		next := uint64(1)
		now := int64(1e12)
		for b := range rapid.IntRange(1, 6).Draw(t, "batches") {
			n := rapid.IntRange(prefetchMin, 300).Draw(t, "n")
			ts := make([]Transfer, n)
			for i := range ts {
				var id ID
				switch k := rapid.IntRange(0, 9).Draw(t, "kind"); {
				case k < 4: // time-ordered
					id = seqID(next)
					next += uint64(rapid.IntRange(1, 5).Draw(t, "gap")) // others' ids between ours
				case k < 6: // spread over the key space
					id = IDFrom(rapid.String().Draw(t, "random"))
				case k < 8 && len(stored) > 0: // a retry
					id = rapid.SampledFrom(stored).Draw(t, "stored")
				case i > 0: // again in this batch
					id = ts[rapid.IntRange(0, i-1).Draw(t, "earlier")].ID
				default:
					id = seqID(next)
					next++
				}
				ts[i] = Transfer{ID: id, DebitAccountID: idN(1), CreditAccountID: idN(2), Amount: uint64(rapid.IntRange(1, 3).Draw(t, "amount")), Currency: "KRW"}
				if rapid.IntRange(0, 9).Draw(t, "pending") == 0 {
					ts[i].Flags, ts[i].Timeout = Pending, 1
				}
			}
			now += int64(rapid.IntRange(0, 2).Draw(t, "dt")) * 1e9
			got := big.CreateTransfers(now, ts)
			var want []string
			for from := 0; from < n; from += prefetchMin - 1 {
				want = append(want, small.CreateTransfers(now, ts[from:min(from+prefetchMin-1, n)])...)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("batch %d: %v, in small calls %v", b, got, want)
			}
			if big.Digest() != small.Digest() {
				t.Fatalf("batch %d: the ledgers differ", b)
			}
			for i, r := range got {
				if r == OK {
					stored = append(stored, ts[i].ID)
				}
			}
			// Others' transfers, stored between the batches: the walk meets them.
			filler := make([]Transfer, rapid.IntRange(0, 200).Draw(t, "others"))
			for i := range filler {
				filler[i] = Transfer{ID: IDFrom(rapid.String().Draw(t, "other")), DebitAccountID: idN(1), CreditAccountID: idN(2), Amount: 1, Currency: "KRW"}
				if rapid.Bool().Draw(t, "ordered") {
					filler[i].ID = seqID(next + uint64(i))
				}
			}
			big.CreateTransfers(now, filler)
			small.CreateTransfers(now, filler)
		}
	})
}
