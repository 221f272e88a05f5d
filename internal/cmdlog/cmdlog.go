// Package cmdlog is the write path every feature shares: a command is an
// Envelope appended to the feature's stream; every node applies the stream in
// order through a Machine, which records one Outcome per command id. A write
// is answered only from the Outcome the local node applied after the append
// was committed, so a retried id returns the original outcome and never
// applies twice, whichever node it reaches and however late.
//
// It must never hold state that is not derived from the log, and never read
// the wall clock while applying: Envelope.At is the only time apply sees.
package cmdlog

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"superapp/internal/apperr"
	"superapp/internal/store"
)

// Envelope is one command in a feature's stream.
type Envelope struct {
	// ID is the idempotency id: "<scope>/<client key>" when the client gave a
	// key, a random id otherwise.
	ID string `json:"id"`
	// Kind names the command, e.g. "account.create".
	Kind string `json:"kind"`
	// Actor is the user id the command is performed for ("" when anonymous).
	Actor string `json:"actor,omitempty"`
	// At is when the command was accepted; apply uses it as "now".
	At time.Time `json:"at"`
	// Hash fingerprints the request so that a reused key with another
	// request is refused instead of answered with the wrong outcome.
	Hash string `json:"hash,omitempty"`
	// Data is the command's own payload.
	Data json.RawMessage `json:"data"`
	// Cursor is the command's own position, set while applying: unique and
	// increasing within the stream, also among the commands of one entry.
	Cursor uint64 `json:"-"`
}

// CursorOf is the position of the i-th command of the entry at seq.
func CursorOf(seq uint64, i int) uint64 { return seq<<16 | uint64(i) }

// Outcome is what applying a command decided, kept per command id.
type Outcome struct {
	Seq   uint64          `json:"seq"`
	Hash  string          `json:"hash,omitempty"`
	Err   *apperr.Error   `json:"err,omitempty"`
	Value json.RawMessage `json:"value,omitempty"`
}

// final reports whether the outcome uses up its id: a success, or an
// internal failure (a panic part-way may have changed state, so applying
// the command again could apply it twice). A refusal does not.
func (o Outcome) final() bool { return o.Err == nil || o.Err.Code == apperr.Internal }

// Final reports whether the outcome uses up its command id: applying the
// id again does nothing.
func (o Outcome) Final() bool { return o.final() }

// ApplyFunc applies one command to a feature's state and returns its result
// or a client error. It must be deterministic. A command it refuses must
// leave the state as it was (or be safe to apply again): a refused id may
// be sent again, corrected.
type ApplyFunc func(seq uint64, e *Envelope) (any, *apperr.Error)

// Machine applies a stream's commands in order and remembers the outcome of
// every command id. Its state lives in the node's store: each entry's
// writes, the outcomes of its commands and the entry's position go in one
// batch, so a node that restarts resumes at the next entry. It is safe for
// concurrent use; only one goroutine applies.
type Machine struct {
	name  string
	apply ApplyFunc
	log   *slog.Logger
	space *store.Space
	// load fills what the feature keeps in memory from the store, once it
	// is restored and before the first entry is applied.
	load func()

	// applying serializes Apply: one entry's batch at a time.
	applying sync.Mutex

	mu       sync.Mutex
	applied  uint64
	target   uint64 // stream tail when following began; ready once applied >= target
	targeted bool   // target is known
	pending  uint64 // messages still behind the last one applied, as the server reported
	stalled  bool   // the follower saw no progress while behind the stream's tail
	broken   error  // the store failed under an entry: nothing more is applied
	changed  chan struct{}
	// digest chains every applied entry with its outcome: two nodes at the
	// same position with the same digest applied the same log the same way.
	digest [sha256.Size]byte
	// recent holds the outcomes of the last commands applied: the writer
	// waiting for its own answer, and a retry soon after, read them
	// without the store.
	recent recentOutcomes
}

// recentOutcomes is a ring of the last outcomes committed, by command id;
// bound: recentCap commands.
type recentOutcomes struct {
	ids  []string
	next int
	byID map[string]Outcome
}

// recentCap is a few hundred milliseconds of the busiest stream's
// commands: long enough for every writer to read its own outcome.
const recentCap = 4096

func (r *recentOutcomes) put(id string, o Outcome) {
	if r.byID == nil {
		r.ids, r.byID = make([]string, recentCap), make(map[string]Outcome, recentCap)
	}
	if _, ok := r.byID[id]; !ok {
		if old := r.ids[r.next]; old != "" {
			delete(r.byID, old)
		}
		r.ids[r.next] = id
		r.next = (r.next + 1) % recentCap
	}
	r.byID[id] = o
}

// NewMachine returns a machine named after its stream, keeping its state
// in space.
func NewMachine(name string, space *store.Space, apply ApplyFunc, log *slog.Logger) *Machine {
	return &Machine{name: name, space: space, apply: apply, log: log, changed: make(chan struct{})}
}

// Name is the stream the machine follows.
func (m *Machine) Name() string { return m.name }

// Space is the part of the store the machine writes.
func (m *Machine) Space() *store.Space { return m.space }

// SetLoader sets the function that fills the feature's in-memory state
// from the store when the machine is restored.
func (m *Machine) SetLoader(load func()) { m.load = load }

// Restore sets the machine to the position its store holds and loads the
// feature's in-memory state. Call it once, before the first Apply.
func (m *Machine) Restore() (err error) {
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(store.Failure)
			if !ok {
				panic(r)
			}
			err = f
		}
	}()
	p := m.space.Position()
	m.mu.Lock()
	m.applied, m.digest = p.Seq, p.Digest
	m.mu.Unlock()
	if m.load != nil {
		m.load()
	}
	return nil
}

func outcomeKey(id string) string { return "_out/" + id }

// Apply applies the stream entry at seq: one envelope, or a batch of them
// (a JSON array) applied in order. Entries at or below the applied position
// are ignored, so a consumer that redelivers cannot apply twice. When the
// store fails under it, nothing of the entry is kept and the machine stops.
func (m *Machine) Apply(seq uint64, data []byte, pending uint64) {
	m.applying.Lock()
	defer m.applying.Unlock()
	m.mu.Lock()
	if seq <= m.applied || m.broken != nil {
		m.mu.Unlock()
		return
	}
	m.mu.Unlock()

	tx := m.space.Begin()
	committed := false
	defer func() {
		if committed {
			return
		}
		tx.Abort()
		if r := recover(); r != nil {
			f, ok := r.(store.Failure)
			if !ok {
				panic(r)
			}
			m.mu.Lock()
			m.broken = f
			m.mu.Unlock()
		}
	}()
	h := sha256.New()
	h.Write(m.digest[:])
	fmt.Fprintf(h, "%d:%d:", seq, len(data))
	h.Write(data)
	envs, err := decodeEntry(data)
	if err != nil {
		// Every node skips the same bad entry the same way.
		m.log.Error("skip undecodable entry", "stream", m.name, "seq", seq, "err", err)
	}
	var entryOutcomes map[string]Outcome // bound: the commands of one entry
	for i := range envs {
		env := &envs[i]
		if env.ID == "" {
			continue
		}
		env.Cursor = CursorOf(seq, i)
		// Outcomes of this entry are in entryOutcomes; older ones are
		// committed: reading those past the batch skips its index.
		prev, seen := entryOutcomes[env.ID]
		if !seen {
			prev, seen = m.Outcome(env.ID)
		}
		// A refused command had no effect, so it does not use up its id:
		// the same id may come back, corrected, and be applied.
		if seen && prev.final() {
			continue
		}
		o := Outcome{Seq: seq, Hash: env.Hash}
		v, aerr := m.safeApply(seq, env)
		if aerr != nil {
			o.Err = aerr
		} else if v != nil {
			raw, err := json.Marshal(v)
			if err != nil {
				o.Err = apperr.New(apperr.Internal, "encode outcome")
			}
			o.Value = raw
		}
		oj, _ := json.Marshal(o)
		h.Write(oj)
		tx.SetBlind(outcomeKey(env.ID), oj)
		if entryOutcomes == nil {
			entryOutcomes = map[string]Outcome{}
		}
		entryOutcomes[env.ID] = o
	}
	var digest [sha256.Size]byte
	h.Sum(digest[:0])
	tx.SetPosition(store.Position{Seq: seq, Digest: digest})
	// Readers of the outcome wait on applied: it moves only after the
	// commit, so no one sees the position before the state.
	tx.Commit()
	committed = true
	m.mu.Lock()
	for id, o := range entryOutcomes {
		m.recent.put(id, o)
	}
	m.digest = digest
	m.applied = seq
	m.pending = pending
	close(m.changed)
	m.changed = make(chan struct{})
	m.mu.Unlock()
	tx.RunAfterCommit()
}

// decodeEntry decodes a stream entry: one envelope or an array of them.
func decodeEntry(data []byte) ([]Envelope, error) {
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) > 0 && trimmed[0] == '[' {
		var envs []Envelope
		err := json.Unmarshal(trimmed, &envs)
		return envs, err
	}
	var env Envelope
	if err := json.Unmarshal(trimmed, &env); err != nil {
		return nil, err
	}
	return []Envelope{env}, nil
}

func (m *Machine) safeApply(seq uint64, e *Envelope) (v any, aerr *apperr.Error) {
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(store.Failure); ok {
				panic(r) // the store, not the command, failed: stop the entry
			}
			m.log.Error("apply panicked", "stream", m.name, "seq", seq, "kind", e.Kind, "panic", r)
			v, aerr = nil, apperr.New(apperr.Internal, "internal error")
		}
	}()
	return m.apply(seq, e)
}

// Digest returns the applied position and the digest of everything
// applied up to it.
func (m *Machine) Digest() (uint64, string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.applied, hex.EncodeToString(m.digest[:])
}

// SetTarget records the stream's last sequence when following began.
func (m *Machine) SetTarget(seq uint64) {
	m.mu.Lock()
	m.target, m.targeted = seq, true
	m.mu.Unlock()
}

// SetStalled records whether the follower found the machine stuck behind
// the stream's tail.
func (m *Machine) SetStalled(stalled bool) {
	m.mu.Lock()
	m.stalled = stalled
	m.mu.Unlock()
}

// Applied returns the last applied stream sequence.
func (m *Machine) Applied() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.applied
}

// Tail is the stream's last sequence as far as this machine knows: what it
// applied plus what the stream told it was still pending. A position far
// beyond it was not made by this stream a moment ago.
func (m *Machine) Tail() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return max(m.applied+m.pending, m.target)
}

// CaughtUp reports whether the machine has applied everything the stream
// held when following began and is not far behind now.
func (m *Machine) CaughtUp() (bool, string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.targeted {
		return false, fmt.Sprintf("%s: stream tail not known yet", m.name)
	}
	if m.broken != nil {
		return false, fmt.Sprintf("%s: %v", m.name, m.broken)
	}
	if m.applied < m.target {
		return false, fmt.Sprintf("%s: applied %d of %d", m.name, m.applied, m.target)
	}
	if m.stalled {
		return false, fmt.Sprintf("%s: stalled at %d behind the stream's tail", m.name, m.applied)
	}
	if m.pending > maxPendingWhenReady {
		return false, fmt.Sprintf("%s: %d entries behind", m.name, m.pending)
	}
	return true, ""
}

const maxPendingWhenReady = 1000

// Outcome returns the outcome recorded for a command id.
func (m *Machine) Outcome(id string) (Outcome, bool) {
	m.mu.Lock()
	o, ok := m.recent.byID[id]
	m.mu.Unlock()
	if ok {
		if o.Err != nil {
			e := *o.Err // the caller's own, as one decoded from the store
			o.Err = &e
		}
		return o, true
	}
	ok = m.space.GetJSON(outcomeKey(id), &o)
	return o, ok
}

// WaitApplied blocks until the machine has applied seq or ctx ends.
func (m *Machine) WaitApplied(ctx context.Context, seq uint64) error {
	for {
		m.mu.Lock()
		if m.applied >= seq {
			m.mu.Unlock()
			return nil
		}
		ch := m.changed
		m.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Appender appends an entry to a stream and returns its sequence once it
// is committed on a quorum. A repeated msgID within the engine's dedupe
// window returns the original sequence.
type Appender interface {
	Append(ctx context.Context, subject, msgID string, data []byte) (uint64, error)
}

// ErrTooLarge is what an Appender returns for an entry its stream refuses
// for its size: retrying cannot help.
var ErrTooLarge = errors.New("entry too large")

// ErrIsolated is what an Appender returns when its node is cut off from the
// majority and so cannot commit.
var ErrIsolated = errors.New("this data center is cut off from the others")

// Submitter writes commands to one stream and answers with their outcome.
// Commands submitted at the same time share stream entries (group commit):
// while one entry is being committed the next fills up, so a busy stream
// makes fewer, larger entries instead of queueing.
type Submitter struct {
	Log     Appender
	Machine *Machine
	// Subject is the stream subject prefix, e.g. "identity"; batches go to
	// "<Subject>.batch", single commands to "<Subject>.<kind>".
	Subject string
	Now     func() time.Time

	batcher batcher
}

// Result is the answer to a submitted command.
type Result struct {
	Outcome
	// Replayed is true when the command id had been applied before.
	Replayed bool
	// Position is the stream position the caller may wait for elsewhere.
	Position Position
}

// Write identifies one write request: ID is its idempotency id, Hash the
// fingerprint of the request it was first used for.
type Write struct {
	ID   string
	Hash string
	// Unseen says the caller looked up ID's outcome just before and found
	// none that uses it up: Submit need not look again.
	Unseen bool
}

// Submit appends a command and waits until the local node has applied it.
// The returned error is an *apperr.Error: the command's own outcome error,
// idempotency_key_reused, or unavailable when no quorum committed it in time.
func (s *Submitter) Submit(ctx context.Context, w Write, kind, actor string, data any) (Result, error) {
	id, hash := w.ID, w.Hash
	if id == "" {
		id = NewID()
	}
	if !w.Unseen {
		if o, ok := s.Machine.Outcome(id); ok && o.final() {
			return s.result(o, hash, true)
		}
	}
	raw, err := json.Marshal(data)
	if err != nil {
		return Result{}, fmt.Errorf("encode %s: %w", kind, err)
	}
	env := Envelope{ID: id, Kind: kind, Actor: actor, At: s.Now().UTC(), Hash: hash, Data: raw}
	buf, err := json.Marshal(&env)
	if err != nil {
		return Result{}, fmt.Errorf("encode envelope: %w", err)
	}
	seq, err := s.append(ctx, id, buf)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return Result{}, err
		}
		if errors.Is(err, ErrTooLarge) {
			return Result{}, apperr.New(apperr.TooLarge, "the request is too large to store")
		}
		if errors.Is(err, ErrIsolated) {
			return Result{}, &apperr.Error{Code: apperr.Isolated, Message: "this data center is cut off from the others and cannot commit writes; retry with the same id on another", RetryAfter: 1}
		}
		return Result{}, &apperr.Error{Code: apperr.Unavailable, Message: "the write could not be committed; retry with the same id", RetryAfter: 1}
	}
	if err := s.Machine.WaitApplied(ctx, seq); err != nil {
		return Result{}, &apperr.Error{Code: apperr.Unavailable, Message: "the write was committed but not yet applied here; retry with the same id", RetryAfter: 1}
	}
	o, ok := s.Machine.Outcome(id)
	if !ok {
		return Result{}, fmt.Errorf("%s seq %d: no outcome for %s", s.Machine.name, seq, id)
	}
	return s.result(o, hash, o.Seq != seq)
}

func (s *Submitter) result(o Outcome, hash string, replayed bool) (Result, error) {
	if o.Hash != hash {
		return Result{}, apperr.New(apperr.IdemReused, "this idempotency key was used for another request")
	}
	r := Result{Outcome: o, Replayed: replayed, Position: Position{Stream: s.Machine.name, Seq: o.Seq}}
	if o.Err != nil {
		return r, o.Err
	}
	return r, nil
}

// NewID returns a random 128-bit id in hex.
func NewID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return hex.EncodeToString(b[:])
}
