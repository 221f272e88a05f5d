package drill

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"superapp/client"
	"superapp/internal/food"
	"superapp/internal/rides"
)

// checks verifies each feature's writes.
var checks = map[string]func(context.Context, *world) (verdict, error){
	"identity": verifyIdentity, "chat": verifyChat, "pay": verifyPay,
	"rides": verifyRides, "food": verifyFood, "oauth": verifyOAuth, "miniapp": verifyMiniapp,
}

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
func verifyChat(ctx context.Context, w *world) (verdict, error) {
	var v verdict
	users := w.users
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
//
// Every worker's wallet is checked too: drivers and couriers are paid
// from rides and orders.
func verifyPay(ctx context.Context, w *world) (verdict, error) {
	var v verdict
	users := w.users
	sent := map[string]int{} // payment id → times on the payer's statement
	for _, u := range w.everyone() {
		es, err := statement(ctx, u.c)
		if err != nil {
			return v, fmt.Errorf("statement of %d: %w", u.idx, err)
		}
		var balance int64
		for _, e := range es {
			balance += moved[e.Kind] * int64(e.Amount)
			if e.Kind == "sent" {
				sent[e.ID]++
			}
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

// moved is what a statement line of each kind does to the wallet's
// available plus pending money: a hold moves nothing until captured, a
// release gives back what was held, not a won more.
var moved = map[string]int64{"topup": 1, "received": 1, "returned": 1, "refund": 1,
	"sent": -1, "captured": -1, "withdrawal": -1, "envelope": -1, "hold": 0, "released": 0}

// statement reads a user's whole statement, newest first.
func statement(ctx context.Context, c *client.Client) ([]client.Entry, error) {
	var all []client.Entry
	for before := 0; ; {
		es, next, err := c.Statement(ctx, before, 200)
		if err != nil {
			return nil, err
		}
		all = append(all, es...)
		if next == 0 {
			return all, nil
		}
		before = next
	}
}

// verifyIdentity checks every user's sessions: each acknowledged login's
// session exists, and the user's current token still works (a refresh
// applied twice would have revoked it as a reuse).
func verifyIdentity(ctx context.Context, w *world) (verdict, error) {
	var v verdict
	for _, u := range w.users {
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

// dcs is every DC's endpoint, to read back what each one holds.
func dcs(w *world) []string {
	eps := w.users[0].c.Endpoints()
	slices.Sort(eps)
	return eps
}

// settle waits, bounded, until done reports that what the users started
// has settled (rides and orders ended, their money captured or released,
// webhooks delivered): a fire may leave a ride for another DC to settle
// after a takeover.
func settle(ctx context.Context, limit time.Duration, done func() (bool, error)) error {
	deadline := time.Now().Add(limit)
	for {
		ok, err := done()
		if ok || err != nil || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// captured counts and adds up the "captured" lines of a statement whose
// payee is (or is not) one of payees.
func captured(es []client.Entry, payees map[string]bool, want bool) (n int, sum uint64) {
	for _, e := range es {
		if e.Kind == "captured" && payees[e.Counterparty] == want {
			n++
			sum += e.Amount
		}
	}
	return n, sum
}

// billing says how one kind of booking (rides, food orders) is read back.
type billing struct {
	what string                        // "ride", "order"
	of   func(u *user) *bookings       // the user's bookings of this kind
	id   func(user, key string) string // a booking's id, derived from its client id
	// settled reports whether a booking read on the user's own client has
	// ended and its money is captured or released.
	settled func(ctx context.Context, c *client.Client, id string) (bool, error)
	// read reads a booking on one DC: what its user owes for it (0:
	// nothing is captured), and whether its money is wrong (not taken as
	// acknowledged: lost). A not_found error means it is not there.
	read func(ctx context.Context, v *verdict, c *client.Client, dc, id string) (owed uint64, wrong bool, err error)
	// toDrivers: its captures are paid to drivers (else to anyone else).
	toDrivers bool
}

// verifyBookings reads every ride or order each user asked for back from
// every DC, after they settled (bounded): each acknowledged one is
// there, its money right; and the user's statement on each DC shows
// exactly one capture, of the right sum, per booking that owes one.
// Bookings never acknowledged are read too (their ids are derived from
// their client ids): one that happened owes like any other.
func verifyBookings(ctx context.Context, w *world, b billing) (verdict, error) {
	var v verdict
	drivers := map[string]bool{}
	for _, d := range w.drivers {
		drivers[d.id] = true
	}
	ids := func(u *user) map[string]bool { // id → acknowledged
		u.mu.Lock()
		defer u.mu.Unlock()
		out := map[string]bool{}
		for key := range b.of(u).try {
			out[b.id(u.id, key)] = false
		}
		for id := range b.of(u).ack {
			out[id] = true
		}
		return out
	}
	err := settle(ctx, w.patience, func() (bool, error) {
		for _, u := range w.users {
			for id := range ids(u) {
				if ok, err := b.settled(ctx, u.c, id); !ok || err != nil {
					return false, nil
				}
			}
		}
		return true, nil
	})
	if err != nil {
		return v, err
	}
	for _, u := range w.users {
		lost, dups := map[string]bool{}, 0
		for _, dc := range dcs(w) {
			pc := u.pinned(dc)
			want, wantSum := 0, uint64(0)
			for id, acked := range ids(u) {
				owed, wrong, err := b.read(ctx, &v, pc, dc, id)
				switch {
				case client.Code(err) == "not_found":
					if acked {
						lost[id] = true
						v.problem("%s: acknowledged %s %s of user %d is missing", dc, b.what, id, u.idx)
					}
					continue
				case err != nil:
					return v, fmt.Errorf("%s %s on %s: %w", b.what, id, dc, err)
				case wrong:
					lost[id] = true
				}
				if owed > 0 {
					want, wantSum = want+1, wantSum+owed
				}
			}
			es, err := statement(ctx, pc)
			if err != nil {
				return v, fmt.Errorf("statement of %d on %s: %w", u.idx, dc, err)
			}
			n, sum := captured(es, drivers, b.toDrivers)
			if n == want && sum == wantSum {
				continue
			}
			// A capture too many is money taken twice; one too few, money
			// an acknowledged booking never took.
			v.problem("%s: user %d's statement shows %d captures of %d won for %ss that owe %d captures of %d won", dc, u.idx, n, sum, b.what, want, wantSum)
			if n > want {
				dups = max(dups, n-want)
			} else if len(lost) == 0 {
				lost["the bill of user "+fmt.Sprint(u.idx)] = true
			}
		}
		v.Lost += len(lost)
		v.Duplicated += dups
	}
	return v, nil
}

// verifyRides: each acknowledged ride is on every DC, ended, its request
// hold released and its fare (or cancellation fee) captured once on the
// hold for its driver.
func verifyRides(ctx context.Context, w *world) (verdict, error) {
	return verifyBookings(ctx, w, billing{what: "ride", toDrivers: true,
		of: func(u *user) *bookings { return &u.rides }, id: rides.RideID,
		settled: func(ctx context.Context, c *client.Client, id string) (bool, error) {
			r, err := c.Ride(ctx, id)
			if client.Code(err) == "not_found" {
				return true, nil
			}
			if err != nil || !r.Ended() || r.Payment == nil {
				return false, err
			}
			for _, h := range []string{r.Payment.HoldID, r.Payment.DriverHoldID} {
				if h == "" {
					continue
				}
				if hold, err := c.HoldOf(ctx, h); err != nil || hold.Status == "pending" {
					return false, err
				}
			}
			return true, nil
		},
		read: func(ctx context.Context, v *verdict, c *client.Client, dc, id string) (uint64, bool, error) {
			r, err := c.Ride(ctx, id)
			if err != nil {
				return 0, false, err
			}
			if !r.Ended() || r.Payment == nil {
				v.problem("%s: ride %s is still %s", dc, id, r.Status)
				return 0, false, nil
			}
			if h, err := c.HoldOf(ctx, r.Payment.HoldID); err != nil || h.Status != "released" {
				v.problem("%s: ride %s (%s): request hold %+v %v", dc, id, r.Status, h, err)
			}
			owed := r.Fare + r.CancelFee
			if r.Payment.DriverHoldID == "" {
				if owed > 0 {
					v.problem("%s: ride %s (%s) owes %d but holds nothing for its driver", dc, id, r.Status, owed)
				}
				return owed, owed > 0, nil
			}
			h, err := c.HoldOf(ctx, r.Payment.DriverHoldID)
			if err != nil {
				return 0, false, fmt.Errorf("its driver's hold: %w", err)
			}
			if (owed > 0 && (h.Status != "captured" || h.Captured != owed || h.Payee != r.DriverID)) || (owed == 0 && h.Status != "released") {
				v.problem("%s: ride %s (%s, fare %d, fee %d): driver hold %+v", dc, id, r.Status, r.Fare, r.CancelFee, h)
				return owed, true, nil
			}
			return owed, false, nil
		}})
}

// verifyFood: each acknowledged order is on every DC, ended; a delivered
// order's hold was captured in full (and split) once, any other's
// released.
func verifyFood(ctx context.Context, w *world) (verdict, error) {
	settled := func(o client.Order) bool {
		return o.Ended() && o.Payment != nil && (o.Payment.Status == "captured" || o.Payment.Status == "released")
	}
	return verifyBookings(ctx, w, billing{what: "order",
		of: func(u *user) *bookings { return &u.food }, id: food.OrderID,
		settled: func(ctx context.Context, c *client.Client, id string) (bool, error) {
			o, err := c.Order(ctx, id)
			if client.Code(err) == "not_found" {
				return true, nil
			}
			return err == nil && settled(o), err
		},
		read: func(ctx context.Context, v *verdict, c *client.Client, dc, id string) (uint64, bool, error) {
			o, err := c.Order(ctx, id)
			switch {
			case err != nil:
				return 0, false, err
			case !settled(o):
				v.problem("%s: order %s is still %s, payment %+v", dc, id, o.Status, o.Payment)
			case o.Status == "delivered" && (o.Payment.Status != "captured" || o.Payment.Captured != o.Total):
				v.problem("%s: delivered order %s of %d won: payment %+v", dc, id, o.Total, o.Payment)
				return o.Total, true, nil
			case o.Status != "delivered" && o.Payment.Status != "released":
				v.problem("%s: %s order %s: payment %+v", dc, o.Status, id, o.Payment)
			}
			if o.Status == "delivered" {
				return o.Total, false, nil
			}
			return 0, false, nil
		}})
}

// verifyOAuth reads every user's grants back from every DC: each "Login
// with superapp" whose code the mini-app exchanged made exactly one grant
// (a code exchanged twice, as the failover client may send it, must not
// make two), counted per mini-app; and the mini-app's token from the
// user's latest login still tells every DC's /oidc/userinfo who the user
// is.
func verifyOAuth(ctx context.Context, w *world) (verdict, error) {
	var v verdict
	for _, u := range w.users {
		u.mu.Lock()
		want := map[string]int{}  // client id → grants made
		maybe := map[string]int{} // … and perhaps one more: an exchange never answered
		for _, a := range u.oidc.apps {
			want[a.creds.ClientID] = a.grants
		}
		if l := u.oidc.login; l != nil && l.sent && l.tokens == nil {
			maybe[l.app.creds.ClientID]++
		}
		var latest *app
		if n := len(u.oidc.ack); n > 0 {
			latest = u.oidc.acked[u.oidc.ack[n-1]]
		}
		for _, req := range u.oidc.ack {
			if a := u.oidc.acked[req]; a == nil || a.grants == 0 {
				want["login "+req]++ // acknowledged, yet no mini-app of the user's exchanged its code
			}
		}
		u.mu.Unlock()
		lost, dups := 0, 0
		for _, dc := range dcs(w) {
			gs, err := u.pinned(dc).Grants(ctx)
			if err != nil {
				return v, fmt.Errorf("grants of %d on %s: %w", u.idx, dc, err)
			}
			made := map[string]int{}
			for _, g := range gs {
				made[g.Client.ClientID]++
			}
			for cl, n := range want {
				switch got := made[cl]; {
				case got < n:
					lost = max(lost, n-got)
					v.problem("%s: user %d has %d grants for %s, made %d", dc, u.idx, got, cl, n)
				case got > n+maybe[cl]:
					dups = max(dups, got-n-maybe[cl])
					v.problem("%s: user %d has %d grants for %s, made %d", dc, u.idx, got, cl, n)
				}
			}
			if latest == nil || latest.token == "" {
				continue
			}
			ac := client.New([]string{dc}, client.WithHTTPClient(u.hc))
			ac.UseTokens(client.Tokens{AccessToken: latest.token})
			ac.Observe(u.oidc.appc.Position())
			if ui, err := ac.UserInfo(ctx); err != nil || ui.Subject != u.id {
				if err != nil && !refused(err) {
					return v, fmt.Errorf("userinfo of %d on %s: %w", u.idx, dc, err)
				}
				lost = max(lost, 1)
				v.problem("%s: the token of user %d's latest login: userinfo %+v %v", dc, u.idx, ui, err)
			}
		}
		v.Lost += lost
		v.Duplicated += dups
	}
	return v, nil
}

// verifyMiniapp waits, bounded, for the webhook of every approved pay
// request, then reads every pay request back from every DC with the
// mini-app's credentials: each acknowledged approval is there; the
// user's statement shows one payment per approved request; and each
// approval's webhook is in every DC's delivery log, delivered, under one
// delivery id, which the drill's backend received with a good signature
// (and no second id for the same event).
func verifyMiniapp(ctx context.Context, w *world) (verdict, error) {
	var v verdict
	const approved = "pay_request.approved"
	type req struct {
		a     *app
		acked bool
	}
	reqs := func(u *user) map[string]req {
		u.mu.Lock()
		defer u.mu.Unlock()
		out := map[string]req{}
		for id, a := range u.mini.try {
			out[id] = req{a: a}
		}
		for id, a := range u.mini.ack {
			out[id] = req{a: a, acked: true}
		}
		return out
	}
	if err := settle(ctx, w.patience, func() (bool, error) {
		for _, u := range w.users {
			for id, r := range reqs(u) {
				if r.acked && len(w.hooks.received(id, approved)) == 0 {
					return false, nil
				}
			}
		}
		return true, nil
	}); err != nil {
		return v, err
	}
	w.hooks.mu.Lock()
	badSig, failed := w.hooks.badSig, w.hooks.failed
	w.hooks.mu.Unlock()
	if failed != nil {
		return v, fmt.Errorf("webhook receiver: %w", failed)
	}
	if badSig > 0 {
		v.problem("%d webhooks came with a bad signature", badSig)
	}
	for _, u := range w.users {
		rs := reqs(u)
		lost, dups := map[string]bool{}, 0
		for _, dc := range dcs(w) {
			pc := u.pinned(dc)
			ac := client.New([]string{dc}, client.WithHTTPClient(u.hc))
			ac.Observe(u.c.Position())
			ac.Observe(u.oidc.appc.Position())
			// The log of each mini-app the user paid, by pay request.
			logs := map[*app]map[string][]client.Delivery{}
			want := 0
			for id, r := range rs {
				pr, err := ac.AppPayRequest(ctx, r.a.creds, id)
				if client.Code(err) == "not_found" {
					if r.acked {
						lost[id] = true
						v.problem("%s: acknowledged pay request %s of user %d is missing", dc, id, u.idx)
					}
					continue
				}
				if err != nil {
					return v, fmt.Errorf("pay request %s on %s: %w", id, dc, err)
				}
				if pr.Status != "approved" {
					if r.acked {
						lost[id] = true
						v.problem("%s: acknowledged approval of %s is %s", dc, id, pr.Status)
					}
					continue
				}
				want++
				if !r.acked {
					continue
				}
				if logs[r.a] == nil {
					logs[r.a] = map[string][]client.Delivery{}
					owner := r.a.owner.pinned(dc)
					owner.Observe(u.c.Position())
					ds, err := owner.Deliveries(ctx, r.a.creds.ClientID)
					if err != nil {
						return v, fmt.Errorf("deliveries of %s on %s: %w", r.a.creds.ClientID, dc, err)
					}
					for _, d := range ds {
						var data struct {
							PayRequest client.PayRequest `json:"pay_request"`
						}
						if d.Event == approved && json.Unmarshal(d.Data, &data) == nil {
							logs[r.a][data.PayRequest.PayRequestID] = append(logs[r.a][data.PayRequest.PayRequestID], d)
						}
					}
				}
				logged, got := logs[r.a][id], w.hooks.received(id, approved)
				switch {
				case len(logged) == 0 || len(got) == 0:
					lost[id] = true
					v.problem("%s: the webhook of approved %s: in the log %+v, received %v", dc, id, logged, got)
				case len(logged) > 1 || len(got) > 1:
					dups = max(dups, max(len(logged), len(got))-1)
					v.problem("%s: the webhook of approved %s has several ids: in the log %+v, received %v", dc, id, logged, got)
				case logged[0].Status != "delivered" || logged[0].DeliveryID != got[0]:
					lost[id] = true
					v.problem("%s: the webhook of approved %s: %s as %s, received as %s", dc, id, logged[0].Status, logged[0].DeliveryID, got[0])
				}
			}
			es, err := statement(ctx, pc)
			if err != nil {
				return v, fmt.Errorf("statement of %d on %s: %w", u.idx, dc, err)
			}
			paid := 0
			for _, e := range es {
				if _, transfer := u.payTry[e.ID]; e.Kind == "sent" && !transfer {
					paid++
				}
			}
			if paid > want {
				dups = max(dups, paid-want)
			}
			if paid != want {
				v.problem("%s: user %d paid mini-apps %d times for %d approved requests", dc, u.idx, paid, want)
				if paid < want && len(lost) == 0 {
					lost["payments of user "+fmt.Sprint(u.idx)] = true
				}
			}
		}
		v.Lost += len(lost)
		v.Duplicated += dups
	}
	return v, nil
}
