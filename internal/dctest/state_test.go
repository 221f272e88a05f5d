package dctest_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"superapp/internal/dctest"
	"superapp/internal/store/storetest"
)

// TestStateOutlivesItsHistory runs three DCs whose streams keep only ten
// seconds of entries, under chat and payment load, and burns the same DC
// three ways: SIGKILLed and restarted on its own disk (it resumes from its
// store: no entry is applied twice and it does not start over), restarted
// with a corrupted store (rebuilt from a checkpoint, with one log line
// saying why), and wiped after its streams were trimmed past their first
// entry (rebuilt from a checkpoint; the log alone could not). Every time it
// converges with the others, and every acknowledged message and payment is
// there. Last, its chat read model lags while the others trim the log past
// it: it restarts itself and rebuilds from a checkpoint.
func TestStateOutlivesItsHistory(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	c := dctest.StartWith(t, "--log-retention", "10s")

	// Users on every DC; they chat and pay each other all along.
	users := signUpPeople(ctx, t, c.URLs(), "state", 4, func(i int) int { return i % 3 })
	cv, err := users[0].c.CreateConversation(ctx, []string{users[1].id, users[2].id, users[3].id}, ptr("state"))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	sent := map[string]bool{}    // acknowledged message ids
	paid := map[int]uint64{}     // acknowledged payments' total per payer
	unsure := map[int][]string{} // payments whose answer was lost: settled after the load
	load, stopLoad := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for i, u := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; load.Err() == nil; n++ {
				id := fmt.Sprintf("u%d-m%d", i, n)
				if _, err := u.c.Send(load, cv.ConversationID, id, "hello "+id, 0); err == nil {
					mu.Lock()
					sent[id] = true
					mu.Unlock()
				}
				pid := fmt.Sprintf("u%d-p%d", i, n)
				_, err := u.c.Pay(load, pid, users[(i+1)%4].id, 1, "KRW")
				mu.Lock()
				if err == nil {
					paid[i]++
				} else {
					unsure[i] = append(unsure[i], pid)
				}
				mu.Unlock()
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	victim := dctest.Names[2]
	if c.Leader(ctx, "CHAT") == victim {
		victim = dctest.Names[1]
	}
	log := c.DC(victim).LogPath
	sinceStart := func() int64 { st, _ := os.Stat(log); return st.Size() }

	// 1. SIGKILL, restart on its own disk: it resumes where its store is.
	time.Sleep(3 * time.Second)
	c.Kill(victim)
	mark := sinceStart()
	c.Restart(victim)
	took := c.WaitReady(victim, 2*time.Minute)
	if line := logAfter(log, mark, "resuming from the state store"); line == "" {
		t.Fatalf("%s did not resume from its store; log:\n%s", victim, logFrom(log, mark))
	}
	for _, stream := range []string{"CHAT", "LEDGER", "IDENTITY"} {
		if line := logAfter(log, mark, `"read model restored from the state store"`, `"stream":"`+stream+`"`); line == "" {
			t.Fatalf("%s replayed %s from its first entry instead of resuming; log:\n%s", victim, stream, logFrom(log, mark))
		}
	}
	t.Logf("restart on its own disk: ready %v after start", took)
	c.WaitConverged(ctx)

	// 2. A corrupted store: rebuilt, one clear line saying why.
	if _, err := opsCheckpoint(ctx, c, dctest.Names[0]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	c.Kill(victim)
	t.Logf("corrupted 256 bytes of %s", storetest.Corrupt(t, filepath.Join(c.DC(victim).DataDir, "state")))
	mark = sinceStart()
	c.Restart(victim)
	c.WaitReady(victim, 2*time.Minute)
	if line := logAfter(log, mark, "rebuilding the state store"); !strings.Contains(line, "corrupt") && !strings.Contains(line, "unreadable") {
		t.Fatalf("no clear line about the corrupt store; log:\n%s", logFrom(log, mark))
	}
	if line := logAfter(log, mark, "state store loaded from a checkpoint"); line == "" {
		t.Fatalf("the corrupt store was not rebuilt from a checkpoint; log:\n%s", logFrom(log, mark))
	}
	c.WaitConverged(ctx)

	// 3. Trimmed streams: the first entries are gone from the log; a
	// wiped DC rebuilds from a checkpoint and the entries after it.
	for ctx.Err() == nil && c.StreamInfo(ctx, "CHAT").State.FirstSeq <= 1 {
		time.Sleep(time.Second)
	}
	first := c.StreamInfo(ctx, "CHAT").State.FirstSeq
	if _, err := opsCheckpoint(ctx, c, dctest.Names[0]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	c.Kill(victim)
	c.Wipe(victim)
	mark = sinceStart()
	c.Restart(victim)
	took = c.WaitReady(victim, 2*time.Minute)
	if line := logAfter(log, mark, "state store loaded from a checkpoint"); line == "" {
		t.Fatalf("wiped after trimming (CHAT begins at %d) but not rebuilt from a checkpoint; log:\n%s", first, logFrom(log, mark))
	}
	t.Logf("wiped after trimming (CHAT begins at %d): ready from a checkpoint %v after start", first, took)
	c.WaitConverged(ctx)

	// 4. Its chat read model lags (as on a starved machine) while the
	// others trim the log past it: the entries it needs next are gone, so
	// it restarts itself in place and rebuilds from a checkpoint, with no
	// operator.
	lag := func(fault string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, "POST", c.DC(victim).URL()+"/ops/faults", strings.NewReader(`{"feature":"chat","fault":"`+fault+`"}`))
		req.Header.Set("Authorization", "Bearer "+c.OpsToken())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("fault %s on %s: %d", fault, victim, resp.StatusCode)
		}
	}
	lag("lag") // a restart clears it
	mark = sinceStart()
	tail := c.StreamInfo(ctx, "CHAT").State.LastSeq
	for ctx.Err() == nil && c.StreamInfo(ctx, "CHAT").State.FirstSeq <= tail+1 {
		if _, err := opsCheckpoint(ctx, c, dctest.Names[0]); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Second)
	}
	first = c.StreamInfo(ctx, "CHAT").State.FirstSeq
	for deadline := time.Now().Add(time.Minute); logAfter(log, mark, "restarting this node to rebuild its state") == ""; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("CHAT was trimmed past its read model (begins at %d, it applied at most %d) but it did not restart; log:\n%s", first, tail, logFrom(log, mark))
		}
	}
	took = c.WaitReady(victim, 2*time.Minute)
	if line := logAfter(log, mark, "state store loaded from a checkpoint"); line == "" {
		t.Fatalf("restarted but not rebuilt from a checkpoint; log:\n%s", logFrom(log, mark))
	}
	t.Logf("read model trimmed past (CHAT begins at %d, it applied at most %d): restarted itself, ready %v after", first, tail, took)

	stopLoad()
	wg.Wait()
	// A payment whose answer was lost may or may not have happened: ask
	// again with its id, which settles it either way, exactly once.
	for i, ids := range unsure {
		for _, pid := range ids {
			if _, err := users[i].c.Pay(ctx, pid, users[(i+1)%4].id, 1, "KRW"); err != nil {
				t.Fatalf("settle payment %s: %v", pid, err)
			}
			paid[i]++
		}
	}
	c.WaitConverged(ctx)
	// Every acknowledged message and payment, on every DC, the victim too.
	mu.Lock()
	defer mu.Unlock()
	for _, d := range c.DCs {
		have := storedMessages(ctx, t, d.URL(), users[0], cv.ConversationID)
		for id := range sent {
			if have[id] != 1 {
				t.Errorf("%s: acknowledged message %s stored %d times", d.Name, id, have[id])
			}
		}
		checkRing(ctx, t, d.URL(), users, paid)
	}
	t.Logf("%d acknowledged messages, every one on every DC", len(sent))
}

func opsCheckpoint(ctx context.Context, c *dctest.Cluster, dc string) (string, error) {
	// A checkpoint replaces the DC's last one: asking again is safe, and
	// an attempt that outlives its minute is asked again.
	var err error
	for attempt := 0; attempt < 3 && ctx.Err() == nil; attempt++ {
		actx, cancel := context.WithTimeout(ctx, time.Minute)
		err = postCheckpoint(actx, c.DC(dc).URL(), c.OpsToken())
		cancel()
		if err == nil {
			return "ok", nil
		}
	}
	return "", err
}

func postCheckpoint(ctx context.Context, url, token string) error {
	req, _ := http.NewRequestWithContext(ctx, "POST", url+"/ops/checkpoint", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("checkpoint on %s: %d", url, resp.StatusCode)
	}
	return nil
}

// logAfter returns the first line of a DC's log after offset that holds
// every one of want.
func logAfter(path string, offset int64, want ...string) string {
	for _, line := range strings.Split(logFrom(path, offset), "\n") {
		found := true
		for _, w := range want {
			found = found && strings.Contains(line, w)
		}
		if found {
			return line
		}
	}
	return ""
}

func logFrom(path string, offset int64) string {
	b, err := os.ReadFile(path)
	if err != nil || int64(len(b)) < offset {
		return ""
	}
	return string(b[offset:])
}

func ptr[T any](v T) *T { return &v }
