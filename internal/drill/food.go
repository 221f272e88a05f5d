package drill

import (
	"context"

	"superapp/client"
)

// The drill's store sells one dish.
const (
	itemID      = "bibimbap"
	itemPrice   = 6_000
	deliveryFee = 2_000
)

// foodOp is a person's order: a bibimbap when nothing is on its way,
// else a look at the order that is.
func (u *user) foodOp() *op {
	if u.food.active != "" {
		return u.orderCheck()
	}
	store := u.w.store
	return u.book(&u.food, "food", "order", func(ctx context.Context, key string) (string, bool, error) {
		// Setting the cart is idempotent by itself; checkout with the
		// same id returns the same order.
		if err := u.c.SetCart(ctx, store, itemID, 1); err != nil {
			return "", false, err
		}
		o, err := u.c.Checkout(ctx, key, store, "Teheran-ro 1")
		return o.OrderID, o.Ended(), err
	})
}

func (u *user) orderCheck() *op {
	return u.follow(&u.food, "food", func(ctx context.Context, id string) (bool, error) {
		o, err := u.c.Order(ctx, id)
		return err == nil && o.Ended(), err
	})
}

// merchantOp is the merchant's next step: take the store's orders one
// step further (accept, prepare, ready for pickup), one order after the
// other, looking at the store's orders again when done with those seen.
func (u *user) merchantOp() *op {
	j := &u.job
	for len(j.queue) > 0 {
		o := j.queue[0]
		j.queue = j.queue[1:]
		step := map[string]string{"placed": client.OrderAccept, "accepted": client.OrderPreparing, "preparing": client.OrderReady}[o.Status]
		if step == "" {
			continue
		}
		return &op{feature: "food", write: true, run: func(ctx context.Context) error {
			next, err := u.c.OrderStep(ctx, o.OrderID, step)
			if err == nil && next.Status != "ready" {
				j.queue = append(j.queue, next)
			}
			return err
		}}
	}
	store := u.w.store
	return &op{feature: "food", idle: true, run: func(ctx context.Context) error {
		os, err := u.c.StoreOrders(ctx, store)
		if err != nil {
			return err
		}
		j.queue = os
		return nil
	}}
}

// courierOp is a courier's next step: claim an order, wait until it is
// ready, pick it up and deliver it.
func (u *user) courierOp() *op {
	j := &u.job
	if j.id == "" {
		return &op{feature: "food", idle: true, run: func(ctx context.Context) error {
			os, err := u.c.CourierOrders(ctx)
			if err != nil || len(os) == 0 {
				return err
			}
			j.id, j.status = os[u.r.IntN(len(os))].OrderID, "claimable"
			return nil
		}}
	}
	id := j.id
	step := map[string]string{"claimable": client.OrderClaim, "ready": client.OrderPickup, "picked_up": client.OrderDeliver}[j.status]
	order := func(o client.Order, err error) (stand, error) { return stand{o.Ended(), o.CourierID, o.Status}, err }
	if step == "" {
		return u.look("food", j.status != "", func(ctx context.Context) (stand, error) { return order(u.c.Order(ctx, id)) })
	}
	return u.advance("food", step == client.OrderClaim, func(ctx context.Context) (stand, error) { return order(u.c.OrderStep(ctx, id, step)) })
}
