package dctest_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"superapp/client"
)

// person is a signed-up, logged-in user with their own client.
type person struct {
	id string
	c  *client.Client
}

// seedBalance is what signUpPeople tops every wallet up with.
const seedBalance = 1_000_000

// signUpPeople signs n people up and logs them in (logins <prefix><i>),
// each with seedBalance KRW; person i's client tries urls from
// first(i) on.
func signUpPeople(ctx context.Context, t *testing.T, urls []string, prefix string, n int, first func(i int) int) []*person {
	t.Helper()
	var ps []*person
	for i := 0; i < n; i++ {
		p := &person{c: client.New(rotate(urls, first(i)))}
		login := fmt.Sprintf("%s%d@example.com", prefix, i)
		a, err := p.c.SignUp(ctx, login, password, fmt.Sprintf("%s %d", prefix, i))
		if err != nil {
			t.Fatal(err)
		}
		p.id = a.UserID
		if _, err := p.c.Login(ctx, login, password, "phone"); err != nil {
			t.Fatal(err)
		}
		if _, err := p.c.TopUp(ctx, "seed", seedBalance, "KRW"); err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	return ps
}

// on is p's session on one DC only, at least as current as p's writes.
func (p *person) on(url string) *client.Client {
	c := client.New([]string{url})
	c.UseTokens(client.Tokens{AccessToken: p.c.AccessToken(), UserID: p.id})
	c.Observe(p.c.Position())
	return c
}

// storedMessages counts, per client id, the messages of conv that one DC
// holds, as p reads them there.
func storedMessages(ctx context.Context, t *testing.T, url string, p *person, conv string) map[string]int {
	t.Helper()
	reader := p.on(url)
	have := map[string]int{}
	after := uint64(0)
	for {
		page, more, err := reader.Messages(ctx, conv, after, 0, 100)
		if err != nil {
			t.Fatalf("%s: messages: %v", url, err)
		}
		for _, m := range page {
			have[m.ID]++
		}
		if !more || len(page) == 0 {
			return have
		}
		after = page[len(page)-1].Seq
	}
}

// checkRing checks, on one DC, the wallets of people who paid around a
// ring (person i paid paid[i] to person i+1): each holds seedBalance less
// what they paid plus what the one before them paid.
func checkRing(ctx context.Context, t *testing.T, url string, ps []*person, paid map[int]uint64) {
	t.Helper()
	for i, p := range ps {
		w, err := p.on(url).Wallet(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := seedBalance - paid[i] + paid[(i+len(ps)-1)%len(ps)]
		if len(w) != 1 || w[0].Available != want {
			t.Errorf("user %d on %s: wallet %+v, want %d", i, url, w, want)
		}
	}
}

// longestGap is the longest wait between consecutive acknowledgements
// (given in any order) that ended after the fault began at at: what a
// client saw of the fault, and of anything after it.
func longestGap(acks []time.Time, at time.Time) time.Duration {
	acks = slices.Clone(acks)
	slices.SortFunc(acks, func(a, b time.Time) int { return a.Compare(b) })
	var gap time.Duration
	for i := 1; i < len(acks); i++ {
		if acks[i].After(at) {
			gap = max(gap, acks[i].Sub(acks[i-1]))
		}
	}
	return gap
}
