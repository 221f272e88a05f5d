package httpapi_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"superapp/client"
	"superapp/internal/node"
	"superapp/internal/node/nodetest"
)

// TestFeatureIsolation: one feature failing — its handlers panicking, its
// stream dead, or flooded far beyond its capacity — leaves the others at
// ≥ 99.9% success, and the failing feature sheds load with 503 and
// Retry-After instead of holding everyone up.
func TestFeatureIsolation(t *testing.T) {
	n := nodetest.StartConfig(t, node.Config{OpsToken: "ops", WriteTimeout: 2 * time.Second})
	e := &env{t: t, url: nodetest.URL(n)}
	ctx := context.Background()
	alice, _ := e.user("Alice")
	bob, _ := e.user("Bob")
	if _, err := alice.TopUp(ctx, "fund", 1_000_000, "KRW"); err != nil {
		t.Fatal(err)
	}
	conv, err := alice.CreateConversation(ctx, []string{bob.UserID()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	path := "/v1/conversations/" + conv.ConversationID + "/messages"
	var seq atomic.Int64
	// others runs payments, balance reads and profile reads, 16 at a time,
	// and returns the share that succeeded.
	others := func(total int) float64 {
		var ok atomic.Int64
		var wg sync.WaitGroup
		work := make(chan int)
		for g := 0; g < 16; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range work {
					var err error
					switch i % 3 {
					case 0:
						_, err = alice.Pay(ctx, fmt.Sprintf("iso-%d", seq.Add(1)), bob.UserID(), 1, "KRW")
					case 1:
						_, err = alice.Wallet(ctx)
					default:
						_, err = bob.Me(ctx)
					}
					if err == nil {
						ok.Add(1)
					}
				}
			}()
		}
		for i := 0; i < total; i++ {
			work <- i
		}
		close(work)
		wg.Wait()
		return float64(ok.Load()) / float64(total)
	}
	inject := func(feature, fault string) {
		t.Helper()
		if r := e.do("POST", "/ops/faults", "ops", fmt.Sprintf(`{"feature":%q,"fault":%q}`, feature, fault)); r.status != 200 {
			t.Fatalf("inject %s %s: %d %s", fault, feature, r.status, r.raw)
		}
	}
	// Only operators inject faults; nonsense is refused.
	for _, tok := range []string{"", alice.AccessToken()} {
		if r := e.do("POST", "/ops/faults", tok, `{"feature":"chat","fault":"panic"}`); r.status != 403 {
			t.Fatalf("fault injection by %.8q: %d", tok, r.status)
		}
	}
	for body, field := range map[string]string{`{"feature":"ops","fault":"panic"}`: "feature", `{"feature":"chat","fault":"fire"}`: "fault"} {
		if r := e.do("POST", "/ops/faults", "ops", body); r.status != 400 || r.errField() != field {
			t.Fatalf("%s: %d %s", body, r.status, r.raw)
		}
	}

	// 1. Chat's handlers panic on every call.
	inject("chat", "panic")
	req, _ := http.NewRequest("POST", e.url+path, strings.NewReader(`{"id":"p1","text":"hi"}`))
	req.Header.Set("Authorization", "Bearer "+alice.AccessToken())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 500 || !strings.Contains(string(raw), `"internal"`) || strings.Contains(string(raw), "fault injected") {
		t.Fatalf("panicking chat: %d %s", resp.StatusCode, raw)
	}
	if rate := others(600); rate < 0.999 {
		t.Fatalf("while chat panics the others succeed %.2f%%", 100*rate)
	}
	inject("chat", "none")

	// 2. Chat's stream stops answering while a crowd keeps sending: the
	// crowd fills chat's slots, the rest of it is shed at once.
	inject("chat", "stall")
	var shed, timedOut, other atomic.Int64
	var crowd sync.WaitGroup
	for i := 0; i < 700; i++ {
		crowd.Add(1)
		go func() {
			defer crowd.Done()
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			_, err := alice.Send(cctx, conv.ConversationID, fmt.Sprintf("stall-%d", i), "into the void", 0)
			var ae *client.Error
			switch {
			case err == nil:
				other.Add(1)
			case errors.Is(err, context.DeadlineExceeded):
				timedOut.Add(1)
			case errors.As(err, &ae) && ae.Code == "overloaded":
				shed.Add(1)
			default:
				timedOut.Add(1) // unavailable after the write timeout, retried by the client
			}
		}()
	}
	time.Sleep(200 * time.Millisecond)
	// One more sender is turned away at once, told when to come back.
	req, _ = http.NewRequest("POST", e.url+path, strings.NewReader(`{"id":"late","text":"hi"}`))
	req.Header.Set("Authorization", "Bearer "+alice.AccessToken())
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(raw), `"overloaded"`) {
		t.Fatalf("a sender beyond chat's capacity: %d %v %s", resp.StatusCode, resp.Header, raw)
	}
	rate := others(600)
	crowd.Wait()
	t.Logf("MEASURE chat's stream stalled, 700 senders: %d gave up waiting, %d sends acknowledged; the others %.2f%% ok", timedOut.Load(), other.Load(), 100*rate)
	if rate < 0.999 {
		t.Fatalf("while chat's stream is dead the others succeed %.2f%%", 100*rate)
	}
	if other.Load() > 0 {
		t.Fatalf("%d sends acknowledged by a dead stream", other.Load())
	}
	inject("chat", "none")
	if _, err := alice.Send(ctx, conv.ConversationID, "after-stall", "back", 0); err != nil {
		t.Fatalf("chat after the stall: %v", err)
	}

	// 3. Chat flooded far beyond its capacity.
	var flood sync.WaitGroup
	var floodShed, floodOK, floodBad atomic.Int64
	var badSample atomic.Value
	for i := 0; i < 2000; i++ {
		flood.Add(1)
		go func() {
			defer flood.Done()
			req, _ := http.NewRequest("GET", e.url+path+"?limit=50", nil)
			req.Header.Set("Authorization", "Bearer "+alice.AccessToken())
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				floodBad.Add(1)
				badSample.Store(err.Error())
				return
			}
			resp.Body.Close()
			switch {
			case resp.StatusCode == 200:
				floodOK.Add(1)
			case resp.StatusCode == 503 && resp.Header.Get("Retry-After") != "":
				floodShed.Add(1)
			default:
				floodBad.Add(1)
				badSample.Store(resp.Status)
			}
		}()
	}
	rate = others(600)
	flood.Wait()
	t.Logf("MEASURE chat flooded with 2000 concurrent reads: %d served, %d shed with 503 + Retry-After, %d other; the others %.2f%% ok",
		floodOK.Load(), floodShed.Load(), floodBad.Load(), 100*rate)
	if rate < 0.999 {
		t.Fatalf("while chat is flooded the others succeed %.2f%%", 100*rate)
	}
	if floodBad.Load() > 0 {
		t.Fatalf("flooded chat answered %d times with neither 200 nor 503+Retry-After, e.g. %v", floodBad.Load(), badSample.Load())
	}
}
