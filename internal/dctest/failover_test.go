package dctest_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"superapp/client"
	"superapp/internal/dctest"
)

// TestClientFailover: a phone homed on a DC that dies keeps working within
// a second: its reads go elsewhere, its event stream resumes from its
// cursor on a live DC, and its outbox delivers what was queued, once. The
// DC killed leads none of the streams the phone uses, so what is measured
// is the client, not a raft election (TestChatFire measures those).
func TestClientFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := dctest.Start(t)
	leaders := []string{c.Leader(ctx, "CHAT"), c.Leader(ctx, "IDENTITY"), c.Leader(ctx, "LEDGER")}
	victim := ""
	for _, d := range c.DCs {
		if !slices.Contains(leaders, d.Name) {
			victim = d.Name
		}
	}
	if victim == "" {
		// Every DC leads one of them: move the chat leader away from one.
		victim = leaders[1]
		if victim == leaders[0] {
			victim = leaders[2]
		}
		if s, b, _ := do(t, "POST", c.DC(leaders[0]).URL()+"/ops/evacuate", c.OpsToken(), fmt.Sprintf(`{"dc":%q}`, victim)); s != 200 {
			t.Fatalf("evacuate: %d %s", s, b)
		}
		time.Sleep(time.Second)
		if s, b, _ := do(t, "POST", c.DC(leaders[0]).URL()+"/ops/evacuate", c.OpsToken(), fmt.Sprintf(`{"dc":%q,"undo":true}`, victim)); s != 200 {
			t.Fatalf("undo: %d %s", s, b)
		}
		c.WaitReady(victim, time.Minute)
	}
	home := slices.IndexFunc(c.DCs, func(d *dctest.DC) bool { return d.Name == victim })
	// The phone knows only its home DC and learns the others.
	phone := client.New([]string{c.DCs[home].URL()})
	if _, err := phone.Discover(ctx); err != nil {
		t.Fatal(err)
	}
	if len(phone.Endpoints()) != 3 {
		t.Fatalf("discovered %v", phone.Endpoints())
	}
	friend := client.New(rotate(c.URLs(), (home+1)%3))
	var ids []string
	for i, u := range []*client.Client{phone, friend} {
		login := fmt.Sprintf("failover%d@example.com", i)
		a, err := u.SignUp(ctx, login, password, login)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, a.UserID)
		if _, err := u.Login(ctx, login, password, "phone"); err != nil {
			t.Fatal(err)
		}
	}
	conv, err := phone.CreateConversation(ctx, []string{ids[1]}, nil)
	if err != nil {
		t.Fatal(err)
	}
	friend.Observe(phone.Position())
	frames := phone.Stream(ctx, 0)
	outbox := phone.NewOutbox(ctx)
	if _, err := outbox.Send(conv.ConversationID, "m0", "before", 0).Wait(ctx); err != nil {
		t.Fatal(err)
	}
	waitFrame(t, ctx, frames, "m0")

	c.Kill(victim)
	fire := time.Now()
	if _, err := phone.Me(ctx); err != nil {
		t.Fatal(err)
	}
	read := time.Since(fire)
	t0 := time.Now()
	if _, err := friend.Send(ctx, conv.ConversationID, "f0", "friend first", 0); err != nil {
		t.Fatal(err)
	}
	t.Logf("friend send %v via %s", time.Since(t0), friend.Endpoint())
	t0 = time.Now()
	if _, err := phone.Me(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("me %v via %s", time.Since(t0), phone.Endpoint())
	p := outbox.Send(conv.ConversationID, "m1", "after the fire", 0)
	if _, err := p.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	sent := time.Since(fire)
	if _, err := friend.Send(ctx, conv.ConversationID, "f1", "from the friend", 0); err != nil {
		t.Fatal(err)
	}
	waitFrame(t, ctx, frames, "f1")
	streamed := time.Since(fire)
	t.Logf("MEASURE after SIGKILL of the phone's DC %s: read answered after %v, outbox message acknowledged after %v, event stream resumed and delivered a new message after %v",
		victim, read.Round(time.Millisecond), sent.Round(time.Millisecond), streamed.Round(time.Millisecond))
	ms, _, err := friend.Messages(ctx, conv.ConversationID, 0, 0, 50)
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, m := range ms {
		count[m.ID]++
	}
	if count["m0"] != 1 || count["m1"] != 1 || count["f1"] != 1 || count["f0"] != 1 {
		t.Fatalf("messages after the failover: %v", count)
	}
}
