package dctest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"superapp/client"
	"superapp/internal/dctest"
)

// TestEvacuate: an operator evacuates the DC leading the chat stream
// before maintenance, then stops it. Clients writing all the while see no
// failed write; every acknowledged message is stored once.
func TestEvacuate(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := dctest.Start(t)
	type user struct {
		c  *client.Client
		id string
	}
	var users []*user
	for i := 0; i < 6; i++ {
		u := &user{c: client.New(rotate(c.URLs(), i%3))}
		login := fmt.Sprintf("evac%d@example.com", i)
		a, err := u.c.SignUp(ctx, login, password, login)
		if err != nil {
			t.Fatal(err)
		}
		u.id = a.UserID
		if _, err := u.c.Login(ctx, login, password, "phone"); err != nil {
			t.Fatal(err)
		}
		if _, err := u.c.TopUp(ctx, "first", 100_000, "KRW"); err != nil {
			t.Fatal(err)
		}
		users = append(users, u)
	}
	var others []string
	for _, u := range users[1:] {
		others = append(others, u.id)
	}
	conv, err := users[0].c.CreateConversation(ctx, others, nil)
	if err != nil {
		t.Fatal(err)
	}

	for _, u := range users[1:] {
		u.c.Observe(users[0].c.Position()) // the conversation exists on every DC they use
	}
	var evacAt atomic.Pointer[time.Time]
	evacStart := func() time.Time {
		if p := evacAt.Load(); p != nil {
			return *p
		}
		return time.Now()
	}
	var (
		mu        sync.Mutex
		acked     []string
		slowest   time.Duration
		measuring atomic.Bool
		failed    atomic.Int64
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i, u := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("e%d-%d", i, n)
				t0 := time.Now()
				octx, cancel := context.WithTimeout(ctx, 30*time.Second)
				_, err := u.c.Send(octx, conv.ConversationID, id, "evacuation traffic", 0)
				if err == nil {
					_, err = u.c.Pay(octx, id, users[(i+1)%len(users)].id, 1, "KRW")
				}
				cancel()
				d := time.Since(t0)
				mu.Lock()
				if err != nil {
					failed.Add(1)
					t.Errorf("write %s failed: %v", id, err)
				} else {
					acked = append(acked, id)
				}
				if measuring.Load() {
					slowest = max(slowest, d)
					if d > time.Second {
						t.Logf("slow write %s: %v, ended %v after the evacuation began, client now on %s", id, d.Round(time.Millisecond), time.Since(evacStart()).Round(time.Millisecond), u.c.Endpoint())
					}
				}
				mu.Unlock()
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	time.Sleep(2 * time.Second)
	// Every DC lists every other: clients can discover them.
	for _, d := range c.DCs {
		if eps := get(t, d.URL()+"/v1/endpoints", ""); strings.Count(eps, `"url"`) != 3 {
			t.Errorf("%s lists %s", d.Name, eps)
		}
	}
	victim := c.Leader(ctx, "CHAT")
	asker := c.DCs[0]
	if asker.Name == victim {
		asker = c.DCs[1]
	}
	measuring.Store(true)
	t0 := time.Now()
	evacAt.Store(&t0)
	status, body, _ := do(t, "POST", asker.URL()+"/ops/evacuate", c.OpsToken(), fmt.Sprintf(`{"dc":%q}`, victim))
	if status != 200 {
		t.Fatalf("evacuate: %d %s", status, body)
	}
	t.Logf("evacuating %s: %s", victim, body)
	for {
		_, body, _ := do(t, "GET", asker.URL()+"/ops/status", c.OpsToken(), "")
		var st struct {
			Streams []struct{ Name, Leader string }
		}
		if err := json.Unmarshal([]byte(body), &st); err != nil {
			t.Fatal(err)
		}
		led := 0
		for _, s := range st.Streams {
			if s.Leader == victim || s.Leader == "" {
				led++
			}
		}
		if led == 0 && len(st.Streams) > 0 {
			break
		}
		if time.Since(t0) > time.Minute {
			t.Fatalf("%s still leads streams: %s", victim, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("MEASURE %s leads no stream %v after the evacuation", victim, time.Since(t0).Round(time.Millisecond))
	if !strings.Contains(get(t, c.DC(victim).URL()+"/readyz", c.OpsToken()), "evacuated") {
		t.Fatal("the evacuated DC does not say so")
	}
	// Planned maintenance: the DC goes down.
	t.Logf("stopping %s %v after the evacuation began", victim, time.Since(t0).Round(time.Millisecond))
	if err := c.Stop(victim); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Second)
	measuring.Store(false)
	c.Restart(victim)
	if status, body, _ := do(t, "POST", asker.URL()+"/ops/evacuate", c.OpsToken(), fmt.Sprintf(`{"dc":%q,"undo":true}`, victim)); status != 200 {
		t.Fatalf("undo: %d %s", status, body)
	}
	c.WaitReady(victim, 2*time.Minute)
	close(stop)
	wg.Wait()
	mu.Lock()
	t.Logf("MEASURE evacuation and stop of %s under load: %d writes acknowledged, %d failed, slowest write (message + payment) %v", victim, len(acked), failed.Load(), slowest.Round(time.Millisecond))
	mu.Unlock()
	if failed.Load() > 0 {
		t.Fatal("writes failed during a planned evacuation")
	}
	c.WaitConverged(ctx)
	seen := map[string]int{}
	for after := uint64(0); ; {
		ms, more, err := users[0].c.Messages(ctx, conv.ConversationID, after, 0, 200)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			seen[m.ID]++
			after = m.Seq
		}
		if !more || len(ms) == 0 {
			break
		}
	}
	for _, id := range acked {
		if seen[id] != 1 {
			t.Fatalf("message %s stored %d times", id, seen[id])
		}
	}
}
