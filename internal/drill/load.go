package drill

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"superapp/client"
)

const (
	password     = "violet-harbor-tangent-91"
	startBalance = 1_000_000
	opTimeout    = 20 * time.Second
)

// user is one simulated person with one phone: a failover-capable client
// homed on one DC, a group conversation, a wallet. Drivers, couriers and
// the merchant are users too, with a role instead of the mix of a person.
type user struct {
	idx   int
	role  string // "" for a person; driver, courier or merchant
	c     *client.Client
	hc    *http.Client
	id    string
	login string
	conv  string
	r     *rand.Rand
	w     *world

	mu       sync.Mutex
	chatAck  []string          // acknowledged message ids
	chatTry  map[string]bool   // every message id sent
	payAck   map[string]payRec // acknowledged payments by id
	payTry   map[string]payRec // every payment sent
	sessions []string          // acknowledged logins' sessions
	nMsg     int
	nPay     int
	nAuth    int
	lastAuth time.Time

	rides bookings
	food  bookings
	oidc  oidcUser
	mini  miniUser
	job   job // a driver's, courier's or merchant's work in progress

	// retry is the write not yet acknowledged (sent again, same id), or
	// the step that follows an acknowledged one (op.then).
	retry *op
	// pending is when the user started waiting, per feature and kind;
	// traces the requests of the writes waited for.
	pending map[string]time.Time
	traces  map[string]*trace
}

type payRec struct {
	To     int
	Amount uint64
}

// op is one operation of a user.
type op struct {
	feature string
	write   bool
	run     func(ctx context.Context) error
	// idle: the user found nothing to do (a driver without offers) and
	// waits a little longer before looking again.
	idle bool
	// then, if set, is the write that follows once this one is
	// acknowledged: another actor's step, its wait measured on its own.
	then *op
}

func newUser(idx int, endpoints []string, hc *http.Client, run string) *user {
	home := idx % len(endpoints)
	eps := append(append([]string(nil), endpoints[home:]...), endpoints[:home]...)
	return &user{
		idx:     idx,
		c:       client.New(eps, client.WithHTTPClient(hc)),
		hc:      hc,
		login:   fmt.Sprintf("drill-%s-%d@example.com", run, idx),
		r:       rand.New(rand.NewPCG(uint64(idx), 42)),
		chatTry: map[string]bool{},
		payAck:  map[string]payRec{},
		payTry:  map[string]payRec{},
		pending: map[string]time.Time{},
		traces:  map[string]*trace{},
		rides:   bookings{ack: map[string]string{}, try: map[string]bool{}},
		food:    bookings{ack: map[string]string{}, try: map[string]bool{}},
		mini:    miniUser{ack: map[string]*app{}, try: map[string]*app{}},
		oidc:    oidcUser{acked: map[string]*app{}, appc: client.New(eps, client.WithHTTPClient(hc))},
	}
}

// setup signs every user up, logs them in, funds the people's wallets,
// puts them in groups of up to four with a conversation each, and opens
// the world they share: a store, drivers and couriers on duty.
func setup(ctx context.Context, w *world) error {
	everyone := w.everyone()
	var wg sync.WaitGroup
	errs := make(chan error, len(everyone))
	// A few at a time: sign-ups hash passwords, and one answered late is
	// hedged to another DC, where it counts against the sign-ups allowed
	// from one address as well.
	slots := make(chan struct{}, 4)
	for _, u := range everyone {
		wg.Add(1)
		go func() {
			defer wg.Done()
			slots <- struct{}{}
			defer func() { <-slots }()
			if err := u.signUp(ctx); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	users := w.users
	for g := 0; g < len(users); g += 4 {
		group := users[g:min(g+4, len(users))]
		if len(group) < 2 {
			group = users[g-1 : g+1]
		}
		var others []string
		for _, o := range group[1:] {
			others = append(others, o.id)
		}
		title := fmt.Sprintf("drill group %d", g/4)
		cv, err := group[0].c.CreateConversation(ctx, others, &title)
		if err != nil {
			return fmt.Errorf("conversation: %w", err)
		}
		for _, u := range group {
			if u.conv == "" {
				u.conv = cv.ConversationID
			}
		}
	}
	return w.open(ctx)
}

// signUp makes the user's account and session; a person gets money too.
func (u *user) signUp(ctx context.Context) error {
	// One key through every attempt: a sign-up answered after all is
	// not taken for someone else's.
	var a client.Account
	for {
		err := u.c.Do(ctx, client.Request{Method: http.MethodPost, Path: "/v1/accounts", NoAuth: true, IdempotencyKey: "signup-" + u.login,
			Body: map[string]string{"email": u.login, "password": password, "name": fmt.Sprintf("Drill %s %d", u.role, u.idx)}}, &a)
		if client.Code(err) != "rate_limited" {
			if err != nil {
				return fmt.Errorf("sign up %s %d: %w", u.role, u.idx, err)
			}
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("sign up %s %d: %w", u.role, u.idx, err)
		case <-time.After(2 * time.Second):
		}
	}
	u.id = a.UserID
	if _, err := u.c.Login(ctx, u.login, password, "drill"); err != nil {
		return fmt.Errorf("login %s %d: %w", u.role, u.idx, err)
	}
	u.lastAuth = time.Now()
	if u.role == "" {
		if _, err := u.c.TopUp(ctx, "drill-initial", startBalance, "KRW"); err != nil {
			return fmt.Errorf("top up %d: %w", u.idx, err)
		}
	}
	return nil
}

// next picks the user's next operation: the unacknowledged write again,
// or a new one: a worker's next step, or for a person one drawn from a
// realistic mix. Rides, food, "Login with superapp" and mini-app payments
// are rarer than messages and transfers, as they are on a phone.
func (u *user) next() *op {
	if u.retry != nil {
		return u.retry
	}
	if u.role != "" {
		return u.work()
	}
	all := u.w.users
	x := u.r.IntN(100)
	switch {
	case x < 27:
		u.nMsg++
		id := fmt.Sprintf("u%d-m%d", u.idx, u.nMsg)
		u.chatTry[id] = true
		return &op{feature: "chat", write: true, run: func(ctx context.Context) error {
			if _, err := u.c.Send(ctx, u.conv, id, "drill message "+id, 0); err != nil {
				return err
			}
			u.mu.Lock()
			u.chatAck = append(u.chatAck, id)
			u.mu.Unlock()
			return nil
		}}
	case x < 45:
		return &op{feature: "chat", run: func(ctx context.Context) error {
			_, _, err := u.c.Messages(ctx, u.conv, 0, 0, 20)
			return err
		}}
	case x < 62:
		u.nPay++
		id := fmt.Sprintf("u%d-p%d", u.idx, u.nPay)
		to := (u.idx + 1 + u.r.IntN(len(all)-1)) % len(all)
		rec := payRec{To: to, Amount: uint64(1 + u.r.IntN(100))}
		u.payTry[id] = rec
		return &op{feature: "pay", write: true, run: func(ctx context.Context) error {
			p, err := u.c.Pay(ctx, id, all[to].id, rec.Amount, "KRW")
			if err != nil {
				return err
			}
			if p.Status != "ok" {
				return fmt.Errorf("payment %s: %s", id, p.Status)
			}
			u.mu.Lock()
			u.payAck[id] = rec
			u.mu.Unlock()
			return nil
		}}
	case x < 72:
		return &op{feature: "pay", run: func(ctx context.Context) error {
			_, err := u.c.Wallet(ctx)
			return err
		}}
	case x < 78:
		return u.rideOp()
	case x < 84:
		return u.foodOp()
	case x < 87:
		return u.oidcOp()
	case x < 91:
		return u.miniappOp()
	case x < 98 || time.Since(u.lastAuth) < 30*time.Second:
		return &op{feature: "identity", run: func(ctx context.Context) error {
			_, err := u.c.Me(ctx)
			return err
		}}
	default:
		return u.identityWrite()
	}
}

// identityWrite is a write to identity: a new login every other time,
// else a token refresh; each with one idempotency key through its
// retries, as a phone does.
func (u *user) identityWrite() *op {
	u.lastAuth = time.Now()
	u.nAuth++
	key := fmt.Sprintf("u%d-a%d", u.idx, u.nAuth)
	if u.nAuth%2 == 1 {
		return &op{feature: "identity", write: true, run: func(ctx context.Context) error {
			var t client.Tokens
			err := u.c.Do(ctx, client.Request{Method: http.MethodPost, Path: "/v1/sessions", NoAuth: true, IdempotencyKey: key,
				Body: map[string]string{"login": u.login, "password": password, "device": "drill " + key}}, &t)
			if err != nil {
				return err
			}
			u.c.UseTokens(t)
			u.mu.Lock()
			u.sessions = append(u.sessions, t.SessionID)
			u.mu.Unlock()
			return nil
		}}
	}
	refresh := u.c.RefreshToken()
	return &op{feature: "identity", write: true, run: func(ctx context.Context) error {
		var t client.Tokens
		err := u.c.Do(ctx, client.Request{Method: http.MethodPost, Path: "/v1/sessions/refresh", NoAuth: true, IdempotencyKey: key,
			Body: map[string]string{"refresh_token": refresh}}, &t)
		if err != nil {
			return err
		}
		u.c.UseTokens(t)
		return nil
	}}
}

// do runs one operation and records what the user saw.
func (u *user) do(ctx context.Context, rec *recorder, o *op) {
	key := o.feature
	if o.write {
		key += "/w"
	}
	if _, ok := u.pending[key]; !ok {
		u.pending[key] = time.Now()
		if o.write {
			u.traces[key] = &trace{start: u.pending[key]}
		}
	}
	octx, cancel := context.WithTimeout(withTrace(ctx, u.traces[key]), opTimeout)
	err := o.run(octx)
	cancel()
	switch {
	case err == nil:
		rec.outage(o.feature, u.idx, o.write, time.Since(u.pending[key]), u.traces[key])
		delete(u.pending, key)
		delete(u.traces, key)
		u.retry = o.then
	case refused(err):
		// A definite answer (a refusal): the write will not happen; no
		// outage, nothing to retry.
		delete(u.pending, key)
		delete(u.traces, key)
		u.retry = nil
		rec.failedOp(o.feature)
	default:
		rec.failedOp(o.feature)
		if o.write {
			u.retry = o
		}
	}
}

// refused reports whether err is a definite answer: the write will not
// happen, sending it again changes nothing.
func refused(err error) bool {
	var apiErr *client.Error
	var d definite
	return errors.As(err, &d) || errors.As(err, &apiErr) && apiErr.Status < 500 && apiErr.Status != http.StatusTooManyRequests
}

// definite is a wrong answer the drill does not send again: it would not
// change.
type definite struct{ error }

func wrong(format string, args ...any) error { return definite{fmt.Errorf(format, args...)} }

// live runs the user until stop, then settles: the last write is sent
// again until acknowledged, as a phone keeps it, and a person's ride or
// order in progress is followed to its end (drivers, couriers and the
// merchant work on until every person is done).
func (u *user) live(ctx context.Context, stop <-chan struct{}, rec *recorder) {
	for {
		select {
		case <-stop:
			deadline := time.Now().Add(90 * time.Second)
			for u.retry != nil && time.Now().Before(deadline) && ctx.Err() == nil {
				u.do(ctx, rec, u.retry)
			}
			for u.role == "" && time.Now().Before(deadline) && ctx.Err() == nil {
				o := u.settleOp()
				if o == nil {
					break
				}
				u.do(ctx, rec, o)
				time.Sleep(200 * time.Millisecond)
			}
			return
		default:
		}
		o := u.next()
		u.do(ctx, rec, o)
		pause := time.Duration(60+u.r.IntN(120)) * time.Millisecond
		if o.idle {
			pause += 250 * time.Millisecond
		}
		select {
		case <-stop:
		case <-time.After(pause):
		}
	}
}

// settleOp is what a person still waits for after the load: the write
// not yet acknowledged, then their ride, then their order (nil: nothing).
func (u *user) settleOp() *op {
	switch {
	case u.retry != nil:
		return u.retry
	case u.rides.active != "":
		return u.rideCheck()
	case u.food.active != "":
		return u.orderCheck()
	}
	return nil
}
