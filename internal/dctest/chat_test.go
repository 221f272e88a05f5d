package dctest_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"superapp/client"
	"superapp/internal/dctest"
)

// device records the message events one device receives.
type device struct {
	user string
	name string
	mu   sync.Mutex
	// seen[conv] lists message (seq, id) in arrival order.
	seen map[string][]seenMsg
	// typing[conv] lists who was seen typing.
	typing map[string][]string
}

type seenMsg struct {
	seq uint64
	id  string
}

func (d *device) run(ctx context.Context, c *client.Client) {
	for f := range c.Stream(ctx, 0) {
		if f.Type == "typing" {
			d.mu.Lock()
			if d.typing == nil {
				d.typing = map[string][]string{}
			}
			d.typing[f.ConversationID] = append(d.typing[f.ConversationID], f.UserID)
			d.mu.Unlock()
		}
		if f.Type != "events" {
			continue
		}
		d.mu.Lock()
		for _, ev := range f.Events {
			if ev.Type == "message" && ev.Message != nil {
				d.seen[ev.ConversationID] = append(d.seen[ev.ConversationID], seenMsg{ev.Message.Seq, ev.Message.ID})
			}
		}
		d.mu.Unlock()
	}
}

func (d *device) snapshot(conv string) []seenMsg {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.seen[conv])
}

type acked struct {
	conv, id string
	seq      uint64
	at       time.Time
}

// TestChatFire: clients on every DC exchange messages in several
// conversations; the DC leading the chat stream is SIGKILLed mid-traffic;
// its clients fail over and resume. Every acknowledged message reaches
// every member device exactly once, in the same order everywhere.
func TestChatFire(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := dctest.Start(t)

	// Six users, two per DC; user 0 has a second device.
	type user struct {
		id      string
		home    int
		c       *client.Client
		outbox  *client.Outbox
		devices []*device
	}
	var users []*user
	for i := 0; i < 6; i++ {
		u := &user{home: i % 3}
		u.c = client.New(rotate(c.URLs(), u.home))
		login := fmt.Sprintf("chat%d@example.com", i)
		a, err := u.c.SignUp(ctx, login, password, fmt.Sprintf("Chatter %d", i))
		if err != nil {
			t.Fatal(err)
		}
		u.id = a.UserID
		if _, err := u.c.Login(ctx, login, password, "phone"); err != nil {
			t.Fatal(err)
		}
		u.outbox = u.c.NewOutbox(ctx)
		d := &device{user: u.id, name: fmt.Sprintf("u%d-phone", i), seen: map[string][]seenMsg{}}
		go d.run(ctx, u.c)
		u.devices = append(u.devices, d)
		users = append(users, u)
	}
	tablet := client.New(rotate(c.URLs(), 2))
	if _, err := tablet.Login(ctx, "chat0@example.com", password, "tablet"); err != nil {
		t.Fatal(err)
	}
	td := &device{user: users[0].id, name: "u0-tablet", seen: map[string][]seenMsg{}}
	go td.run(ctx, tablet)
	users[0].devices = append(users[0].devices, td)

	// Conversations: everyone; a trio; three one-to-one.
	type conv struct {
		id      string
		members []*user
	}
	var convs []*conv
	mk := func(owner *user, others []*user, title *string) {
		var ids []string
		for _, o := range others {
			ids = append(ids, o.id)
		}
		cv, err := owner.c.CreateConversation(ctx, ids, title)
		if err != nil {
			t.Fatal(err)
		}
		convs = append(convs, &conv{id: cv.ConversationID, members: append([]*user{owner}, others...)})
	}
	all, trio := "everyone", "trio"
	mk(users[0], users[1:], &all)
	mk(users[1], []*user{users[2], users[3]}, &trio)
	for i := 0; i < 3; i++ {
		mk(users[i], []*user{users[i+3]}, nil)
	}
	// Each user writes to the conversations they are in.
	mine := map[*user][]*conv{}
	for _, cv := range convs {
		for _, m := range cv.members {
			mine[m] = append(mine[m], cv)
		}
	}

	// Typing on dc1 shows on a member's device connected to dc2.
	typist := client.New([]string{c.DC("dc1").URL()})
	typist.UseTokens(client.Tokens{AccessToken: users[0].c.AccessToken(), UserID: users[0].id})
	for deadline := time.Now().Add(10 * time.Second); ; {
		if err := typist.Do(ctx, client.Request{Method: "POST", Path: "/v1/conversations/" + convs[0].id + "/typing"}, nil); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
		d := users[1].devices[0]
		d.mu.Lock()
		seenTyping := len(d.typing[convs[0].id]) > 0 && d.typing[convs[0].id][0] == users[0].id
		d.mu.Unlock()
		if seenTyping {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("typing on dc1 never reached a device on dc2")
		}
	}

	const perUser = 60
	var (
		mu      sync.Mutex
		acks    []acked
		pending []*client.Pending
	)
	var wg sync.WaitGroup
	fired := make(chan struct{})
	victim := c.Leader(ctx, "CHAT")
	for i, u := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; n < perUser; n++ {
				cv := mine[u][n%len(mine[u])]
				p := u.outbox.Send(cv.id, fmt.Sprintf("u%d-%03d", i, n), fmt.Sprintf("message %d from user %d", n, i), 0)
				mu.Lock()
				pending = append(pending, p)
				mu.Unlock()
				go func() {
					m, err := p.Wait(ctx)
					if err != nil {
						t.Errorf("%s: %v", p.ID, err)
						return
					}
					mu.Lock()
					acks = append(acks, acked{conv: cv.id, id: m.ID, seq: m.Seq, at: time.Now()})
					mu.Unlock()
				}()
				if n == perUser/3 && i == 0 {
					close(fired)
				}
				time.Sleep(25 * time.Millisecond)
			}
		}()
	}
	<-fired
	fire := time.Now()
	t.Logf("chat leader is %s: killing it mid-traffic", victim)
	c.Kill(victim)
	wg.Wait()
	for _, p := range pending {
		if _, err := p.Wait(ctx); err != nil {
			t.Fatalf("message %s never acknowledged: %v", p.ID, err)
		}
	}
	mu.Lock()
	total := len(acks)
	var times []time.Time
	for _, a := range acks {
		times = append(times, a.at)
	}
	outage := longestGap(times, fire)
	mu.Unlock()
	if total != len(users)*perUser {
		t.Fatalf("acknowledged %d of %d", total, len(users)*perUser)
	}
	t.Logf("MEASURE %d messages acknowledged; longest gap between acknowledgements around the fire: %v", total, outage.Round(time.Millisecond))

	// Every member device gets every acknowledged message, exactly once,
	// in the same order as every other device.
	ackedIn := map[string]map[string]uint64{}
	for _, a := range acks {
		if ackedIn[a.conv] == nil {
			ackedIn[a.conv] = map[string]uint64{}
		}
		ackedIn[a.conv][a.id] = a.seq
	}
	deadline := time.Now().Add(90 * time.Second)
	for _, cv := range convs {
		var reference []seenMsg
		for _, m := range cv.members {
			for _, d := range m.devices {
				var got []seenMsg
				for {
					got = d.snapshot(cv.id)
					have := map[string]bool{}
					for _, s := range got {
						have[s.id] = true
					}
					missing := 0
					for id := range ackedIn[cv.id] {
						if !have[id] {
							missing++
						}
					}
					if missing == 0 {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("%s lacks %d acknowledged messages of %s", d.name, missing, cv.id)
					}
					time.Sleep(100 * time.Millisecond)
				}
				ids := map[string]int{}
				for i, s := range got {
					ids[s.id]++
					if ids[s.id] > 1 {
						t.Fatalf("%s got %s twice in %s", d.name, s.id, cv.id)
					}
					if s.seq != uint64(i)+1 {
						t.Fatalf("%s: %s has seq %d at position %d: gap or reorder", d.name, s.id, s.seq, i+1)
					}
					if want, ok := ackedIn[cv.id][s.id]; ok && want != s.seq {
						t.Fatalf("%s: %s at seq %d, acknowledged at %d", d.name, s.id, s.seq, want)
					}
				}
				if reference == nil {
					reference = got
				} else if !slices.Equal(reference[:min(len(reference), len(got))], got[:min(len(reference), len(got))]) {
					t.Fatalf("%s sees another order of %s", d.name, cv.id)
				}
			}
		}
		// The log holds each message once: what a survivor stores is the
		// acknowledged messages plus the system ones, nothing more.
		var stored []client.Message
		for after := uint64(0); ; {
			page, more, err := cv.members[0].c.Messages(ctx, cv.id, after, 0, 200)
			if err != nil {
				t.Fatal(err)
			}
			stored = append(stored, page...)
			if !more {
				break
			}
			after = page[len(page)-1].Seq
		}
		texts := map[string]int{}
		for _, m := range stored {
			if m.Kind == "text" {
				texts[m.ID]++
			}
		}
		if len(texts) != len(ackedIn[cv.id]) {
			t.Fatalf("%s stores %d messages, %d acknowledged", cv.id, len(texts), len(ackedIn[cv.id]))
		}
		for id, n := range texts {
			if n != 1 {
				t.Fatalf("%s stores %s %d times", cv.id, id, n)
			}
		}
	}
	t.Logf("verified %d acknowledged messages on %d devices", total, 7)

	// Sending a message again, on another DC, after the fire, returns the
	// original and stores nothing new.
	first := acks[0]
	var sender *user
	for i, u := range users {
		if strings.HasPrefix(first.id, fmt.Sprintf("u%d-", i)) {
			sender = u
		}
	}
	for _, d := range c.DCs {
		if d.Name == victim {
			continue
		}
		again := client.New([]string{d.URL()})
		again.UseTokens(client.Tokens{AccessToken: sender.c.AccessToken(), UserID: sender.id})
		m, err := again.Send(ctx, first.conv, first.id, "a different text", 0)
		if err != nil || m.Seq != first.seq || m.Text == "a different text" {
			t.Fatalf("resend of %s on %s: %v seq %d, want the original at %d", first.id, d.Name, err, m.Seq, first.seq)
		}
	}

	// The burnt DC comes back and converges.
	c.Restart(victim)
	c.WaitReady(victim, 2*time.Minute)
	c.WaitConverged(ctx)
}
