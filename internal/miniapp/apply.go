package miniapp

import (
	"encoding/json"
	"slices"

	"superapp/internal/apperr"
	"superapp/internal/cmdlog"
	"superapp/internal/store"
)

// Apply applies one MINIAPP command to the entry's batch. It is
// deterministic: e.At is its only clock.
func (s *State) Apply(seq uint64, e *cmdlog.Envelope) (any, *apperr.Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	tx := s.overlay
	bad := apperr.New(apperr.Malformed, "bad command")
	switch e.Kind {
	case kindCreate:
		var c createCmd
		if json.Unmarshal(e.Data, &c) != nil || c.Request.ID == "" {
			return nil, bad
		}
		if old, ok := s.getRequest(tx, c.Request.ID); ok {
			return old.PayRequest, nil
		}
		r := c.Request
		r.Status, r.CreatedAt = StatusPending, e.At
		if r.ExpiresAt.IsZero() {
			r.ExpiresAt = e.At.Add(DefaultRequestTTL)
		}
		tx.Set(requestKey(r.ID), encodeRequest(&reqRec{PayRequest: r, Cursor: e.Cursor}))
		tx.SetIndex(undecidedKey(r.UserID, e.Cursor), []byte(r.ID)) // read by queries only
		return r, nil

	case kindApprove, kindDecline, kindResolve:
		var c decideCmd
		if json.Unmarshal(e.Data, &c) != nil {
			return nil, bad
		}
		rec, ok := s.getRequest(tx, c.ID)
		if !ok {
			return nil, apperr.New(apperr.NotFound, "no such pay request")
		}
		r := &rec.PayRequest
		event := ""
		switch e.Kind {
		case kindApprove, kindDecline:
			if r.UserID != e.Actor {
				return nil, apperr.New(apperr.NotFound, "no such pay request")
			}
			if r.Status != StatusPending {
				return nil, apperr.New(apperr.Conflict, "this pay request is %s already", r.Status)
			}
			// An approval's money moved before it was recorded: it is
			// recorded even when it arrives after the expiry.
			if e.Kind == kindDecline && !e.At.Before(r.ExpiresAt) {
				return nil, apperr.New(apperr.Conflict, "this pay request expired")
			}
			at := e.At
			r.DecidedAt = &at
			if e.Kind == kindApprove {
				r.Status, r.PaymentID, r.HoldID, event = StatusApproved, c.PaymentID, c.HoldID, EventPayApproved
			} else {
				r.Status, event = StatusDeclined, EventPayDeclined
			}
			tx.Delete(undecidedKey(r.UserID, rec.Cursor))
		case kindResolve:
			if r.ClientID != e.Actor {
				return nil, apperr.New(apperr.NotFound, "no such pay request")
			}
			if r.Capture != CaptureHold || r.Status != StatusApproved {
				return nil, apperr.New(apperr.Conflict, "only an approved hold can be captured or released; this request is %s", r.Status)
			}
			switch c.Status {
			case StatusCaptured:
				r.Status, r.Captured, event = StatusCaptured, c.Captured, EventPayCaptured
			case StatusReleased:
				r.Status, event = StatusReleased, EventPayReleased
			default:
				return nil, bad
			}
		}
		tx.Set(requestKey(r.ID), encodeRequest(rec))
		if c.Webhook {
			data, _ := json.Marshal(map[string]any{"pay_request": r})
			s.enqueue(tx, e, r.ClientID, event, r.ID+"/"+event, data)
		}
		return *r, nil

	case kindRevoked:
		var c revokedCmd
		if json.Unmarshal(e.Data, &c) != nil || c.GrantID == "" {
			return nil, bad
		}
		if !tx.Has(revokedKey(c.GrantID)) {
			tx.Set(revokedKey(c.GrantID), nil)
			data, _ := json.Marshal(map[string]any{"grant_id": c.GrantID, "user_id": c.UserID, "reason": c.Reason})
			s.enqueue(tx, e, c.ClientID, EventGrantRevoked, "grant/"+c.GrantID+"/revoked", data)
		}
		return map[string]string{"grant_id": c.GrantID}, nil

	case kindChecked:
		var c checkedCmd
		if json.Unmarshal(e.Data, &c) != nil || c.UpTo < 0 {
			return nil, bad
		}
		if c.UpTo > s.revocationsChecked(tx) {
			tx.Set(checkedKey, []byte(store.Seq(uint64(c.UpTo))))
		}
		return map[string]int{"up_to": c.UpTo}, nil

	case kindLease:
		var c leaseCmd
		if json.Unmarshal(e.Data, &c) != nil || c.Owner == "" {
			return nil, bad
		}
		d, ok := s.delivery(tx, c.DeliveryID)
		switch {
		case !ok:
			return nil, apperr.New(apperr.NotFound, "no such delivery")
		case d.Status != DeliveryPending:
			return nil, apperr.New(apperr.Conflict, "delivery is %s", d.Status)
		case d.LeaseUntil != nil && e.At.Before(*d.LeaseUntil) && d.leaseOwner != c.Owner:
			return nil, apperr.New(apperr.Conflict, "another node is delivering it")
		case d.NextAttemptAt != nil && e.At.Before(*d.NextAttemptAt):
			return nil, apperr.New(apperr.Conflict, "not due yet")
		}
		until := c.Until
		d.leaseOwner, d.LeasedBy, d.LeaseUntil = c.Owner, c.DC, &until
		s.putDelivery(tx, d)
		return d.view(), nil

	case kindAttempt:
		var c attemptCmd
		if json.Unmarshal(e.Data, &c) != nil {
			return nil, bad
		}
		d, ok := s.delivery(tx, c.DeliveryID)
		if !ok {
			return nil, apperr.New(apperr.NotFound, "no such delivery")
		}
		if d.Status != DeliveryPending {
			// Delivered meanwhile by a node that took over: keep the
			// outcome, note the attempt.
			d.addAttempt(c.Attempt)
			s.putDelivery(tx, d)
			return d.view(), nil
		}
		d.addAttempt(c.Attempt)
		if d.leaseOwner == c.Owner {
			d.leaseOwner, d.LeasedBy, d.LeaseUntil = "", "", nil
		}
		switch {
		case c.Delivered:
			d.Status, d.NextAttemptAt = DeliveryDelivered, nil
		case c.NextAt == nil:
			d.Status, d.NextAttemptAt = DeliveryFailed, nil
		default:
			next := *c.NextAt
			d.NextAttemptAt = &next
		}
		s.putDelivery(tx, d)
		return d.view(), nil

	case kindRotate:
		var c rotateCmd
		if json.Unmarshal(e.Data, &c) != nil || c.ClientID == "" {
			return nil, bad
		}
		if c.Version != secretVersion(tx, c.ClientID)+1 {
			return nil, apperr.New(apperr.Conflict, "the webhook secret was rotated meanwhile; retry")
		}
		tx.Set(secretKey(c.ClientID), []byte(store.Seq(c.Version)))
		return map[string]uint64{"version": c.Version}, nil
	}
	return nil, apperr.New(apperr.Invalid, "unknown command %q", e.Kind)
}

func (d *Delivery) addAttempt(a Attempt) {
	d.Attempts = append(d.Attempts, a)
	if len(d.Attempts) > maxAttempts {
		d.Attempts = d.Attempts[len(d.Attempts)-maxAttempts:]
	}
}

// enqueue records a webhook delivery of an event, once per event key. It
// need not look for one recorded before: each event is enqueued by the
// one command that makes it happen (a request leaves pending once and is
// resolved once; a grant's revocation is announced once, see revoked/).
func (s *State) enqueue(tx *store.Overlay, e *cmdlog.Envelope, clientID, event, key string, data []byte) {
	id := DeliveryID(key)
	at := e.At
	d := &Delivery{ID: id, ClientID: clientID, Event: event, Data: data, CreatedAt: e.At, Status: DeliveryPending, Attempts: []Attempt{}, NextAttemptAt: &at}
	s.putDelivery(tx, d)
	tx.SetIndex(clientDeliveryKey(clientID, e.Cursor), []byte(id)) // read by queries only
}

// delivery is the delivery id as the command being applied sees it: from
// memory while pending. The caller holds s.mu and writes what it changes
// with putDelivery.
func (s *State) delivery(tx *store.Overlay, id string) (*Delivery, bool) {
	if d := s.pending[id]; d != nil {
		return d, true
	}
	return s.getDelivery(tx, id)
}

// putDelivery writes d and keeps the pending ones in memory (and in due/).
func (s *State) putDelivery(tx *store.Overlay, d *Delivery) {
	tx.Set(deliveryKey(d.ID), encodeDelivery(d))
	_, held := s.pending[d.ID]
	switch pending := d.Status == DeliveryPending; {
	case pending && !held:
		s.pending[d.ID] = d
		tx.SetIndex(dueKey(d.ID), nil) // read at load only
	case !pending && held:
		delete(s.pending, d.ID)
		tx.Delete(dueKey(d.ID))
	}
}

func (d *Delivery) view() Delivery {
	out := *d
	out.Attempts = slices.Clone(d.Attempts)
	return out
}
