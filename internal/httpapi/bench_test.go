package httpapi_test

import (
	"context"
	"fmt"
	"testing"

	"superapp/client"
	"superapp/internal/node/nodetest"
)

func benchUser(b *testing.B) *client.Client {
	b.Helper()
	n := nodetest.Start(b, nil)
	c := client.New([]string{nodetest.URL(n)})
	ctx := context.Background()
	if _, err := c.SignUp(ctx, "bench@example.com", goodPassword, "Bench"); err != nil {
		b.Fatal(err)
	}
	if _, err := c.Login(ctx, "bench@example.com", goodPassword, "bench"); err != nil {
		b.Fatal(err)
	}
	return c
}

// BenchmarkProfileWrite measures one durable write through the whole stack:
// HTTP, auth, append with fsync, apply, answer (single node, R1).
func BenchmarkProfileWrite(b *testing.B) {
	c := benchUser(b)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		st := fmt.Sprintf("status %d", i)
		if _, err := c.UpdateProfile(ctx, nil, &st); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMeRead measures an authenticated read from the local read model.
func BenchmarkMeRead(b *testing.B) {
	c := benchUser(b)
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		if _, err := c.Me(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
