package engine

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// TestLocalGet: the local replica answers a batched get handed to it
// directly exactly as it answers one sent over NATS: every entry in order
// with its sequence and what remains, then the end of the batch. A
// nats-server whose unexported functions changed their signatures fails
// here rather than in production.
func TestLocalGet(t *testing.T) {
	e := open(t, Config{DC: "dc1", ClusterSecret: "s"})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.EnsureStreams(ctx); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		if _, err := e.Append(ctx, "identity.test", fmt.Sprint("id-", i), fmt.Appendf(nil, "entry %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	sub, err := e.nc.SubscribeSync(e.nc.NewRespInbox())
	if err == nil {
		err = e.nc.Flush() // the server knows of the subscription
	}
	if err != nil {
		t.Fatal(err)
	}
	if !e.localGet("IDENTITY", &server.JSApiMsgGetRequest{Seq: 2, Batch: 10, MaxBytes: 1 << 20}, sub.Subject) {
		t.Fatal("no local replica of IDENTITY")
	}
	for want := 2; want <= 3; want++ {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			t.Fatal(err)
		}
		seq, _ := strconv.Atoi(m.Header.Get("Nats-Sequence"))
		pending := m.Header.Get("Nats-Num-Pending")
		if seq != want || string(m.Data) != fmt.Sprint("entry ", want) || pending != strconv.Itoa(3-want) {
			t.Fatalf("got seq %d %q pending %s, want seq %d", seq, m.Data, pending, want)
		}
	}
	m, err := sub.NextMsgWithContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s := m.Header.Get("Status"); s != "204" {
		t.Fatalf("end of batch: status %q", s)
	}
	if e.localGet("NOWHERE", &server.JSApiMsgGetRequest{Seq: 1, Batch: 1}, sub.Subject) {
		t.Fatal("a stream that does not exist was read locally")
	}
}
