package httpapi

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"time"

	"superapp/internal/apperr"
)

// Ops is what the operator endpoints ask of the node.
type Ops interface {
	// Status is the cluster as this node sees it; auth is forwarded to the
	// other DCs.
	Status(ctx context.Context, auth string) any
	Evacuate(ctx context.Context, dc string, on bool) (Evacuation, error)
	// FeatureFault injects into the feature's stream, on this node,
	// FaultStall (it behaves as one without a leader), FaultLag (its read
	// model stops applying) or "" (neither).
	FeatureFault(feature, fault string) error
	// CheckpointNow writes a checkpoint of this node's state store into
	// the replicated object store and describes it.
	CheckpointNow(ctx context.Context) (any, error)
}

// Faults a drill can inject into one feature on one node.
const (
	FaultPanic = "panic" // every handler of the feature panics
	FaultStall = "stall" // the feature's stream does not answer
	FaultLag   = "lag"   // the feature's read model stops applying (a starved machine)
	FaultNone  = "none"
)

// Evacuation is the answer to an evacuation.
type Evacuation struct {
	DC        string   `json:"dc"`
	Evacuated bool     `json:"evacuated"`
	Moved     []string `json:"moved"` // streams handed over, "STREAM→dc"
	Errors    []string `json:"errors,omitempty"`
}

// ErrUnknownDC is returned for an evacuation of a DC the cluster does not have.
var ErrUnknownDC = errors.New("unknown data center")

var dcNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

func (s *Server) clusterOpsRoutes() []route {
	return []route{
		{method: "GET", pattern: "/ops/status", feature: "ops", handle: func(c *call) error {
			if !c.opsAllowed() {
				return apperr.New(apperr.Forbidden, "status is for operators: present the ops token")
			}
			if s.cfg.Ops == nil {
				return apperr.New(apperr.Unavailable, "no cluster status on this node")
			}
			ctx, cancel := context.WithTimeout(c.ctx(), 10*time.Second)
			defer cancel()
			return c.json(http.StatusOK, s.cfg.Ops.Status(ctx, c.r.Header.Get("Authorization")))
		}},
		{method: "POST", pattern: "/ops/faults", feature: "ops", maxBody: 1 << 10, handle: func(c *call) error {
			if !c.opsAllowed() {
				return apperr.New(apperr.Forbidden, "fault injection is for operators: present the ops token")
			}
			var req struct {
				Feature string `json:"feature"`
				Fault   string `json:"fault"`
			}
			if err := c.decode(&req); err != nil {
				return err
			}
			if _, ok := s.gates[req.Feature]; !ok || req.Feature == "ops" {
				return apperr.Field("feature", "feature must be one of identity, social, chat, events, pay, ledger, oauth, rides, food, miniapp")
			}
			switch req.Fault {
			case FaultPanic, FaultStall, FaultLag, FaultNone:
			default:
				return apperr.Field("fault", "fault must be panic, stall, lag or none")
			}
			if s.cfg.Ops == nil {
				return apperr.New(apperr.Unavailable, "fault injection is not available on this node")
			}
			streamFault := ""
			if req.Fault == FaultStall || req.Fault == FaultLag {
				streamFault = req.Fault
			}
			if err := s.cfg.Ops.FeatureFault(req.Feature, streamFault); err != nil {
				return apperr.Field("feature", "%v", err)
			}
			s.faultsMu.Lock()
			if req.Fault == FaultPanic {
				s.faults[req.Feature] = FaultPanic
			} else {
				delete(s.faults, req.Feature)
			}
			s.faultsMu.Unlock()
			s.log.Warn("fault injected", "feature", req.Feature, "fault", req.Fault)
			return c.json(http.StatusOK, map[string]string{"feature": req.Feature, "fault": req.Fault, "dc": s.cfg.DC})
		}},
		{method: "POST", pattern: "/ops/checkpoint", feature: "ops", handle: func(c *call) error {
			if !c.opsAllowed() {
				return apperr.New(apperr.Forbidden, "checkpoints are for operators: present the ops token")
			}
			if s.cfg.Ops == nil {
				return apperr.New(apperr.Unavailable, "checkpoints are not available on this node")
			}
			ctx, cancel := context.WithTimeout(c.ctx(), 10*time.Minute)
			defer cancel()
			info, err := s.cfg.Ops.CheckpointNow(ctx)
			if err != nil {
				return &apperr.Error{Code: apperr.Unavailable, Message: "the checkpoint could not be written: " + err.Error(), RetryAfter: 5}
			}
			return c.json(http.StatusOK, info)
		}},
		{method: "POST", pattern: "/ops/evacuate", feature: "ops", maxBody: 1 << 10, handle: func(c *call) error {
			if !c.opsAllowed() {
				return apperr.New(apperr.Forbidden, "evacuation is for operators: present the ops token")
			}
			var req struct {
				DC   string `json:"dc"`
				Undo bool   `json:"undo"`
			}
			if err := c.decode(&req); err != nil {
				return err
			}
			if !dcNameRE.MatchString(req.DC) {
				return apperr.Field("dc", "dc must name a data center, e.g. dc2")
			}
			if s.cfg.Ops == nil {
				return apperr.New(apperr.Unavailable, "evacuation is not available on this node")
			}
			ctx, cancel := c.writeCtx()
			defer cancel()
			ev, err := s.cfg.Ops.Evacuate(ctx, req.DC, !req.Undo)
			if errors.Is(err, ErrUnknownDC) {
				return apperr.Field("dc", "%v", err)
			}
			if err != nil {
				return &apperr.Error{Code: apperr.Unavailable, Message: "the evacuation could not be recorded: " + err.Error(), RetryAfter: 1}
			}
			return c.json(http.StatusOK, ev)
		}},
	}
}

// injectedPanic panics when a drill injected a panic into the feature.
func (s *Server) injectedPanic(feature string) {
	s.faultsMu.Lock()
	f := s.faults[feature]
	s.faultsMu.Unlock()
	if f == FaultPanic {
		panic("fault injected into " + feature + " by an operator")
	}
}
