package drill

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"superapp/client"
)

// "Login with superapp" is reported under its own feature, "oauth", not
// folded into "identity" or "miniapp": it is served by its own stream
// (OAUTH) and service, so it fails, recovers and is measured on its own —
// under "identity" an OAUTH outage would hide behind the IDENTITY
// stream's figures, and under "miniapp" behind MINIAPP's. A new key adds
// to the report's contract and changes none of the existing ones.

// appRedirect is where the drill's mini-apps send the browser back; it
// is never fetched (the consent answer carries the code).
const appRedirect = "https://drill-app.example.com/callback"

// appCap is how many pay requests one mini-app gets before its user
// moves on to another: a mini-app's delivery log shows its latest 100
// deliveries, and the drill reads back every one of them.
const appCap = 80

// app is a mini-app the drill registered: its credentials, its owner (a
// developer: another drill user, as one cannot pay one's own mini-app)
// and the access token of its user's latest login.
type app struct {
	creds client.App
	owner *user
	token string
	n     int // pay requests sent
	// grants is how many logins to the mini-app had their code exchanged:
	// each made one grant.
	grants int
}

// oidcUser is a person's logins with superapp to mini-apps.
type oidcUser struct {
	apps  []*app
	login *oidcLogin // the login under way
	n     int
	last  time.Time
	ack   []string        // acknowledged logins' consent request ids
	acked map[string]*app // … and their mini-apps
	appc  *client.Client  // the mini-app's backend, with the user's token
}

// oidcLogin is one login's progress: each step is sent again, with the
// same key, until answered.
type oidcLogin struct {
	key      string
	app      *app
	verifier string
	state    string
	request  string
	code     string
	sent     bool // the code was sent for exchange
	tokens   *client.AppTokens
}

// current is the mini-app the person logs in to and pays: a new one once
// the last has had appCap pay requests.
func (o *oidcUser) current() *app {
	if len(o.apps) == 0 || o.apps[len(o.apps)-1].n >= appCap {
		return nil
	}
	return o.apps[len(o.apps)-1]
}

// oidcOp is "Login with superapp": every twenty seconds or so a new
// login (authorization code flow with PKCE: authorize, consent, code
// exchange by the mini-app's backend, then /oidc/userinfo); otherwise
// the mini-app asks who its user is.
func (u *user) oidcOp() *op {
	o := &u.oidc
	if a := o.current(); a != nil && a.token != "" && o.login == nil && time.Since(o.last) < 20*time.Second {
		return &op{feature: "oauth", run: func(ctx context.Context) error {
			_, err := u.userInfo(ctx, a)
			return err
		}}
	}
	return u.loginOp()
}

// loginOp logs the person in to their current mini-app (registering a new
// one first when they need one).
func (u *user) loginOp() *op {
	o := &u.oidc
	o.last = time.Now()
	if o.login == nil {
		o.n++
		o.login = &oidcLogin{key: fmt.Sprintf("u%d-login%d", u.idx, o.n), verifier: client.NewVerifier(), state: client.NewKey()}
	}
	l := o.login
	return &op{feature: "oauth", write: true, run: func(ctx context.Context) error {
		err := u.loginSteps(ctx, l)
		if refused(err) {
			o.login = nil // start again next time
		}
		return err
	}}
}

func (u *user) loginSteps(ctx context.Context, l *oidcLogin) error {
	o := &u.oidc
	if l.app == nil {
		a := o.current()
		if a == nil {
			var err error
			if a, err = u.newApp(ctx, len(o.apps)); err != nil {
				return err
			}
			o.apps = append(o.apps, a)
		}
		l.app = a
	}
	a := l.app
	if l.request == "" {
		id, err := u.c.Authorize(ctx, client.AuthorizeInput{ClientID: a.creds.ClientID, RedirectURI: appRedirect,
			Scopes: []string{"openid", "profile", "pay", "offline_access"}, State: l.state, Nonce: l.key, Verifier: l.verifier})
		if err != nil {
			return err
		}
		l.request = id
	}
	if l.code == "" {
		to, err := u.c.ApproveLogin(ctx, l.request, l.key+"-approve")
		if err != nil {
			return err
		}
		back, err := url.Parse(to)
		if err != nil || back.Query().Get("state") != l.state || back.Query().Get("code") == "" {
			return wrong("consent sent the browser to %q", to)
		}
		l.code = back.Query().Get("code")
	}
	if l.tokens == nil {
		l.sent = true
		t, err := o.appc.ExchangeCode(ctx, a.creds, l.code, appRedirect, l.verifier)
		if err != nil {
			return err
		}
		l.tokens = &t
		u.mu.Lock()
		a.grants++
		u.mu.Unlock()
	}
	a.token = l.tokens.AccessToken
	if _, err := u.userInfo(ctx, a); err != nil {
		return err
	}
	u.mu.Lock()
	o.ack = append(o.ack, l.request)
	o.acked[l.request] = a
	u.mu.Unlock()
	o.login = nil
	return nil
}

// userInfo is the mini-app asking who its user is; the subject must be
// the person.
func (u *user) userInfo(ctx context.Context, a *app) (client.UserInfo, error) {
	o := &u.oidc
	o.appc.UseTokens(client.Tokens{AccessToken: a.token})
	ui, err := o.appc.UserInfo(ctx)
	if err != nil {
		if refused(err) {
			a.token = "" // expired or revoked: log in again
		}
		return ui, err
	}
	if ui.Subject != u.id {
		return ui, wrong("userinfo of %s names %q", u.id, ui.Subject)
	}
	return ui, nil
}

// newApp registers a mini-app for the person, owned by the next person
// (its developer), its webhooks going to the drill's backend.
func (u *user) newApp(ctx context.Context, n int) (*app, error) {
	all := u.w.users
	owner := all[(u.idx+1)%len(all)]
	in := client.AppInput{Name: fmt.Sprintf("Drill app %d.%d", u.idx, n), RedirectURIs: []string{appRedirect},
		Scopes: []string{"profile", "pay"}}
	if u.w.hooks != nil {
		in.WebhookURL = u.w.hooks.url(fmt.Sprintf("u%d-app%d", u.idx, n))
	}
	creds, err := owner.c.RegisterApp(ctx, fmt.Sprintf("u%d-app%d", u.idx, n), in)
	if err != nil {
		return nil, err
	}
	if u.w.hooks != nil {
		secret, err := owner.c.WebhookSecret(ctx, creds.ClientID)
		if err != nil {
			return nil, err
		}
		u.w.hooks.expect(fmt.Sprintf("u%d-app%d", u.idx, n), creds.ClientID, secret)
	}
	return &app{creds: creds, owner: owner}, nil
}
