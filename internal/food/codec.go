package food

import "superapp/internal/store"

// Orders are written at every step, and stores, items and carts read at
// every checkout, so they are stored as compact binary records
// (store.Encoder) rather than JSON. The layouts below are the stored
// format: a field is never moved or removed, only a new layout version
// added.

// codecVersion is the layout version of every food record.
const codecVersion = 1

func newEnc() *store.Encoder         { return store.NewEncoder(codecVersion, 256) }
func newDec(b []byte) *store.Decoder { return store.NewDecoder(b, codecVersion) }

func encLines(e *store.Encoder, ls []Line) {
	e.Uint(uint64(len(ls)))
	for _, l := range ls {
		e.Str(l.ItemID)
		e.Str(l.Name)
		e.Uint(l.Price)
		e.Int(l.Quantity)
	}
}

func decLines(d *store.Decoder) []Line {
	ls := make([]Line, d.Count())
	for i := range ls {
		ls[i] = Line{ItemID: d.Str(), Name: d.Str(), Price: d.Uint(), Quantity: d.Int()}
	}
	return ls
}

// encodeOrder is an order as stored.
func encodeOrder(o *Order) []byte {
	e := newEnc()
	e.Str(o.ID)
	e.Str(o.User)
	e.Str(o.StoreID)
	e.Str(o.Merchant)
	e.Str(o.Courier)
	e.Str(o.Status)
	encLines(e, o.Lines)
	e.Str(o.Address)
	e.Uint(o.FoodTotal)
	e.Uint(o.DeliveryFee)
	e.Uint(o.PlatformFee)
	e.Uint(o.Total)
	e.Str(o.Currency)
	e.Fixed(o.HoldID[:])
	e.Uint(o.Refunded)
	e.Str(o.HomeDC)
	e.Time(o.PlacedAt)
	e.Time(o.UpdatedAt)
	e.TimePtr(o.EndedAt)
	e.Str(o.CancelledBy)
	e.Str(o.Reason)
	return e.Bytes()
}

func decodeOrder(b []byte) (*Order, error) {
	d := newDec(b)
	o := &Order{}
	o.ID = d.Str()
	o.User = d.Str()
	o.StoreID = d.Str()
	o.Merchant = d.Str()
	o.Courier = d.Str()
	o.Status = d.Str()
	o.Lines = decLines(d)
	o.Address = d.Str()
	o.FoodTotal = d.Uint()
	o.DeliveryFee = d.Uint()
	o.PlatformFee = d.Uint()
	o.Total = d.Uint()
	o.Currency = d.Str()
	d.Fixed(o.HoldID[:])
	o.Refunded = d.Uint()
	o.HomeDC = d.Str()
	o.PlacedAt = d.Time()
	o.UpdatedAt = d.Time()
	o.EndedAt = d.TimePtr()
	o.CancelledBy = d.Str()
	o.Reason = d.Str()
	return o, d.Err()
}

func encodeStore(st *storeRec) []byte {
	e := newEnc()
	e.Str(st.ID)
	e.Str(st.Merchant)
	e.Str(st.Name)
	e.Uint(uint64(len(st.Hours)))
	for _, h := range st.Hours {
		e.Int(int64(h.Day))
		e.Str(h.Open)
		e.Str(h.Close)
	}
	e.Uint(st.DeliveryFee)
	e.Str(st.Currency)
	e.Time(st.CreatedAt)
	e.Int(int64(st.Items))
	e.Int(int64(st.Next))
	return e.Bytes()
}

func decodeStore(b []byte) (*storeRec, error) {
	d := newDec(b)
	st := &storeRec{}
	st.ID = d.Str()
	st.Merchant = d.Str()
	st.Name = d.Str()
	st.Hours = make([]Hours, d.Count())
	for i := range st.Hours {
		st.Hours[i] = Hours{Day: int(d.Int()), Open: d.Str(), Close: d.Str()}
	}
	st.DeliveryFee = d.Uint()
	st.Currency = d.Str()
	st.CreatedAt = d.Time()
	st.Items = int(d.Int())
	st.Next = int(d.Int())
	return st, d.Err()
}

func encodeItem(it *itemRec) []byte {
	e := newEnc()
	e.Int(int64(it.Pos))
	e.Str(it.Item.ID)
	e.Str(it.Item.Name)
	e.Uint(it.Item.Price)
	e.Bool(it.Item.Stock != nil)
	if it.Item.Stock != nil {
		e.Int(*it.Item.Stock)
	}
	return e.Bytes()
}

func decodeItem(b []byte) (*itemRec, error) {
	d := newDec(b)
	it := &itemRec{Pos: int(d.Int())}
	it.Item.ID = d.Str()
	it.Item.Name = d.Str()
	it.Item.Price = d.Uint()
	if d.Bool() {
		n := d.Int()
		it.Item.Stock = &n
	}
	return it, d.Err()
}

func encodeCart(ls []Line) []byte {
	e := newEnc()
	encLines(e, ls)
	return e.Bytes()
}

func decodeCart(b []byte) ([]Line, error) {
	d := newDec(b)
	ls := decLines(d)
	return ls, d.Err()
}
