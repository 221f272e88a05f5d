// Package faultproxy is a fault-injecting TCP proxy for tests. Placed on
// the links between data centers (NATS route connections), it lets a test
// cut one DC off the others, or slow its links down, while every DC process
// keeps running.
//
// It is test machinery: it must never sit on a production path, and it
// never inspects, rewrites or reorders the bytes it forwards — a fault is
// either a dead link or a late one, never a corrupt one.
//
// # Partitions
//
// Cut closes every open connection at once, on both sides, so each peer
// notices the link died now rather than minutes later through its own
// ping timeout; that keeps partition tests quick and deterministic.
//
// While cut, the proxy still accepts new connections — the kernel completes
// the handshake before any user code could refuse it — but it neither dials
// the target nor answers: whatever the peer sends is read and discarded.
// That is the closest a userspace proxy gets to a real partition, where a
// dial gets no answer and the peer learns of the failure only by its own
// timeout. The alternatives tell the peer something a partition never
// would: closing at once looks like a refused or crashed server, and closing
// the listener turns dials into fast "connection refused" errors (and the
// port could be taken by another process before Heal).
//
// Heal drops the connections held during the cut, so each peer redials
// through the healed link and does a fresh handshake, instead of waiting on
// a connection whose first bytes were discarded.
//
// # Blackouts
//
// Silence is the partition a power loss makes: nothing is closed, and
// nothing arrives. Open connections stay open while every byte sent on
// them is dropped, and new ones are held as while cut, so a peer learns of
// it only by its own timeouts. Heal closes the silenced connections (bytes
// went missing on them) and lets new ones through.
package faultproxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// chunkSize is the most a link forwards in one piece.
const chunkSize = 32 << 10

// Proxy forwards TCP connections from its listen address to one target and
// injects faults into them: Cut, Heal and SetDelay.
type Proxy struct {
	ln     net.Listener
	target string
	delay  atomic.Int64 // time.Duration added to every chunk

	silent atomic.Bool // drop every byte of open connections (Silence)

	mu     sync.Mutex
	cut    bool
	closed bool
	links  map[*link]struct{}
	held   map[net.Conn]struct{} // accepted while cut, never forwarded
	wg     sync.WaitGroup

	accepted, heldTotal, cutTotal atomic.Int64
	toTarget, fromTarget          atomic.Int64
}

// Stats counts what a proxy has done since New.
type Stats struct {
	Accepted        int64 // connections accepted, held ones included
	Held            int64 // connections accepted while cut, never forwarded
	Cut             int64 // forwarded connections closed by Cut
	BytesToTarget   int64 // bytes forwarded from dialers to the target
	BytesFromTarget int64 // bytes forwarded from the target to dialers
}

// New listens on listen (e.g. "127.0.0.1:0") and forwards every accepted
// connection to target. The target need not be up yet: a connection that
// cannot reach it is closed, as a dead DC would close it.
func New(listen, target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", listen, err)
	}
	p := &Proxy{
		ln:     ln,
		target: target,
		links:  map[*link]struct{}{},
		held:   map[net.Conn]struct{}{},
	}
	p.wg.Go(p.accept)
	return p, nil
}

// Addr is the address the proxy listens on.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Cut partitions the link: every open connection is closed on both sides,
// and until Heal new connections are accepted but carry no bytes.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for l := range p.links {
		if l.close() {
			p.cutTotal.Add(1)
		}
	}
}

// Silence blacks the link out: open connections stay open and carry
// nothing, and until Heal new connections are accepted but carry nothing.
func (p *Proxy) Silence() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	p.silent.Store(true)
}

// Heal ends a partition or a blackout: connections held while cut and
// connections that lost bytes while silent are dropped, and new
// connections flow to the target again.
func (p *Proxy) Heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
	if p.silent.Swap(false) {
		for l := range p.links {
			if l.close() {
				p.cutTotal.Add(1)
			}
		}
	}
	for c := range p.held {
		c.Close()
	}
}

// SetDelay holds every chunk of every connection, in both directions, for
// d before forwarding it; 0 forwards at once. Chunks keep flowing while
// others wait, so the link gets latency, not a lower throughput.
func (p *Proxy) SetDelay(d time.Duration) {
	p.delay.Store(int64(max(d, 0)))
}

// Stats returns the proxy's counters.
func (p *Proxy) Stats() Stats {
	return Stats{
		Accepted:        p.accepted.Load(),
		Held:            p.heldTotal.Load(),
		Cut:             p.cutTotal.Load(),
		BytesToTarget:   p.toTarget.Load(),
		BytesFromTarget: p.fromTarget.Load(),
	}
}

// Close stops listening, closes every connection and returns once all of
// the proxy's goroutines have finished.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	err := p.ln.Close()
	for l := range p.links {
		l.close()
	}
	for c := range p.held {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

func (p *Proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			// Out of file descriptors and the like pass; a proxy that
			// stopped accepting would look like a partition nobody asked for.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		p.accepted.Add(1)
		p.admit(c)
	}
}

// admit starts forwarding or holding c. Goroutines are added under mu so
// that none starts after Close has begun waiting.
func (p *Proxy) admit(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.closed:
		c.Close()
	case p.cut:
		p.held[c] = struct{}{}
		p.heldTotal.Add(1)
		p.wg.Go(func() { p.hold(c) })
	default:
		l := newLink(c)
		p.links[l] = struct{}{}
		p.wg.Go(func() { p.forward(l) })
	}
}

// hold discards what a connection accepted while cut sends, so it notices
// when the peer gives up, until Heal or Close drops it.
func (p *Proxy) hold(c net.Conn) {
	io.Copy(io.Discard, c)
	c.Close()
	p.mu.Lock()
	delete(p.held, c)
	p.mu.Unlock()
}

func (p *Proxy) forward(l *link) {
	defer func() {
		l.close()
		p.mu.Lock()
		delete(p.links, l)
		p.mu.Unlock()
	}()
	var d net.Dialer
	server, err := d.DialContext(l.ctx, "tcp", p.target)
	if err != nil || !l.attach(server) {
		return
	}
	var wg sync.WaitGroup
	wg.Go(func() { p.pipe(l, l.client, server, &p.toTarget) })
	wg.Go(func() { p.pipe(l, server, l.client, &p.fromTarget) })
	wg.Wait()
}

// chunk is bytes read from one side, to be written to the other at due.
type chunk struct {
	b   []byte
	due time.Time
}

// pipe copies src to dst, each chunk no earlier than the delay after it was
// read. Reading and writing are apart so a delay is latency: a chunk waiting
// does not stop the next one being read. When src ends the whole link is
// closed, as NATS has no use for half-closed connections.
func (p *Proxy) pipe(l *link, src, dst net.Conn, forwarded *atomic.Int64) {
	chunks := make(chan chunk, 64)
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		defer close(chunks)
		buf := make([]byte, chunkSize)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				c := chunk{b: bytes.Clone(buf[:n]), due: time.Now().Add(time.Duration(p.delay.Load()))}
				select {
				case chunks <- c:
				case <-l.done:
					return
				}
			}
			if err != nil {
				return
			}
		}
	})
	// Closing the link unblocks the reader whichever way this returns.
	defer l.close()
	for c := range chunks {
		if wait := time.Until(c.due); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-l.done:
				t.Stop()
				return
			}
		}
		if p.silent.Load() {
			continue // blacked out: the bytes vanish, the connection stays
		}
		n, err := dst.Write(c.b)
		forwarded.Add(int64(n))
		if err != nil {
			return
		}
	}
}

// link is one forwarded connection: the dialer's side and, once dialled,
// the target's side.
type link struct {
	client net.Conn
	ctx    context.Context // cancelled by close, to stop a dial in flight
	cancel context.CancelFunc
	done   chan struct{} // closed by close

	mu     sync.Mutex
	server net.Conn
	closed bool
}

func newLink(client net.Conn) *link {
	ctx, cancel := context.WithCancel(context.Background())
	return &link{client: client, ctx: ctx, cancel: cancel, done: make(chan struct{})}
}

// attach records the target's side; it reports false, closing server, if
// the link was closed while dialling.
func (l *link) attach(server net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		server.Close()
		return false
	}
	l.server = server
	return true
}

// close closes both sides; it reports whether this call closed the link.
func (l *link) close() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.closed = true
	close(l.done)
	l.cancel()
	l.client.Close()
	if l.server != nil {
		l.server.Close()
	}
	return true
}
