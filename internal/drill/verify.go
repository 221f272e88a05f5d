package drill

import (
	"context"
	"fmt"
	"slices"

	"superapp/client"
)

// verdict is what the drill found about one feature's writes.
type verdict struct {
	Lost       int
	Duplicated int
	Problems   []string
}

func (v *verdict) problem(format string, args ...any) {
	if len(v.Problems) < 20 {
		v.Problems = append(v.Problems, fmt.Sprintf(format, args...))
	}
}

// verifyChat reads every group conversation in full: each acknowledged
// message is there exactly once, no other message twice, seqs gapless.
func verifyChat(ctx context.Context, users []*user) (verdict, error) {
	var v verdict
	byConv := map[string][]*user{}
	for _, u := range users {
		byConv[u.conv] = append(byConv[u.conv], u)
	}
	for conv, members := range byConv {
		reader := members[0]
		seen := map[string]int{}
		var after, last uint64
		for {
			ms, more, err := reader.c.Messages(ctx, conv, after, 0, 200)
			if err != nil {
				return v, fmt.Errorf("read %s: %w", conv, err)
			}
			for _, m := range ms {
				if last != 0 && m.Seq != last+1 {
					v.problem("conversation %s: seq %d follows %d", conv, m.Seq, last)
				}
				last = m.Seq
				if m.Kind == "text" {
					seen[m.ID]++
				}
			}
			if len(ms) > 0 {
				after = ms[len(ms)-1].Seq
			}
			if !more || len(ms) == 0 {
				break
			}
		}
		for _, u := range members {
			if u.conv != conv {
				continue
			}
			for _, id := range u.chatAck {
				if seen[id] == 0 {
					v.Lost++
					v.problem("acknowledged message %s is not in %s", id, conv)
				}
			}
			for id := range u.chatTry {
				if seen[id] > 1 {
					v.Duplicated += seen[id] - 1
					v.problem("message %s is in %s %d times", id, conv, seen[id])
				}
			}
		}
	}
	return v, nil
}

// verifyPay reads every user's statement: each acknowledged payment is on
// the payer's statement exactly once (and the payee's), none twice, and
// each wallet holds what its statement says.
func verifyPay(ctx context.Context, users []*user) (verdict, error) {
	var v verdict
	sent := map[string]int{}     // payment id → times on the payer's statement
	received := map[string]int{} // payment id → times on a payee's statement
	for _, u := range users {
		var balance int64
		for before := 0; ; {
			es, next, err := u.c.Statement(ctx, before, 200)
			if err != nil {
				return v, fmt.Errorf("statement of %d: %w", u.idx, err)
			}
			for _, e := range es {
				switch e.Kind {
				case "topup":
					balance += int64(e.Amount)
				case "sent":
					balance -= int64(e.Amount)
					sent[e.ID]++
				case "received":
					balance += int64(e.Amount)
					received[e.ID]++
				}
			}
			if next == 0 {
				break
			}
			before = next
		}
		bs, err := u.c.Wallet(ctx)
		if err != nil {
			return v, fmt.Errorf("wallet of %d: %w", u.idx, err)
		}
		var have int64
		for _, b := range bs {
			if b.Currency == "KRW" {
				have = int64(b.Available + b.Pending)
			}
		}
		if have != balance {
			v.problem("user %d holds %d but their statement adds up to %d", u.idx, have, balance)
		}
	}
	for _, u := range users {
		for id := range u.payTry {
			key := id
			if n := sent[key]; n > 1 {
				v.Duplicated += n - 1
				v.problem("payment %s is on the payer's statement %d times", id, n)
			}
		}
		for id := range u.payAck {
			if sent[id] == 0 {
				v.Lost++
				v.problem("acknowledged payment %s is not on the payer's statement", id)
			}
		}
	}
	return v, nil
}

// verifyIdentity checks every user's sessions: each acknowledged login's
// session exists, and the user's current token still works (a refresh
// applied twice would have revoked it as a reuse).
func verifyIdentity(ctx context.Context, users []*user) (verdict, error) {
	var v verdict
	for _, u := range users {
		if _, err := u.c.Me(ctx); err != nil {
			if client.Code(err) == "session_revoked" || client.Code(err) == "unauthenticated" {
				v.Lost++
				v.problem("user %d was logged out: %v", u.idx, err)
				continue
			}
			return v, fmt.Errorf("me of %d: %w", u.idx, err)
		}
		ss, err := u.c.Sessions(ctx)
		if err != nil {
			return v, fmt.Errorf("sessions of %d: %w", u.idx, err)
		}
		var ids []string
		for _, s := range ss {
			ids = append(ids, s.SessionID)
		}
		for _, id := range u.sessions {
			if !slices.Contains(ids, id) {
				v.Lost++
				v.problem("user %d: acknowledged session %s is missing", u.idx, id)
			}
		}
	}
	return v, nil
}
