package miniapp

import "superapp/internal/store"

// Pay requests and deliveries are written at every decision and attempt,
// so they are stored as compact binary records (store.Encoder) rather
// than JSON. The layouts below are the stored format: a field is never
// moved or removed, only a new layout version added.

// codecVersion is the layout version of every mini-app record.
const codecVersion = 1

func newEnc() *store.Encoder         { return store.NewEncoder(codecVersion, 256) }
func newDec(b []byte) *store.Decoder { return store.NewDecoder(b, codecVersion) }

func encodeRequest(r *reqRec) []byte {
	e := newEnc()
	e.Str(r.ID)
	e.Str(r.ClientKey)
	e.Str(r.ClientID)
	e.Str(r.UserID)
	e.Uint(r.Amount)
	e.Str(r.Currency)
	e.Str(r.Description)
	e.Str(r.Capture)
	e.Str(r.Status)
	e.Time(r.CreatedAt)
	e.Time(r.ExpiresAt)
	e.TimePtr(r.DecidedAt)
	e.Str(r.PaymentID)
	e.Str(r.HoldID)
	e.Uint(r.Captured)
	e.Uint(r.Cursor)
	return e.Bytes()
}

func decodeRequest(b []byte) (*reqRec, error) {
	d := newDec(b)
	r := &reqRec{}
	r.ID = d.Str()
	r.ClientKey = d.Str()
	r.ClientID = d.Str()
	r.UserID = d.Str()
	r.Amount = d.Uint()
	r.Currency = d.Str()
	r.Description = d.Str()
	r.Capture = d.Str()
	r.Status = d.Str()
	r.CreatedAt = d.Time()
	r.ExpiresAt = d.Time()
	r.DecidedAt = d.TimePtr()
	r.PaymentID = d.Str()
	r.HoldID = d.Str()
	r.Captured = d.Uint()
	r.Cursor = d.Uint()
	return r, d.Err()
}

func encodeDelivery(x *Delivery) []byte {
	e := newEnc()
	e.Str(x.ID)
	e.Str(x.ClientID)
	e.Str(x.Event)
	e.Blob(x.Data)
	e.Time(x.CreatedAt)
	e.Str(x.Status)
	e.Uint(uint64(len(x.Attempts)))
	for _, a := range x.Attempts {
		e.Time(a.At)
		e.Str(a.DC)
		e.Int(int64(a.StatusCode))
		e.Str(a.Error)
		e.Int(a.DurationMS)
	}
	e.TimePtr(x.NextAttemptAt)
	e.Str(x.LeasedBy)
	e.TimePtr(x.LeaseUntil)
	e.Str(x.leaseOwner)
	return e.Bytes()
}

func decodeDelivery(b []byte) (*Delivery, error) {
	d := newDec(b)
	x := &Delivery{}
	x.ID = d.Str()
	x.ClientID = d.Str()
	x.Event = d.Str()
	x.Data = d.Blob()
	x.CreatedAt = d.Time()
	x.Status = d.Str()
	x.Attempts = make([]Attempt, d.Count())
	for i := range x.Attempts {
		x.Attempts[i] = Attempt{At: d.Time(), DC: d.Str(), StatusCode: int(d.Int()), Error: d.Str(), DurationMS: d.Int()}
	}
	x.NextAttemptAt = d.TimePtr()
	x.LeasedBy = d.Str()
	x.LeaseUntil = d.TimePtr()
	x.leaseOwner = d.Str()
	return x, d.Err()
}
