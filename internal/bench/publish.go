package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"superapp/internal/cmdlog"
)

// publishWindow is how many entries a bench publisher has in flight.
const publishWindow = 128

// publishEntries appends n entries (entry(i) is the i-th) to subject and
// returns once every one is acknowledged by the stream. A loaded machine
// makes the stream slow, not the benchmark fail: the publisher waits for
// its window to be acknowledged, and sends an entry whose acknowledgement
// failed again with the same message id (the stream stores it once).
func publishEntries(ctx context.Context, js jetstream.JetStream, subject, run string, n int, entry func(i int) []byte) (int64, error) {
	var bytes int64
	type sent struct {
		id   string
		data []byte
		ack  jetstream.PubAckFuture
	}
	window := make([]sent, 0, publishWindow)
	flush := func() error {
		for _, s := range window {
			select {
			case <-s.ack.Ok():
				continue
			case first := <-s.ack.Err():
				if err := publishSync(ctx, js, subject, s.id, s.data); err != nil {
					return fmt.Errorf("publish %s: %w (first attempt: %v)", s.id, err, first)
				}
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		window = window[:0]
		return nil
	}
	for i := 0; i < n; i++ {
		data := entry(i)
		bytes += int64(len(data))
		id := "bench-" + run + "-" + subject + "-" + strconv.Itoa(i)
		ack, err := js.PublishAsync(subject, data, jetstream.WithMsgID(id))
		for errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
			if err = flush(); err != nil {
				return bytes, err
			}
			ack, err = js.PublishAsync(subject, data, jetstream.WithMsgID(id))
		}
		if err != nil {
			return bytes, err
		}
		window = append(window, sent{id: id, data: data, ack: ack})
		if len(window) == publishWindow {
			if err := flush(); err != nil {
				return bytes, err
			}
		}
	}
	return bytes, flush()
}

// publishSync publishes one entry, retrying through elections and slow
// acknowledgements until ctx ends.
func publishSync(ctx context.Context, js jetstream.JetStream, subject, id string, data []byte) error {
	for {
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := js.Publish(actx, subject, data, jetstream.WithMsgID(id))
		cancel()
		if err == nil || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// chatBatch is one CHAT entry of perEntry message.send commands, as group
// commit writes them: messages first..first+perEntry-1, spread over convs,
// sent alternately by the two users.
func chatBatch(first, last int, convs, users []string) []byte {
	batch := make([]cmdlog.Envelope, 0, last-first)
	for i := first; i < last; i++ {
		conv := convs[i%len(convs)]
		id := "r" + strconv.Itoa(i)
		data := []byte(`{"conversation_id":"` + conv + `","id":"` + id + `","text":"message number ` + strconv.Itoa(i) + ` of the benchmark"}`)
		sender := users[i%len(users)]
		batch = append(batch, cmdlog.Envelope{ID: "msg/" + conv + "/" + sender + "/" + id, Kind: "message.send", Actor: sender, At: time.Now().UTC(), Data: data})
	}
	entry, _ := json.Marshal(batch)
	return entry
}
