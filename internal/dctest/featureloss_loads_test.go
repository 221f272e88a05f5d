package dctest_test

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"superapp/client"
)

// The loads and checks of TestFeatureLoss, one per feature: what its
// people write through the failover client while the DC leading the
// feature's stream burns, and how every DC is checked afterwards.

// identityLoad: each person logs in on a new device and refreshes its
// tokens again and again, each refresh with its own key. A refresh lost
// or applied twice makes the next one present an old generation, which
// revokes the session: the chain checks itself, and the check reads the
// session back and refreshes once more on each DC.
func identityLoad(ctx context.Context, t *testing.T, w *lossWorld, urls []string) lossLoad {
	type device struct {
		c   *client.Client
		id  string
		tok client.Tokens // the newest
		n   int           // refreshes acknowledged
	}
	var devs []*device
	var ld lossLoad
	for i := range w.people {
		d := &device{c: client.New(urls)}
		tok, err := d.c.Login(ctx, w.logins[i], password, "loss tablet")
		if err != nil {
			t.Fatal(err)
		}
		d.id, d.tok = tok.SessionID, tok
		devs = append(devs, d)
		ld.writers = append(ld.writers, func(ctx context.Context, stopping bool, ack func()) (bool, error) {
			if stopping {
				return true, nil
			}
			tok, err := refresh(ctx, d.c, d.id, d.n)
			if err != nil || tok.SessionID != d.id {
				return false, fmt.Errorf("refresh %d of session %s: %v (session %q)", d.n+1, d.id, err, tok.SessionID)
			}
			d.n++
			d.tok = tok
			ack()
			return false, nil
		})
	}
	ld.check = func(ctx context.Context, url string) error {
		for _, d := range devs {
			on := client.New([]string{url})
			on.UseTokens(d.tok)
			on.Observe(d.c.Position())
			ss, err := on.Sessions(ctx)
			if err != nil {
				return err
			}
			if n := len(slices.DeleteFunc(ss, func(s client.Session) bool { return s.SessionID != d.id || s.RevokedAt != nil })); n != 1 {
				return fmt.Errorf("session %s after %d refreshes: live %d times", d.id, d.n, n)
			}
			// The last acknowledged refresh token is the current one.
			tok, err := refresh(ctx, on, d.id, d.n)
			if err != nil {
				return fmt.Errorf("refresh of session %s with its last token: %w", d.id, err)
			}
			d.n++
			d.tok = tok
		}
		return nil
	}
	return ld
}

// refresh rotates cl's refresh token of session, refreshed n times so
// far, and keeps the new tokens. Its key follows from n: sent again after
// an error, it is the same refresh.
func refresh(ctx context.Context, cl *client.Client, session string, n int) (client.Tokens, error) {
	var tok client.Tokens
	err := cl.Do(ctx, client.Request{Method: "POST", Path: "/v1/sessions/refresh", NoAuth: true, IdempotencyKey: fmt.Sprintf("%s-refresh-%d", session, n+1),
		Body: map[string]string{"refresh_token": cl.RefreshToken()}}, &tok)
	if err == nil {
		cl.UseTokens(tok)
	}
	return tok, err
}

// socialLoad: around a ring, each person asks the next to be friends and
// withdraws the request, again and again. A request lost makes its
// withdrawal fail; one applied again after its withdrawal stays pending.
// The check reads every person's requests back, with the time of the
// last one acknowledged.
func socialLoad(ctx context.Context, t *testing.T, w *lossWorld, urls []string) lossLoad {
	type asker struct {
		c     *client.Client
		to    string
		n     int
		asked *time.Time // the pending request's time, if one is
	}
	var as []*asker
	var ld lossLoad
	for i, p := range w.people {
		a := &asker{c: p.session(urls), to: w.people[(i+1)%len(w.people)].id}
		as = append(as, a)
		ld.writers = append(ld.writers, func(ctx context.Context, stopping bool, ack func()) (bool, error) {
			if stopping {
				return true, nil
			}
			a.n++
			req := client.Request{Method: "POST", Path: "/v1/friends/requests", Body: map[string]string{"user_id": a.to}, IdempotencyKey: fmt.Sprintf("loss-ask-%d", a.n)}
			want := "requested"
			if a.asked != nil {
				req = client.Request{Method: "DELETE", Path: "/v1/friends/requests/" + a.to, IdempotencyKey: fmt.Sprintf("loss-withdraw-%d", a.n)}
				want = "cancelled"
			}
			var out struct {
				Status string    `json:"status"`
				At     time.Time `json:"at"`
			}
			if err := a.c.Do(ctx, req, &out); err != nil || out.Status != want {
				return false, fmt.Errorf("person %d, step %d (%s): %v %+v", i, a.n, want, err, out)
			}
			ack()
			a.asked = nil
			if want == "requested" {
				a.asked = &out.At
			}
			return false, nil
		})
	}
	ld.check = func(ctx context.Context, url string) error {
		for i, a := range as {
			_, out, err := pinned(a.c, url).FriendRequests(ctx)
			if err != nil {
				return err
			}
			switch {
			case a.asked == nil && len(out) != 0:
				return fmt.Errorf("person %d withdrew the request acknowledged last, yet has %+v pending", i, out)
			case a.asked != nil && (len(out) != 1 || out[0].UserID != a.to || !out[0].CreatedAt.Equal(*a.asked)):
				return fmt.Errorf("person %d asked %s at %v (acknowledged last), yet has %+v pending", i, a.to, a.asked, out)
			}
		}
		return nil
	}
	return ld
}

// chatLoad: the people talk in one group; every acknowledged message must
// be stored once on every DC, and nothing else.
func chatLoad(ctx context.Context, t *testing.T, w *lossWorld, urls []string) lossLoad {
	var others []string
	for _, p := range w.people[1:] {
		others = append(others, p.id)
	}
	cv, err := w.people[0].session(urls).CreateConversation(ctx, others, ptr("loss"))
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu   sync.Mutex
		sent = map[string]bool{}
		ld   lossLoad
	)
	for i, p := range w.people {
		cl := p.session(urls)
		n := 0
		ld.writers = append(ld.writers, func(ctx context.Context, stopping bool, ack func()) (bool, error) {
			if stopping {
				p.c.Observe(cl.Position())
				return true, nil
			}
			n++
			id := fmt.Sprintf("loss-u%d-m%d", i, n)
			if _, err := cl.Send(ctx, cv.ConversationID, id, "hello "+id, 0); err != nil {
				return false, fmt.Errorf("send %s: %w", id, err)
			}
			ack()
			mu.Lock()
			sent[id] = true
			mu.Unlock()
			return false, nil
		})
	}
	ld.check = func(ctx context.Context, url string) error {
		have := storedMessages(ctx, t, url, w.people[0], cv.ConversationID)
		for id, n := range have {
			if strings.HasPrefix(id, "loss-") && (n != 1 || !sent[id]) {
				return fmt.Errorf("message %s stored %d times (acknowledged: %v)", id, n, sent[id])
			}
		}
		for id := range sent {
			if have[id] != 1 {
				return fmt.Errorf("acknowledged message %s stored %d times", id, have[id])
			}
		}
		return nil
	}
	return ld
}

// payLoad: around a ring, each person pays the next one won at a time;
// every wallet must hold what the acknowledgements say, on every DC.
func payLoad(ctx context.Context, t *testing.T, w *lossWorld, urls []string) lossLoad {
	pu := newPurse(ctx, t, urls, w.people)
	var (
		mu     sync.Mutex
		change = map[string]int64{}
		ld     lossLoad
	)
	for i, cl := range pu.cls {
		from, to := w.people[i].id, w.people[(i+1)%len(w.people)].id
		n := 0
		ld.writers = append(ld.writers, func(ctx context.Context, stopping bool, ack func()) (bool, error) {
			if stopping {
				return true, nil
			}
			n++
			if pm, err := cl.Pay(ctx, fmt.Sprintf("loss-u%d-p%d", i, n), to, 1, "KRW"); err != nil || pm.Status != "ok" {
				return false, fmt.Errorf("payment %d of person %d: %v %+v", n, i, err, pm)
			}
			ack()
			mu.Lock()
			change[from]--
			change[to]++
			mu.Unlock()
			return false, nil
		})
	}
	ld.check = func(ctx context.Context, url string) error { return pu.check(ctx, url, change) }
	return ld
}

// purse is some people's wallets in one case: each one's client for the
// case and what they held when it began.
type purse struct {
	ps   []*person
	cls  []*client.Client
	base []uint64
}

// newPurse gives ps clients that try urls in order and notes what they
// hold; nothing may be held for anyone.
func newPurse(ctx context.Context, t *testing.T, urls []string, ps []*person) *purse {
	t.Helper()
	pu := &purse{ps: ps}
	for _, p := range ps {
		cl := p.session(urls)
		bs, err := cl.Wallet(ctx)
		if err != nil || len(bs) != 1 || bs[0].Pending != 0 {
			t.Fatalf("wallet of %s: %+v (%v)", p.id, bs, err)
		}
		pu.cls = append(pu.cls, cl)
		pu.base = append(pu.base, bs[0].Available)
	}
	return pu
}

// check checks that, on url, everyone holds what they held when the case
// began changed by change[their id], and that nothing is held.
func (pu *purse) check(ctx context.Context, url string, change map[string]int64) error {
	for i, cl := range pu.cls {
		want := uint64(int64(pu.base[i]) + change[pu.ps[i].id])
		bs, err := pinned(cl, url).Wallet(ctx)
		if err != nil || len(bs) != 1 || bs[0].Available != want || bs[0].Pending != 0 {
			return fmt.Errorf("%s has %+v (%v), want %d and nothing held", pu.ps[i].id, bs, err, want)
		}
	}
	return nil
}

// book is what a case's workers share about rides or orders: who booked
// each, which worker took it, and how many are under way.
type book struct {
	mu     sync.Mutex
	by     map[string]int    // ride or order → the person who booked it
	worker map[string]string // ride or order → the driver or courier whose first step was acknowledged
	open   int
}

func newBook() *book { return &book{by: map[string]int{}, worker: map[string]string{}} }

func (b *book) add(id string, person int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.by[id] = person
	b.open++
}

func (b *book) end() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.open--
}

func (b *book) take(id, worker string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.worker[id] = worker
}

func (b *book) idle() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.open == 0
}

// booker is a person who books a ride or an order, follows it until it
// ends, and books the next.
func booker(b *book, person int, place func(ctx context.Context, n int, ack func()) (string, error), ended func(ctx context.Context, id string) (bool, error)) lossWriter {
	var cur string
	n := 0
	return func(ctx context.Context, stopping bool, ack func()) (bool, error) {
		if cur != "" {
			done, err := ended(ctx, cur)
			if done {
				b.end()
				cur = ""
			}
			return false, err
		}
		if stopping {
			return true, nil
		}
		n++
		id, err := place(ctx, n, ack)
		if err != nil {
			return false, fmt.Errorf("booking %d of person %d: %w", n, person, err)
		}
		b.add(id, person)
		cur = id
		return false, nil
	}
}

// ridesLoad: three people book rides one after another; three drivers
// accept, arrive, start and complete them. Every ride must have ended as
// completed with the driver whose acceptance was acknowledged, on every
// DC, and every wallet must show each fare paid once.
func ridesLoad(ctx context.Context, t *testing.T, w *lossWorld, urls []string) lossLoad {
	const riders = 3
	pu := newPurse(ctx, t, urls, append(slices.Clone(w.people[:riders]), w.drivers...))
	b := newBook()
	var ld lossLoad
	for i, cl := range pu.cls[:riders] {
		ld.writers = append(ld.writers, booker(b, i,
			func(ctx context.Context, n int, ack func()) (string, error) {
				r, err := cl.RequestRide(ctx, fmt.Sprintf("loss-ride-%d", n), lossPickup, lossDropoff)
				if err == nil {
					ack()
				}
				return r.RideID, err
			},
			func(ctx context.Context, id string) (bool, error) {
				r, err := cl.Ride(ctx, id)
				return r.Ended(), err
			}))
	}
	for i, d := range w.drivers {
		cl := pu.cls[riders+i]
		at := client.Point{Lat: lossPickup.Lat - float64(100+100*i)/111_195, Lng: lossPickup.Lng}
		if err := cl.DriverOnline(ctx, at); err != nil {
			t.Fatal(err)
		}
		var ride, status string
		located := time.Now()
		next := map[string]string{"offered": client.RideAccept, "accepted": client.RideArrive, "arrived": client.RideStart, "in_progress": client.RideComplete}
		ld.writers = append(ld.writers, func(ctx context.Context, stopping bool, ack func()) (bool, error) {
			if time.Since(located) > time.Second {
				if err := cl.DriverLocation(ctx, at); err != nil {
					return false, err
				}
				located = time.Now()
			}
			if ride == "" {
				if stopping && b.idle() {
					return true, nil
				}
				offers, err := cl.RideOffers(ctx)
				if err != nil || len(offers) == 0 {
					return false, err
				}
				ride, status = offers[0].RideID, "offered"
			}
			step := next[status]
			if step == "" {
				r, err := cl.Ride(ctx, ride)
				switch {
				case refused(err):
					ride = ""
					return false, nil
				case err != nil:
					return false, err
				case r.Ended() || r.DriverID != d.id:
					ride = ""
				default:
					status = r.Status
				}
				return false, nil
			}
			r, err := cl.RideStep(ctx, ride, step, fmt.Sprintf("loss-d%d-%s-%s", i, ride, step))
			switch {
			case client.Code(err) == "payment_pending":
				return false, nil // the driver's hold is on its way
			case refused(err) && step == client.RideAccept:
				ride = "" // the offer expired or went elsewhere
				return false, nil
			case refused(err):
				status = "" // look where the ride stands
				return false, nil
			case err != nil:
				return false, fmt.Errorf("driver %d, %s of %s: %w", i, step, ride, err)
			}
			ack()
			if step == client.RideAccept {
				b.take(ride, d.id)
			}
			status = r.Status
			if r.Ended() {
				ride = ""
			}
			return false, nil
		})
	}
	ld.check = func(ctx context.Context, url string) error {
		change := map[string]int64{}
		for id, i := range b.by {
			r, err := pinned(pu.cls[i], url).Ride(ctx, id)
			if err != nil {
				return fmt.Errorf("ride %s: %w", id, err)
			}
			if r.Status != "completed" || r.DriverID == "" || r.DriverID != b.worker[id] || r.Fare == 0 {
				return fmt.Errorf("ride %s is %s with driver %q and fare %d; its acceptance by %q was acknowledged", id, r.Status, r.DriverID, r.Fare, b.worker[id])
			}
			change[pu.ps[i].id] -= int64(r.Fare)
			change[r.DriverID] += int64(r.Fare)
		}
		return pu.check(ctx, url, change)
	}
	return ld
}

// foodLoad: three people order a bibimbap at a time; the merchant
// accepts, prepares and readies orders; two couriers claim, pick up and
// deliver them. Every order must be delivered by the courier whose claim
// was acknowledged and paid once, on every DC, and each person must have
// exactly the orders acknowledged.
func foodLoad(ctx context.Context, t *testing.T, w *lossWorld, urls []string) lossLoad {
	const eaters = 3
	pu := newPurse(ctx, t, urls, append(slices.Clone(w.people[:eaters]), w.couriers...))
	b := newBook()
	var ld lossLoad
	for i, cl := range pu.cls[:eaters] {
		ld.writers = append(ld.writers, booker(b, i,
			func(ctx context.Context, n int, ack func()) (string, error) {
				// Setting the cart is idempotent by itself.
				if err := cl.SetCart(ctx, w.store, lossItem, 1); err != nil {
					return "", err
				}
				ack()
				o, err := cl.Checkout(ctx, fmt.Sprintf("loss-order-%d", n), w.store, "Teheran-ro 1")
				if err == nil {
					ack()
				}
				return o.OrderID, err
			},
			func(ctx context.Context, id string) (bool, error) {
				o, err := cl.Order(ctx, id)
				return o.Ended(), err
			}))
	}
	m := w.merchant.session(urls)
	ld.writers = append(ld.writers, func(ctx context.Context, stopping bool, ack func()) (bool, error) {
		if stopping && b.idle() {
			return true, nil
		}
		os, err := m.StoreOrders(ctx, w.store)
		if err != nil {
			return false, err
		}
		for _, o := range os {
			step := map[string]string{"placed": client.OrderAccept, "accepted": client.OrderPreparing, "preparing": client.OrderReady}[o.Status]
			if step == "" {
				continue
			}
			if _, err := m.OrderStep(ctx, o.OrderID, step); refused(err) {
				continue // this DC had not seen the last step yet
			} else if err != nil {
				return false, fmt.Errorf("merchant, %s of %s: %w", step, o.OrderID, err)
			}
			ack()
		}
		return false, nil
	})
	for i, cr := range w.couriers {
		cl := pu.cls[eaters+i]
		var order string
		ld.writers = append(ld.writers, func(ctx context.Context, stopping bool, ack func()) (bool, error) {
			if order == "" {
				if stopping && b.idle() {
					return true, nil
				}
				os, err := cl.CourierOrders(ctx)
				if err != nil || len(os) == 0 {
					return false, err
				}
				o := os[i%len(os)]
				if _, err := cl.OrderStep(ctx, o.OrderID, client.OrderClaim); refused(err) {
					return false, nil // the other courier's
				} else if err != nil {
					return false, fmt.Errorf("courier %d, claim of %s: %w", i, o.OrderID, err)
				}
				ack()
				b.take(o.OrderID, cr.id)
				order = o.OrderID
				return false, nil
			}
			o, err := cl.Order(ctx, order)
			if err != nil {
				return false, err
			}
			if o.Ended() {
				order = ""
				return false, nil
			}
			step := map[string]string{"ready": client.OrderPickup, "picked_up": client.OrderDeliver}[o.Status]
			if step == "" {
				return false, nil // not ready yet
			}
			if _, err := cl.OrderStep(ctx, order, step); refused(err) {
				return false, nil
			} else if err != nil {
				return false, fmt.Errorf("courier %d, %s of %s: %w", i, step, order, err)
			}
			ack()
			return false, nil
		})
	}
	ld.check = func(ctx context.Context, url string) error {
		change := map[string]int64{}
		orders := make([]int, eaters)
		for id, i := range b.by {
			o, err := pinned(pu.cls[i], url).Order(ctx, id)
			if err != nil {
				return fmt.Errorf("order %s: %w", id, err)
			}
			if o.Status != "delivered" || o.CourierID != b.worker[id] || o.Payment == nil || o.Payment.Status != "captured" || o.Payment.Captured != o.Total {
				return fmt.Errorf("order %s is %s by courier %q (claim acknowledged by %q), payment %+v of %d", id, o.Status, o.CourierID, b.worker[id], o.Payment, o.Total)
			}
			change[pu.ps[i].id] -= int64(o.Total)
			change[o.CourierID] += int64(o.DeliveryFee)
			orders[i]++
		}
		for i, cl := range pu.cls[:eaters] {
			var mine struct {
				Orders []client.Order `json:"orders"`
			}
			if err := pinned(cl, url).Do(ctx, client.Request{Method: "GET", Path: "/v1/food/orders"}, &mine); err != nil || len(mine.Orders) != orders[i] {
				return fmt.Errorf("person %d has %d orders (%v), %d acknowledged", i, len(mine.Orders), err, orders[i])
			}
		}
		return pu.check(ctx, url, change)
	}
	return ld
}

// appLogin is one "Login with superapp" under way: each step is sent
// again, with the same key, until answered.
type appLogin struct {
	key, verifier string
	scopes        []string
	request, code string
}

func newAppLogin(key string, scopes ...string) *appLogin {
	return &appLogin{key: key, verifier: client.NewVerifier(), scopes: scopes}
}

// next takes the login's next step: the authorization request, the
// person's consent, or the code exchange by the mini-app's backend, which
// returns the mini-app's tokens.
func (l *appLogin) next(ctx context.Context, person, backend *client.Client, app client.App) (*client.AppTokens, error) {
	switch {
	case l.request == "":
		id, err := person.Authorize(ctx, client.AuthorizeInput{ClientID: app.ClientID, RedirectURI: lossRedirect,
			Scopes: l.scopes, State: l.key, Nonce: l.key, Verifier: l.verifier})
		l.request = id
		return nil, err
	case l.code == "":
		to, err := person.ApproveLogin(ctx, l.request, l.key+"-approve")
		if err != nil {
			return nil, err
		}
		back, err := url.Parse(to)
		if err != nil || back.Query().Get("state") != l.key || back.Query().Get("code") == "" {
			return nil, fmt.Errorf("consent to %s sent the browser to %q", l.key, to)
		}
		l.code = back.Query().Get("code")
		return nil, nil
	}
	tok, err := backend.ExchangeCode(ctx, app, l.code, lossRedirect, l.verifier)
	if err != nil {
		return nil, err
	}
	return &tok, nil
}

// oauthLoad: each person logs in to a mini-app again and again
// (authorization request, consent, code exchange), a moment apart. Every
// exchange makes one grant: each DC must list as many grants as exchanges
// were acknowledged, and answer /oidc/userinfo for every token.
//
// A DC takes 60 authorization requests at once from one address, then
// one a second, and all of the test's people share one address: the
// pause between logins keeps them within that, or the gap measured would
// be the throttle's.
func oauthLoad(ctx context.Context, t *testing.T, w *lossWorld, urls []string) lossLoad {
	var (
		ld     lossLoad
		cls    []*client.Client
		tokens = make([][]string, len(w.people))
	)
	backend := client.New(urls)
	for i, p := range w.people {
		cl := p.session(urls)
		cls = append(cls, cl)
		var l *appLogin
		n := 0
		next := time.Now().Add(time.Duration(i) * 75 * time.Millisecond) // the people out of step
		ld.writers = append(ld.writers, func(ctx context.Context, stopping bool, ack func()) (bool, error) {
			if l == nil {
				if stopping {
					return true, nil
				}
				if time.Now().Before(next) {
					return false, nil
				}
				n++
				l = newAppLogin(fmt.Sprintf("loss-u%d-login%d", i, n), "openid", "profile")
			}
			tok, err := l.next(ctx, cl, backend, w.loginApp)
			if client.Code(err) == "temporarily_unavailable" {
				return false, nil // the authorization request is sent again
			}
			if err != nil {
				return false, fmt.Errorf("login %s: %w", l.key, err)
			}
			ack()
			if tok != nil {
				tokens[i] = append(tokens[i], tok.AccessToken)
				l, next = nil, time.Now().Add(300*time.Millisecond)
			}
			return false, nil
		})
	}
	ld.check = func(ctx context.Context, url string) error {
		for i, p := range w.people {
			gs, err := pinned(cls[i], url).Grants(ctx)
			if err != nil {
				return err
			}
			if n := len(slices.DeleteFunc(gs, func(g client.Grant) bool { return g.Client.ClientID != w.loginApp.ClientID })); n != len(tokens[i]) {
				return fmt.Errorf("person %d has %d grants, %d code exchanges acknowledged", i, n, len(tokens[i]))
			}
			app := client.New([]string{url})
			for _, tok := range tokens[i] {
				app.UseTokens(client.Tokens{AccessToken: tok})
				if ui, err := app.UserInfo(ctx); err != nil || ui.Subject != p.id {
					return fmt.Errorf("userinfo of person %d: %+v (%v)", i, ui, err)
				}
			}
		}
		return nil
	}
	return ld
}

// miniappLoad: a mini-app asks each person to pay it, and they approve,
// again and again. Every acknowledged request must be approved on every
// DC and each person's wallet debited once per request.
func miniappLoad(ctx context.Context, t *testing.T, w *lossWorld, urls []string) lossLoad {
	pu := newPurse(ctx, t, urls, w.people)
	var (
		ld       lossLoad
		mu       sync.Mutex
		approved = map[string]string{} // pay request → the person who approved it
		change   = map[string]int64{}
	)
	for i, cl := range pu.cls {
		app := client.New(urls)
		app.UseTokens(client.Tokens{AccessToken: w.payToken[i]})
		n := 0
		var pending string // created, not yet approved
		ld.writers = append(ld.writers, func(ctx context.Context, stopping bool, ack func()) (bool, error) {
			if pending == "" {
				if stopping {
					return true, nil
				}
				n++
				r, err := app.CreatePayRequest(ctx, client.PayRequestInput{ID: fmt.Sprintf("loss-u%d-order%d", i, n), Amount: lossAmount, Description: "Loss order"})
				if err != nil {
					return false, fmt.Errorf("pay request %d of person %d: %w", n, i, err)
				}
				ack()
				pending = r.PayRequestID
				return false, nil
			}
			r, err := cl.ApprovePayRequest(ctx, pending)
			if client.Code(err) == "conflict" {
				// Approved by an attempt whose answer was lost?
				r, err = app.AppPayRequest(ctx, w.payApp, pending)
			}
			if err != nil || r.Status != "approved" {
				return false, fmt.Errorf("approval of %s: %v (%s)", pending, err, r.Status)
			}
			ack()
			mu.Lock()
			approved[pending] = w.people[i].id
			change[w.people[i].id] -= lossAmount
			mu.Unlock()
			pending = ""
			return false, nil
		})
	}
	ld.check = func(ctx context.Context, url string) error {
		app := client.New([]string{url})
		for id, user := range approved {
			if r, err := app.AppPayRequest(ctx, w.payApp, id); err != nil || r.Status != "approved" || r.UserID != user {
				return fmt.Errorf("pay request %s: %+v (%v)", id, r, err)
			}
		}
		return pu.check(ctx, url, change)
	}
	return ld
}
