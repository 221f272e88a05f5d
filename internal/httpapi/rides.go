package httpapi

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"sync"

	"github.com/coder/websocket"

	"superapp/internal/apperr"
	"superapp/internal/rides"
)

// The taxi API: drivers go online and report where they are, riders price
// and request rides, drivers take the offers made to them and drive the
// trip. Every ride call checks who calls: a ride exists only for its rider
// and its driver, an offer only for the driver it was made to.

func (s *Server) rideRoutes() []route {
	rd := s.cfg.Rides
	if rd != nil {
		rd.Notify(s.pushRides)
	}
	// step runs a participant's step on the ride in the path.
	step := func(fn func(ctx context.Context, user, rideID string) (rides.View, rides.Written, error)) func(c *call) error {
		return func(c *call) error {
			if _, err := c.write(); err != nil {
				return err
			}
			ctx, cancel := c.writeCtx()
			defer cancel()
			v, w, err := fn(ctx, c.user.UserID, c.r.PathValue("id"))
			if err != nil {
				return err
			}
			return c.rideWritten(http.StatusOK, w, v)
		}
	}
	return []route{
		{method: "POST", pattern: "/v1/rides/drivers/online", feature: "rides", auth: true, maxBody: smallBody, handle: func(c *call) error {
			var at *rides.Point
			if len(c.body) > 0 {
				var in position
				if err := c.decode(&in); err != nil {
					return err
				}
				p, err := in.point(false)
				if err != nil {
					return err
				}
				at = p
			}
			w, err := c.write()
			if err != nil {
				return err
			}
			ctx, cancel := c.writeCtx()
			defer cancel()
			st, wr, err := rd.GoOnline(ctx, w, c.user.UserID, at)
			if err != nil {
				return err
			}
			return c.rideWritten(http.StatusOK, wr, st)
		}},
		{method: "POST", pattern: "/v1/rides/drivers/offline", feature: "rides", auth: true, handle: func(c *call) error {
			w, err := c.write()
			if err != nil {
				return err
			}
			ctx, cancel := c.writeCtx()
			defer cancel()
			st, wr, err := rd.GoOffline(ctx, w, c.user.UserID)
			if err != nil {
				return err
			}
			return c.rideWritten(http.StatusOK, wr, st)
		}},
		{method: "POST", pattern: "/v1/rides/drivers/location", feature: "rides", auth: true, maxBody: smallBody, handle: func(c *call) error {
			var in position
			if err := c.decode(&in); err != nil {
				return err
			}
			p, err := in.point(true)
			if err != nil {
				return err
			}
			if err := rd.UpdateLocation(c.user.UserID, *p); err != nil {
				return err
			}
			return c.json(http.StatusOK, map[string]any{"driver_id": c.user.UserID, "location": p})
		}},
		{method: "GET", pattern: "/v1/rides/estimate", feature: "rides", auth: true, handle: func(c *call) error {
			var v [4]float64
			for i, name := range []string{"from_lat", "from_lng", "to_lat", "to_lng"} {
				f, err := floatParam(c, name)
				if err != nil {
					return err
				}
				v[i] = f
			}
			e, err := rd.Estimate(rides.Point{Lat: v[0], Lng: v[1]}, rides.Point{Lat: v[2], Lng: v[3]})
			if err != nil {
				if ae := apperr.From(err); ae.Field == "pickup" {
					ae.Field = "from_lat"
				} else if ae.Field == "dropoff" {
					ae.Field = "to_lat"
				}
				return err
			}
			return c.json(http.StatusOK, e)
		}},
		{method: "POST", pattern: "/v1/rides", feature: "rides", auth: true, maxBody: smallBody, handle: func(c *call) error {
			var in rides.RequestInput
			if err := c.decode(&in); err != nil {
				return err
			}
			if _, err := c.write(); err != nil {
				return err
			}
			ctx, cancel := c.writeCtx()
			defer cancel()
			v, w, err := rd.Request(ctx, c.user.UserID, in)
			if err != nil {
				return err
			}
			return c.rideWritten(http.StatusCreated, w, v)
		}},
		{method: "GET", pattern: "/v1/rides/offers", feature: "rides", auth: true, handle: func(c *call) error {
			return c.json(http.StatusOK, map[string]any{"offers": rd.Offers(c.user.UserID)})
		}},
		{method: "GET", pattern: "/v1/rides/{id}", feature: "rides", auth: true, handle: func(c *call) error {
			v, err := rd.Ride(c.r.PathValue("id"), c.user.UserID)
			if err != nil {
				return err
			}
			return c.json(http.StatusOK, v)
		}},
		{method: "POST", pattern: "/v1/rides/{id}/cancel", feature: "rides", auth: true, maxBody: smallBody, handle: func(c *call) error {
			var in struct {
				Reason string `json:"reason"`
			}
			if len(c.body) > 0 {
				if err := c.decode(&in); err != nil {
					return err
				}
			}
			return step(func(ctx context.Context, user, rideID string) (rides.View, rides.Written, error) {
				return rd.Cancel(ctx, user, rideID, in.Reason)
			})(c)
		}},
		{method: "POST", pattern: "/v1/rides/{id}/accept", feature: "rides", auth: true, handle: step(rd.Accept)},
		{method: "POST", pattern: "/v1/rides/{id}/decline", feature: "rides", auth: true, handle: step(rd.Decline)},
		{method: "POST", pattern: "/v1/rides/{id}/arrive", feature: "rides", auth: true, handle: step(rd.Arrive)},
		{method: "POST", pattern: "/v1/rides/{id}/start", feature: "rides", auth: true, handle: step(rd.StartTrip)},
		{method: "POST", pattern: "/v1/rides/{id}/complete", feature: "rides", auth: true, handle: step(rd.Complete)},
	}
}

// position is a location as clients send it; both fields are required
// when one is given.
type position struct {
	Lat *float64 `json:"lat"`
	Lng *float64 `json:"lng"`
}

func (in position) point(required bool) (*rides.Point, error) {
	switch {
	case in.Lat == nil && in.Lng == nil && !required:
		return nil, nil
	case in.Lat == nil:
		return nil, apperr.Field("lat", "lat is required")
	case in.Lng == nil:
		return nil, apperr.Field("lng", "lng is required")
	case *in.Lat < -90 || *in.Lat > 90:
		return nil, apperr.Field("lat", "lat must be between -90 and 90")
	case *in.Lng < -180 || *in.Lng > 180:
		return nil, apperr.Field("lng", "lng must be between -180 and 180")
	}
	return &rides.Point{Lat: *in.Lat, Lng: *in.Lng}, nil
}

func floatParam(c *call, name string) (float64, error) {
	v := c.r.URL.Query().Get(name)
	if v == "" {
		return 0, apperr.Field(name, "%s is required", name)
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, apperr.Field(name, "%s must be a number of degrees", name)
	}
	return f, nil
}

// rideWritten answers a rides write with the positions of every stream it
// wrote (RIDES, and LEDGER for its money).
func (c *call) rideWritten(status int, w rides.Written, body any) error {
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

// Ride frames reach the user's live devices through the event hub, beside
// the chat feed, and are best effort: they carry no cursor and are not
// replayed (a device that was away reads its ride). Each device gets its
// own small queue and a writer goroutine only while frames wait, so ride
// frames never hold up chat events and chat's cursor logic stays as is.

const rideQueueLen = 64

type rideQueue struct {
	mu      sync.Mutex
	frames  [][]byte
	writing bool
}

// rideQueues holds the queue of each connected device that got a ride
// frame; a queue goes when its connection does.
var rideQueues sync.Map // *eventConn -> *rideQueue

// pushRides sends ride frames to this node's devices of their users.
func (s *Server) pushRides(ps []rides.Push) {
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

func (c *eventConn) pushRide(b []byte) {
	c.mu.Lock()
	live := c.live
	c.mu.Unlock()
	if !live || c.ctx.Err() != nil {
		return // replaying the chat feed: the device reads its ride after
	}
	v, loaded := rideQueues.LoadOrStore(c, &rideQueue{})
	q := v.(*rideQueue)
	if !loaded {
		context.AfterFunc(c.ctx, func() { rideQueues.Delete(c) })
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.frames) >= rideQueueLen {
		return // a slow device misses frames, never chat events
	}
	q.frames = append(q.frames, b)
	if !q.writing {
		q.writing = true
		go c.writeRides(q)
	}
}

func (c *eventConn) writeRides(q *rideQueue) {
	for {
		q.mu.Lock()
		if len(q.frames) == 0 || c.ctx.Err() != nil {
			q.frames, q.writing = nil, false
			q.mu.Unlock()
			return
		}
		b := q.frames[0]
		q.frames = q.frames[1:]
		q.mu.Unlock()
		wctx, cancel := context.WithTimeout(c.ctx, writeTimeout)
		err := c.ws.Write(wctx, websocket.MessageText, b)
		cancel()
		if err != nil {
			c.drop()
		}
	}
}
