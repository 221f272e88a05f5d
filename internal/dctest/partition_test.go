package dctest_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"superapp/client"
	"superapp/internal/dctest"
)

// TestPartition cuts one DC off from the other two while its process keeps
// running: it must refuse writes at once (never acknowledge what it cannot
// commit), serve reads marked stale, report itself not ready and end its
// event streams; clients move to the majority. After the heal it converges
// with nothing lost or doubled.
func TestPartition(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, mesh := dctest.StartMeshed(t)
	dc1, dc3 := c.DC("dc1").URL(), c.DC("dc3").URL()

	// Alice lives on dc3 (the one to be cut off), Bob on dc1.
	alice := client.New(rotate(c.URLs(), 2))
	bob := client.New(c.URLs())
	var ids [2]string
	for i, u := range []*client.Client{alice, bob} {
		login := []string{"alice-p@example.com", "bob-p@example.com"}[i]
		a, err := u.SignUp(ctx, login, password, login)
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = a.UserID
		if _, err := u.Login(ctx, login, password, "phone"); err != nil {
			t.Fatal(err)
		}
		if _, err := u.TopUp(ctx, "first", 10_000, "KRW"); err != nil {
			t.Fatal(err)
		}
	}
	conv, err := alice.CreateConversation(ctx, []string{ids[1]}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Send(ctx, conv.ConversationID, "before", "before the cut", 0); err != nil {
		t.Fatal(err)
	}
	// Alice's phone streams events from dc3.
	frames := alice.Stream(ctx, 0)

	cut := time.Now()
	mesh.Isolate("dc3")
	for !strings.Contains(get(t, dc3+"/readyz", c.OpsToken()), "isolated") {
		if time.Since(cut) > time.Minute {
			t.Fatal("dc3 still ready a minute after it was cut off")
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("MEASURE dc3 reports itself not ready (isolated) %v after the cut", time.Since(cut).Round(time.Millisecond))

	// A write on the cut-off DC is refused at once, never acknowledged.
	t0 := time.Now()
	status, body, _ := do(t, "POST", dc3+"/v1/conversations/"+conv.ConversationID+"/messages", alice.AccessToken(), `{"id":"on-dc3","text":"cannot commit"}`)
	if status != http.StatusServiceUnavailable || !strings.Contains(body, `"dc_isolated"`) {
		t.Fatalf("write on the isolated DC: %d %s", status, body)
	}
	t.Logf("MEASURE write on the isolated DC refused in %v", time.Since(t0).Round(time.Millisecond))
	// Reads still work there, marked stale.
	status, body, hdr := do(t, "GET", dc3+"/v1/conversations/"+conv.ConversationID+"/messages", alice.AccessToken(), "")
	if status != http.StatusOK || hdr.Get("X-Superapp-Stale") != "true" || !strings.Contains(body, "before the cut") {
		t.Fatalf("read on the isolated DC: %d %v %s", status, hdr, body)
	}
	// Alice's client moves to the majority: her message is acknowledged,
	// and her event stream, moved too, delivers it.
	t0 = time.Now()
	if _, err := alice.Send(ctx, conv.ConversationID, "during", "during the cut", 0); err != nil {
		t.Fatal(err)
	}
	t.Logf("MEASURE a write of a client homed on the isolated DC acknowledged in %v (failover included)", time.Since(t0).Round(time.Millisecond))
	if _, err := bob.Pay(ctx, "during-pay", ids[0], 700, "KRW"); err != nil {
		t.Fatal(err)
	}
	waitFrame(t, ctx, frames, "during")
	t.Logf("MEASURE the isolated DC's event stream moved and delivered the new message %v after the send", time.Since(t0).Round(time.Millisecond))
	// The cut-off DC has not seen it: it could not have.
	if _, body, _ := do(t, "GET", dc3+"/v1/conversations/"+conv.ConversationID+"/messages", alice.AccessToken(), ""); strings.Contains(body, "during the cut") {
		t.Fatal("the isolated DC has a message committed without it")
	}

	heal := time.Now()
	mesh.HealAll()
	took := c.WaitReady("dc3", 2*time.Minute)
	t.Logf("MEASURE dc3 ready %v after the heal", took.Round(time.Millisecond))
	_ = heal
	c.WaitConverged(ctx)
	// Everything is on dc3 now, once.
	_, body, _ = do(t, "GET", dc3+"/v1/conversations/"+conv.ConversationID+"/messages", alice.AccessToken(), "")
	if strings.Count(body, "during the cut") != 1 || strings.Count(body, "before the cut") != 1 || strings.Contains(body, "cannot commit") {
		t.Fatalf("after the heal dc3 has: %s", body)
	}
	_, body, _ = do(t, "GET", dc3+"/v1/wallet", alice.AccessToken(), "")
	if !strings.Contains(body, `"available":10700`) {
		t.Fatalf("alice's wallet on dc3 after the heal: %s", body)
	}
	_, body, _ = do(t, "GET", dc1+"/v1/wallet", bob.AccessToken(), "")
	if !strings.Contains(body, `"available":9300`) {
		t.Fatalf("bob's wallet after the heal: %s", body)
	}
}

func waitFrame(t *testing.T, ctx context.Context, frames <-chan client.Frame, msgID string) {
	t.Helper()
	deadline := time.After(time.Minute)
	for {
		select {
		case f := <-frames:
			for _, ev := range f.Events {
				b, _ := json.Marshal(ev)
				if strings.Contains(string(b), `"id":"`+msgID+`"`) {
					return
				}
			}
		case <-deadline:
			t.Fatalf("message %s never reached the event stream", msgID)
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
	}
}

func get(t *testing.T, url, token string) string {
	_, body, _ := do(t, "GET", url, token, "")
	return body
}

func do(t *testing.T, method, url, token, body string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", "k-"+method+url)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}
