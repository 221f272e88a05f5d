package client

import (
	"context"
	"sync"
)

// Outbox keeps the messages an app asked to send until the cluster has
// acknowledged them, sending them one after another in the order given
// and retrying each with its own id, across failovers, until it is
// acknowledged or refused for good. A retry never sends a message twice:
// the id makes the send idempotent.
type Outbox struct {
	c    *Client
	ctx  context.Context
	wake chan struct{}

	mu    sync.Mutex
	queue []*Pending
}

// Pending is a message in the outbox.
type Pending struct {
	ConversationID string
	ID             string
	Text           string
	ReplyTo        uint64

	done    chan struct{}
	message Message
	err     error
}

// Wait blocks until the message is acknowledged (or refused) or ctx ends.
func (p *Pending) Wait(ctx context.Context) (Message, error) {
	select {
	case <-p.done:
		return p.message, p.err
	case <-ctx.Done():
		return Message{}, ctx.Err()
	}
}

// Done is closed once the message is acknowledged or refused.
func (p *Pending) Done() <-chan struct{} { return p.done }

// NewOutbox starts an outbox that sends until ctx ends.
func (c *Client) NewOutbox(ctx context.Context) *Outbox {
	o := &Outbox{c: c, ctx: ctx, wake: make(chan struct{}, 1)}
	go o.run()
	return o
}

// Send queues a message; id is the client's id for it.
func (o *Outbox) Send(convID, id, text string, replyTo uint64) *Pending {
	p := &Pending{ConversationID: convID, ID: id, Text: text, ReplyTo: replyTo, done: make(chan struct{})}
	o.mu.Lock()
	o.queue = append(o.queue, p)
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
	return p
}

// Len is how many messages wait to be acknowledged.
func (o *Outbox) Len() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.queue)
}

func (o *Outbox) run() {
	for {
		o.mu.Lock()
		var p *Pending
		if len(o.queue) > 0 {
			p = o.queue[0]
		}
		o.mu.Unlock()
		if p == nil {
			select {
			case <-o.ctx.Done():
				return
			case <-o.wake:
				continue
			}
		}
		// Do retries through failovers until acknowledged, refused with a
		// client error, or the outbox's context ends.
		m, err := o.c.Send(o.ctx, p.ConversationID, p.ID, p.Text, p.ReplyTo)
		if err != nil && o.ctx.Err() != nil {
			return // keep it queued: the app may hand the outbox's content on
		}
		p.message, p.err = m, err
		o.mu.Lock()
		o.queue = o.queue[1:]
		o.mu.Unlock()
		close(p.done)
	}
}
