package dctest_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"superapp/internal/dctest"
)

// TestBlackout: a DC goes silent instead of burning. The process leading
// the chat and ledger streams is frozen (SIGSTOP): its connections stay
// open and nothing answers, as after a power loss. Clients that prefer it
// hedge to the other DCs with the same idempotency keys and go on sending
// messages and paying; then the frozen process is killed and started
// again. Every acknowledged message is stored exactly once and every
// acknowledged payment applied exactly once, on every DC, the restarted
// one too; the longest pause in acknowledgements is measured.
func TestBlackout(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := dctest.Start(t)
	victim := c.Leader(ctx, "CHAT")

	// Four users, each preferring the victim: every request they make
	// first goes to the DC that is about to go silent.
	vi := slices.Index(dctest.Names, victim)
	users := signUpPeople(ctx, t, c.URLs(), "blackout", 4, func(int) int { return vi })
	cv, err := users[0].c.CreateConversation(ctx, []string{users[1].id, users[2].id, users[3].id}, ptr("blackout"))
	if err != nil {
		t.Fatal(err)
	}

	var (
		mu   sync.Mutex
		acks []time.Time // every acknowledgement, message or payment
		sent = map[string]bool{}
		paid = map[int]uint64{}
	)
	const rounds = 60
	frozen := make(chan struct{})
	var wg sync.WaitGroup
	for i, u := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; n < rounds; n++ {
				id := fmt.Sprintf("u%d-m%d", i, n)
				if _, err := u.c.Send(ctx, cv.ConversationID, id, "hello "+id, 0); err != nil {
					t.Errorf("send %s: %v", id, err)
					return
				}
				mu.Lock()
				sent[id] = true
				acks = append(acks, time.Now())
				mu.Unlock()
				pid := fmt.Sprintf("u%d-p%d", i, n)
				if _, err := u.c.Pay(ctx, pid, users[(i+1)%4].id, 1, "KRW"); err != nil {
					t.Errorf("pay %s: %v", pid, err)
					return
				}
				mu.Lock()
				paid[i]++
				acks = append(acks, time.Now())
				mu.Unlock()
				if i == 0 && n == rounds/3 {
					close(frozen)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	<-frozen
	at := time.Now()
	t.Logf("%s leads CHAT: freezing it mid-traffic", victim)
	c.Freeze(victim)
	wg.Wait()
	if t.Failed() {
		return
	}
	mu.Lock()
	outage := longestGap(acks, at)
	mu.Unlock()
	t.Logf("MEASURE %d messages and payments acknowledged; longest gap between acknowledgements around the blackout: %v", len(acks), outage.Round(time.Millisecond))

	// The silent DC is declared dead: killed, and started again on its disk.
	c.Kill(victim)
	c.Restart(victim)
	c.WaitReady(victim, 2*time.Minute)
	c.WaitConverged(ctx)
	for _, d := range c.DCs {
		have := storedMessages(ctx, t, d.URL(), users[0], cv.ConversationID)
		for id := range sent {
			if have[id] != 1 {
				t.Errorf("%s: acknowledged message %s stored %d times", d.Name, id, have[id])
			}
		}
		checkRing(ctx, t, d.URL(), users, paid)
	}
	t.Logf("%d acknowledged messages and %d payments, each applied once on every DC", len(sent), rounds*len(users))
}
