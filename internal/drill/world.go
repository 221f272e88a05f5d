package drill

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"superapp/client"
)

// Worker roles: people who work on the platform while the others use it.
const (
	roleDriver   = "driver"
	roleCourier  = "courier"
	roleMerchant = "merchant"
)

// world is what the drill's users share: the people who use superapp,
// the drivers, couriers and the merchant (with one store) who serve
// them, and the backend of the mini-apps they log in to and pay (which
// receives the mini-apps' webhooks).
type world struct {
	users    []*user
	drivers  []*user
	couriers []*user
	merchant *user
	store    string
	hooks    *hooks
	run      string // this drill's tag in logins and names
	// patience bounds the wait for what settles after the load: rides
	// and orders ending, their money, webhooks arriving.
	patience time.Duration
}

// newWorld makes the users of a drill: n people, and workers in proportion
// (a driver per four people, a courier per six, one merchant). Workers'
// indexes start at 1000, so that each person and worker is told apart in
// the figures.
func newWorld(n int, endpoints []string, hc *http.Client, run string, hk *hooks) *world {
	w := &world{run: run, hooks: hk, patience: 90 * time.Second}
	mk := func(idx int, role string) *user {
		u := newUser(idx, endpoints, hc, run)
		u.role, u.w = role, w
		if role != "" {
			u.login = fmt.Sprintf("drill-%s-%s%d@example.com", run, role, idx)
		}
		return u
	}
	for i := 0; i < n; i++ {
		w.users = append(w.users, mk(i, ""))
	}
	for i := 0; i < max(2, n/4); i++ {
		w.drivers = append(w.drivers, mk(1000+i, roleDriver))
	}
	for i := 0; i < max(1, n/6); i++ {
		w.couriers = append(w.couriers, mk(1100+i, roleCourier))
	}
	w.merchant = mk(1200, roleMerchant)
	return w
}

// workers are the drivers, couriers and the merchant.
func (w *world) workers() []*user {
	out := append(append([]*user(nil), w.drivers...), w.couriers...)
	return append(out, w.merchant)
}

// everyone is every person and worker.
func (w *world) everyone() []*user { return append(append([]*user(nil), w.users...), w.workers()...) }

// open opens the store and puts drivers and couriers on duty.
func (w *world) open(ctx context.Context) error {
	m := w.merchant
	if err := m.c.RegisterMerchant(ctx, "Drill Kimbap "+w.run); err != nil {
		return fmt.Errorf("merchant: %w", err)
	}
	var hours []client.Hours
	for day := 0; day < 7; day++ {
		hours = append(hours, client.Hours{Day: day, Open: "00:00", Close: "24:00"})
	}
	st, err := m.c.CreateStore(ctx, client.StoreInput{ID: "drill-store", Name: "Drill Kimbap", Hours: hours, DeliveryFee: deliveryFee})
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	w.store = st.StoreID
	if err := m.c.AddItem(ctx, st.StoreID, client.ItemInput{ID: itemID, Name: "Bibimbap", Price: itemPrice}); err != nil {
		return fmt.Errorf("menu: %w", err)
	}
	for _, d := range w.drivers {
		d.job.at = driverSpot(d)
		if err := d.c.DriverOnline(ctx, d.job.at); err != nil {
			return fmt.Errorf("driver %d online: %w", d.idx, err)
		}
		d.job.located = time.Now()
	}
	for _, c := range w.couriers {
		if err := c.c.CourierOnline(ctx); err != nil {
			return fmt.Errorf("courier %d online: %w", c.idx, err)
		}
	}
	return nil
}

// work is a worker's next step.
func (u *user) work() *op {
	switch u.role {
	case roleDriver:
		return u.driverOp()
	case roleCourier:
		return u.courierOp()
	default:
		return u.merchantOp()
	}
}

// pinned returns a client of the user that talks to one DC only, seeing
// at least every write the user made: to read back what each DC holds.
func (u *user) pinned(base string) *client.Client {
	c := client.New([]string{base}, client.WithHTTPClient(u.hc))
	c.UseTokens(client.Tokens{AccessToken: u.c.AccessToken(), UserID: u.id})
	c.Observe(u.c.Position())
	return c
}
