package bench

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"superapp/client"
	"superapp/internal/cluster"
	"superapp/internal/engine"
)

// RebuildOptions configures the rebuild benchmark.
type RebuildOptions struct {
	Binary   string
	Dir      string
	Messages int
	Out      io.Writer
}

// Rebuild fills the chat stream of three DCs with Messages messages, then
// burns one DC's disk and measures how long the DC takes, started empty, to
// catch up on every stream and report itself ready.
//
// The messages are real chat commands in the log's own entry format
// (batches of 512 envelopes, as group commit writes them), published
// straight to the stream: sending a million through the HTTP API would
// take this machine minutes and measure the API, not the rebuild.
func Rebuild(ctx context.Context, o RebuildOptions) error {
	out := o.Out
	cl, err := startCluster(ctx, cluster.Options{Binary: o.Binary, Dir: o.Dir, OpsToken: benchOpsToken}, out)
	if err != nil {
		return err
	}
	defer cl.StopAll()
	// Real users and conversations, through the API.
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	a := client.New(cl.URLs())
	b := client.New(cl.URLs())
	var ids []string
	for i, c := range []*client.Client{a, b} {
		login := fmt.Sprintf("rebuild-%s-%d@example.com", run, i)
		acc, err := c.SignUp(ctx, login, "violet-harbor-tangent-91", "Rebuild "+strconv.Itoa(i))
		if err != nil {
			return err
		}
		ids = append(ids, acc.UserID)
		if _, err := c.Login(ctx, login, "violet-harbor-tangent-91", "bench"); err != nil {
			return err
		}
	}
	const convs = 100
	var convIDs []string
	for i := 0; i < convs; i++ {
		title := "rebuild " + strconv.Itoa(i)
		cv, err := a.CreateConversation(ctx, []string{ids[1]}, &title)
		if err != nil {
			return err
		}
		convIDs = append(convIDs, cv.ConversationID)
	}
	nc, err := nats.Connect("nats://"+cl.DCs[0].NATSAddr, nats.UserInfo(engine.User, cl.Secret))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(publishWindow))
	if err != nil {
		return err
	}
	start := time.Now()
	const perEntry = 512
	entries := (o.Messages + perEntry - 1) / perEntry
	bytes, err := publishEntries(ctx, js, "chat.batch", run, entries, func(i int) []byte {
		return chatBatch(i*perEntry, min((i+1)*perEntry, o.Messages), convIDs, ids)
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "wrote %d messages (%d entries, %d MiB) to the CHAT stream in %v\n", o.Messages, (o.Messages+perEntry-1)/perEntry, bytes>>20, time.Since(start).Round(time.Millisecond))
	// Every DC applies them.
	wctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	applyStart := time.Now()
	if err := cl.WaitConverged(wctx); err != nil {
		return err
	}
	fmt.Fprintf(out, "all three DCs applied them %v after the last write\n", time.Since(applyStart).Round(time.Millisecond))
	// Burn a DC that leads nothing the others need, so only the rebuild is measured.
	victim := cl.DCs[2].Name
	if leader, err := cl.Leader(ctx, "CHAT"); err == nil && leader == victim {
		victim = cl.DCs[1].Name
	}
	if err := cl.Kill(victim); err != nil {
		return err
	}
	if err := cl.Wipe(victim); err != nil {
		return err
	}
	t0 := time.Now()
	if err := cl.Start(victim); err != nil {
		return err
	}
	took, err := cl.WaitReady(wctx, victim)
	if err != nil {
		return err
	}
	total := time.Since(t0)
	if err := cl.WaitConverged(wctx); err != nil {
		return err
	}
	fmt.Fprintf(out, "%s wiped and started empty: ready (caught up on every stream, %d messages) %v after start (process start included: %v)\n",
		victim, o.Messages, took.Round(time.Millisecond), total.Round(time.Millisecond))
	return nil
}
