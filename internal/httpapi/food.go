package httpapi

import (
	"context"
	"encoding/json"
	"net/http"

	"superapp/internal/apperr"
	"superapp/internal/food"
)

// The food delivery API: merchants run stores and catalogues, users browse,
// search, fill a cart per store and check out, merchants and couriers move
// the order on. Every call checks who calls: an order exists only for its
// user, its store's merchant and its courier; a store's catalogue and
// orders change only by its merchant; only the courier who claimed an
// order picks it up and delivers it.

func (s *Server) foodRoutes() []route {
	fd := s.cfg.Food
	if fd != nil {
		fd.Notify(s.pushFood)
	}
	// step runs a party's step on the order in the path.
	step := func(fn func(ctx context.Context, user, orderID string) (food.View, food.Written, error)) func(c *call) error {
		return func(c *call) error {
			ctx, cancel := c.writeCtx()
			defer cancel()
			v, w, err := fn(ctx, c.user.UserID, c.r.PathValue("id"))
			if err != nil {
				return err
			}
			return c.foodWritten(http.StatusOK, w, v)
		}
	}
	// withReason decodes an optional {"reason"} body first.
	withReason := func(fn func(ctx context.Context, user, orderID, reason string) (food.View, food.Written, error)) func(c *call) error {
		return func(c *call) error {
			var in struct {
				Reason string `json:"reason"`
			}
			if len(c.body) > 0 {
				if err := c.decode(&in); err != nil {
					return err
				}
			}
			return step(func(ctx context.Context, user, orderID string) (food.View, food.Written, error) {
				return fn(ctx, user, orderID, in.Reason)
			})(c)
		}
	}
	courier := func(online bool) func(c *call) error {
		return func(c *call) error {
			w, err := c.write()
			if err != nil {
				return err
			}
			ctx, cancel := c.writeCtx()
			defer cancel()
			wr, err := fd.SetCourier(ctx, w, c.user.UserID, online)
			if err != nil {
				return err
			}
			return c.foodWritten(http.StatusOK, wr, map[string]any{"courier_id": c.user.UserID, "online": online})
		}
	}
	return []route{
		{method: "POST", pattern: "/v1/food/stores", feature: "food", auth: true, maxBody: smallBody, handle: func(c *call) error {
			var in food.StoreInput
			if err := c.decode(&in); err != nil {
				return err
			}
			ctx, cancel := c.writeCtx()
			defer cancel()
			v, w, err := fd.CreateStore(ctx, c.user.UserID, in)
			if err != nil {
				return err
			}
			return c.foodWritten(http.StatusCreated, w, v)
		}},
		{method: "GET", pattern: "/v1/food/stores", feature: "food", auth: true, handle: func(c *call) error {
			open := false
			switch c.r.URL.Query().Get("open") {
			case "", "false":
			case "true":
				open = true
			default:
				return apperr.Field("open", "open is true or false")
			}
			return c.json(http.StatusOK, map[string]any{"stores": fd.Stores(open)})
		}},
		{method: "GET", pattern: "/v1/food/stores/{id}", feature: "food", auth: true, handle: func(c *call) error {
			v, err := fd.Store(c.r.PathValue("id"))
			if err != nil {
				return err
			}
			return c.json(http.StatusOK, v)
		}},
		{method: "POST", pattern: "/v1/food/stores/{id}/items", feature: "food", auth: true, maxBody: smallBody, handle: func(c *call) error {
			var in food.ItemInput
			if err := c.decode(&in); err != nil {
				return err
			}
			w, err := c.write()
			if err != nil {
				return err
			}
			ctx, cancel := c.writeCtx()
			defer cancel()
			it, wr, err := fd.PutItem(ctx, w, c.user.UserID, c.r.PathValue("id"), in)
			if err != nil {
				return err
			}
			return c.foodWritten(http.StatusOK, wr, it)
		}},
		{method: "GET", pattern: "/v1/food/stores/{id}/orders", feature: "food", auth: true, handle: func(c *call) error {
			os, err := fd.StoreOrders(c.user.UserID, c.r.PathValue("id"))
			if err != nil {
				return err
			}
			return c.json(http.StatusOK, map[string]any{"orders": os})
		}},
		{method: "GET", pattern: "/v1/food/stores/{id}/cart", feature: "food", auth: true, handle: func(c *call) error {
			cart, err := fd.Cart(c.user.UserID, c.r.PathValue("id"))
			if err != nil {
				return err
			}
			return c.json(http.StatusOK, cart)
		}},
		{method: "POST", pattern: "/v1/food/stores/{id}/cart", feature: "food", auth: true, maxBody: smallBody, handle: func(c *call) error {
			var in food.CartInput
			if err := c.decode(&in); err != nil {
				return err
			}
			w, err := c.write()
			if err != nil {
				return err
			}
			ctx, cancel := c.writeCtx()
			defer cancel()
			cart, wr, err := fd.SetCart(ctx, w, c.user.UserID, c.r.PathValue("id"), in)
			if err != nil {
				return err
			}
			return c.foodWritten(http.StatusOK, wr, cart)
		}},
		{method: "GET", pattern: "/v1/food/search", feature: "food", auth: true, handle: func(c *call) error {
			hits, err := fd.Search(c.r.URL.Query().Get("q"))
			if err != nil {
				return err
			}
			return c.json(http.StatusOK, map[string]any{"items": hits})
		}},
		{method: "POST", pattern: "/v1/food/orders", feature: "food", auth: true, maxBody: smallBody, handle: func(c *call) error {
			var in food.CheckoutInput
			if err := c.decode(&in); err != nil {
				return err
			}
			ctx, cancel := c.writeCtx()
			defer cancel()
			v, w, err := fd.Checkout(ctx, c.user.UserID, in)
			if err != nil {
				return err
			}
			return c.foodWritten(http.StatusCreated, w, v)
		}},
		{method: "GET", pattern: "/v1/food/orders", feature: "food", auth: true, handle: func(c *call) error {
			return c.json(http.StatusOK, map[string]any{"orders": fd.MyOrders(c.user.UserID)})
		}},
		{method: "GET", pattern: "/v1/food/orders/{id}", feature: "food", auth: true, handle: func(c *call) error {
			v, err := fd.Order(c.r.PathValue("id"), c.user.UserID)
			if err != nil {
				return err
			}
			return c.json(http.StatusOK, v)
		}},
		{method: "POST", pattern: "/v1/food/orders/{id}/accept", feature: "food", auth: true, handle: step(fd.Accept)},
		{method: "POST", pattern: "/v1/food/orders/{id}/reject", feature: "food", auth: true, maxBody: smallBody, handle: withReason(fd.Reject)},
		{method: "POST", pattern: "/v1/food/orders/{id}/preparing", feature: "food", auth: true, handle: step(fd.Preparing)},
		{method: "POST", pattern: "/v1/food/orders/{id}/ready", feature: "food", auth: true, handle: step(fd.Ready)},
		{method: "POST", pattern: "/v1/food/orders/{id}/cancel", feature: "food", auth: true, maxBody: smallBody, handle: withReason(fd.Cancel)},
		{method: "POST", pattern: "/v1/food/orders/{id}/claim", feature: "food", auth: true, handle: step(fd.Claim)},
		{method: "POST", pattern: "/v1/food/orders/{id}/pickup", feature: "food", auth: true, handle: step(fd.Pickup)},
		{method: "POST", pattern: "/v1/food/orders/{id}/deliver", feature: "food", auth: true, handle: step(fd.Deliver)},
		{method: "POST", pattern: "/v1/food/orders/{id}/refund", feature: "food", auth: true, maxBody: smallBody, handle: func(c *call) error {
			var in food.RefundInput
			if err := c.decode(&in); err != nil {
				return err
			}
			ctx, cancel := c.writeCtx()
			defer cancel()
			v, w, err := fd.Refund(ctx, c.user.UserID, c.r.PathValue("id"), in)
			if err != nil {
				return err
			}
			return c.foodWritten(http.StatusOK, w, v)
		}},
		{method: "POST", pattern: "/v1/food/couriers/online", feature: "food", auth: true, handle: courier(true)},
		{method: "POST", pattern: "/v1/food/couriers/offline", feature: "food", auth: true, handle: courier(false)},
		{method: "GET", pattern: "/v1/food/couriers/orders", feature: "food", auth: true, handle: func(c *call) error {
			os, err := fd.Claimable(c.user.UserID)
			if err != nil {
				return err
			}
			return c.json(http.StatusOK, map[string]any{"orders": os})
		}},
	}
}

// foodWritten answers a food write with the positions of every stream it
// wrote (FOOD, and LEDGER for its money).
func (c *call) foodWritten(status int, w food.Written, body any) error {
	if len(w.Positions) > 0 {
		c.w.Header().Set(HeaderPosition, w.Positions.String())
	}
	if w.Replayed {
		c.w.Header().Set(HeaderReplayed, "true")
		if status == http.StatusCreated {
			status = http.StatusOK
		}
	}
	return c.json(status, body)
}

// pushFood sends order frames to this node's devices of their users, the
// way ride frames go: best effort, beside the chat feed, never replayed (a
// device that was away reads its orders).
func (s *Server) pushFood(ps []food.Push) {
	for _, p := range ps {
		s.hub.mu.RLock()
		conns := make([]*eventConn, 0, len(s.hub.conns[p.User]))
		for c := range s.hub.conns[p.User] {
			conns = append(conns, c)
		}
		s.hub.mu.RUnlock()
		if len(conns) == 0 {
			continue
		}
		b, err := json.Marshal(p.Frame)
		if err != nil {
			continue
		}
		for _, c := range conns {
			c.pushRide(b)
		}
	}
}
