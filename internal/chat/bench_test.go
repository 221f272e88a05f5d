package chat

import (
	"fmt"
	"io"
	"log/slog"
	"testing"

	"superapp/internal/cmdlog"
	"superapp/internal/store"
)

// benchSends applies b.N message sends, perEntry commands to a stream
// entry (group commit under load), spread over convs conversations: what
// a node spends applying them, the machine's outcomes and commit included.
func benchSends(b *testing.B, convs, members, perEntry int) {
	// A node's store has DefaultCacheSize; storetest's small cache would
	// measure disk reads that a node's hot conversations never make.
	db, err := store.Open(b.TempDir(), store.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = db.Close() })
	n := newNode(b, db)
	ids := make([]string, convs)
	senders := make([]string, convs)
	for c := range convs {
		var others []string
		for u := 1; u < members; u++ {
			others = append(others, fmt.Sprintf("u%d-%d", c, u))
		}
		kind := Group
		if members == 2 {
			kind = Direct
		}
		ids[c], senders[c] = fmt.Sprintf("g%04d", c), fmt.Sprintf("u%d-0", c)
		n.entry(b, cmd(kindCreate, senders[c], 0, createConv{ConversationID: ids[c], Kind: kind, Members: others}))
	}
	b.ResetTimer()
	envs := make([]cmdlog.Envelope, 0, perEntry)
	for i := 0; i < b.N; i++ {
		c := i % convs
		id := fmt.Sprintf("m%d", i)
		env := cmd(kindSend, senders[c], 1, sendCmd{ConversationID: ids[c], ID: id, Text: "hello there, how are you today?"})
		env.ID = sendID(ids[c], senders[c], id) // as the service names a send
		envs = append(envs, env)
		if len(envs) == perEntry || i == b.N-1 {
			n.entry(b, envs...)
			envs = envs[:0]
		}
	}
}

// BenchmarkApplySendDirect: one-to-one conversations, 32 sends an entry.
func BenchmarkApplySendDirect(b *testing.B) { benchSends(b, 64, 2, 32) }

// BenchmarkApplySendBusy is `superapp bench chat`'s load: 128 senders
// over 20 one-to-one conversations, about 32 sends an entry.
func BenchmarkApplySendBusy(b *testing.B) { benchSends(b, 20, 2, 32) }

// BenchmarkApplySendDirectSingle: one send an entry.
func BenchmarkApplySendDirectSingle(b *testing.B) { benchSends(b, 64, 2, 1) }

// BenchmarkApplySendGroup100: a group of 100 members, 8 sends an entry.
func BenchmarkApplySendGroup100(b *testing.B) { benchSends(b, 4, 100, 8) }
