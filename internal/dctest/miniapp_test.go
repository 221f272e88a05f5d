package dctest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"superapp/client"
	"superapp/internal/dctest"
	"superapp/internal/miniapp"
)

// TestWebhooksSurviveDCLoss SIGKILLs the DC that is attempting a webhook
// delivery while the mini-app's backend holds the request: the lease it
// recorded in the log expires, another DC attempts the delivery again with
// the same delivery id, and every event reaches the backend (which dedupes
// by id).
func TestWebhooksSurviveDCLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	// The mini-app's backend: it holds the first delivery until released.
	var (
		mu      sync.Mutex
		seen    = map[string]int{}
		first   = make(chan string, 1)
		release = make(chan struct{})
		once    sync.Once
	)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		id := r.Header.Get(miniapp.HeaderDeliveryID)
		held := false
		once.Do(func() { held = true })
		if held {
			first <- id
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return // the DC attempting it is dead by now
		}
		mu.Lock()
		seen[id]++
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	defer hook.Close()
	defer close(release)

	t.Setenv("SUPERAPP_WEBHOOK_LOOPBACK", "true") // the test's receiver is on loopback; the DCs inherit it
	c := dctest.Start(t)
	dev, alice := client.New(c.URLs()), client.New(c.URLs())
	for i, u := range []*client.Client{dev, alice} {
		login := fmt.Sprintf("hooks%d@example.com", i)
		if _, err := u.SignUp(ctx, login, password, []string{"Dev", "Alice"}[i]); err != nil {
			t.Fatal(err)
		}
		if _, err := u.Login(ctx, login, password, "phone"); err != nil {
			t.Fatal(err)
		}
	}
	home := c.DCs[0]
	body := `{"name":"Taxi Plus","redirect_uris":["https://taxi.example.com/cb"],"scopes":["pay"],"webhook_url":"` + hook.URL + `/hooks"}`
	req, _ := http.NewRequestWithContext(ctx, "POST", home.URL()+"/v1/oauth/clients", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+dev.AccessToken())
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var app struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	_ = json.NewDecoder(res.Body).Decode(&app)
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("register: %d", res.StatusCode)
	}

	// Alice logs in to the mini-app on home (PKCE) and tops up.
	// Every DC names the first one's URL as the issuer.
	hc := &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	octx := oidc.ClientContext(ctx, hc)
	provider, err := oidc.NewProvider(octx, home.URL()+"/oidc")
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	conf := oauth2.Config{ClientID: app.ClientID, ClientSecret: app.ClientSecret, Endpoint: provider.Endpoint(),
		RedirectURL: "https://taxi.example.com/cb", Scopes: []string{oidc.ScopeOpenID, "pay"}}
	conf.Endpoint.AuthStyle = oauth2.AuthStyleInHeader
	verifier := oauth2.GenerateVerifier()
	res, err = hc.Get(conf.AuthCodeURL("st4te", oauth2.S256ChallengeOption(verifier)))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	loc, _ := url.Parse(res.Header.Get("Location"))
	if loc == nil {
		t.Fatalf("authorize: %d", res.StatusCode)
	}
	r := call(ctx, t, home.URL(), "POST", "/v1/oauth/requests/"+loc.Query().Get("request")+"/approve", alice.AccessToken())
	cb, _ := url.Parse(fmt.Sprint(r.body["redirect_to"]))
	tok, err := conf.Exchange(octx, cb.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	if r := callBody(ctx, t, home.URL(), "POST", "/v1/wallet/topups", alice.AccessToken(), `{"id":"top-1","amount":50000,"currency":"KRW"}`); r.status >= 300 {
		t.Fatalf("top up: %d %s", r.status, r.raw)
	}

	// Three pay requests, approved: three deliveries.
	const n = 3
	for i := range n {
		r := callBody(ctx, t, home.URL(), "POST", "/v1/miniapp/pay-requests", tok.AccessToken, fmt.Sprintf(`{"id":"order-%d","amount":1000,"description":"Ride %d"}`, i, i))
		if r.status != 201 {
			t.Fatalf("pay request: %d %s", r.status, r.raw)
		}
		if r := call(ctx, t, home.URL(), "POST", "/v1/pay-requests/"+r.body["pay_request_id"].(string)+"/approve", alice.AccessToken()); r.status != 200 {
			t.Fatalf("approve: %d %s", r.status, r.raw)
		}
	}

	// The first delivery is being attempted and held: find who attempts it
	// (its lease is in the log) and burn that DC.
	var held string
	select {
	case held = <-first:
	case <-ctx.Done():
		t.Fatal("no webhook arrived")
	}
	var victim string
	for victim == "" && ctx.Err() == nil {
		for _, d := range c.DCs {
			r := call(ctx, t, d.URL(), "GET", "/v1/apps/"+app.ClientID+"/deliveries", dev.AccessToken())
			ds, _ := r.body["deliveries"].([]any)
			for _, x := range ds {
				if m := x.(map[string]any); m["delivery_id"] == held && m["leased_by"] != nil {
					victim = m["leased_by"].(string)
				}
			}
			if victim != "" {
				break
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.Kill(victim)
	fire := time.Now()
	t.Logf("SIGKILL %s while it attempted delivery %s", victim, held)

	// Every delivery arrives, the held one from another DC with its id.
	var alive *dctest.DC
	for _, d := range c.DCs {
		if d.Name != victim {
			alive = d
			break
		}
	}
	for ctx.Err() == nil {
		mu.Lock()
		done := seen[held] > 0 && len(seen) == n
		mu.Unlock()
		if done {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	mu.Lock()
	got := len(seen)
	mu.Unlock()
	if got != n || seen[held] == 0 {
		t.Fatalf("backend received %d distinct deliveries (held one %d times), want %d", got, seen[held], n)
	}
	t.Logf("MEASURE held delivery arrived %v after SIGKILL of %s", time.Since(fire).Round(time.Millisecond), victim)
	r = call(ctx, t, alive.URL(), "GET", "/v1/apps/"+app.ClientID+"/deliveries", dev.AccessToken())
	for _, x := range r.body["deliveries"].([]any) {
		m := x.(map[string]any)
		if m["delivery_id"] != held {
			continue
		}
		at := m["attempts"].([]any)
		last := at[len(at)-1].(map[string]any)
		if m["status"] != "delivered" || last["dc"] == victim {
			t.Fatalf("delivery log after the fire: %v", m)
		}
	}
}

// callBody is call with a JSON body.
func callBody(ctx context.Context, t *testing.T, base, method, path, token, body string) apiResp {
	t.Helper()
	for {
		req, _ := http.NewRequestWithContext(ctx, method, base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := http.DefaultClient.Do(req)
		if err == nil {
			raw, _ := io.ReadAll(res.Body)
			res.Body.Close()
			r := apiResp{status: res.StatusCode, header: res.Header, raw: string(raw)}
			_ = json.Unmarshal(raw, &r.body)
			if r.status != http.StatusServiceUnavailable {
				return r
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s %s%s: %v", method, base, path, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}
