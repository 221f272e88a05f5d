package node

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"time"

	"superapp/internal/engine"
	"superapp/internal/httpapi"
)

// Evacuated reports whether an operator evacuated dc.
func (n *Node) Evacuated(dc string) bool {
	if m := n.evacuated.Load(); m != nil {
		return (*m)[dc]
	}
	return false
}

// keepEvacuated follows the operators' evacuations; while this DC is
// evacuated it hands over the leadership of any stream it comes to lead.
func (n *Node) keepEvacuated(ctx context.Context, known func()) {
	changed := make(chan struct{}, 1)
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		n.eng.WatchEvacuated(ctx, n.evacuationChanged(known, changed))
	}()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-t.C:
		}
		if n.Evacuated(n.cfg.Engine.DC) && !n.eng.Isolated() {
			if moved, err := n.eng.StepDownFrom(ctx, n.cfg.Engine.DC); len(moved) > 0 || err != nil {
				n.log.Info("evacuated: handed over leadership", "moved", moved, "err", err)
			}
		}
	}
}

func (n *Node) evacuationChanged(known func(), changed chan struct{}) func(map[string]bool) {
	return func(set map[string]bool) {
		n.evacuated.Store(&set)
		known()
		select {
		case changed <- struct{}{}:
		default:
		}
	}
}

// Evacuate marks dc evacuated (or no longer) on a quorum and, when on,
// hands over every stream it leads at once.
func (n *Node) Evacuate(ctx context.Context, dc string, on bool) (httpapi.Evacuation, error) {
	// A DC is known by its endpoint or by holding a replica of a stream.
	known := false
	for _, ep := range n.Endpoints() {
		known = known || ep.DC == dc
	}
	for _, d := range n.eng.Details(ctx) {
		for _, r := range d.Replicas {
			known = known || r.DC == dc
		}
	}
	if !known {
		return httpapi.Evacuation{}, fmt.Errorf("%w: no DC %q in this cluster", httpapi.ErrUnknownDC, dc)
	}
	if err := n.eng.SetEvacuated(ctx, dc, on); err != nil {
		return httpapi.Evacuation{}, err
	}
	ev := httpapi.Evacuation{DC: dc, Evacuated: on, Moved: []string{}}
	if on {
		moved, err := n.eng.StepDownFrom(ctx, dc)
		ev.Moved = append(ev.Moved, moved...)
		if err != nil {
			ev.Errors = append(ev.Errors, err.Error())
		}
	}
	return ev, nil
}

// DCStatus is one DC as the status page shows it.
type DCStatus struct {
	DC         string              `json:"dc"`
	URL        string              `json:"url"`
	Reachable  bool                `json:"reachable"`
	Ready      bool                `json:"ready"`
	Evacuated  bool                `json:"evacuated"`
	Reasons    []string            `json:"reasons,omitempty"`
	ReadModels []httpapi.ReadModel `json:"read_models,omitempty"`
	Error      string              `json:"error,omitempty"`
}

// Status is the operator's view of the whole cluster from this node.
type Status struct {
	AskedDC   string                   `json:"asked_dc"`
	Isolated  bool                     `json:"isolated"`
	PeersSeen []string                 `json:"peers_seen"`
	DCs       []DCStatus               `json:"dcs"`
	Streams   []engine.StreamDetail    `json:"streams"`
	Features  map[string]FeatureHealth `json:"features"`
}

// FeatureHealth is one feature's stream and read models across DCs.
type FeatureHealth struct {
	Stream string `json:"stream"`
	Leader string `json:"leader"`
	// Healthy: the stream has a leader, and every reachable DC's read
	// model is within a few entries of the stream.
	Healthy bool `json:"healthy"`
	// Applied is each DC's read model position.
	Applied map[string]uint64 `json:"applied"`
	LastSeq uint64            `json:"last_seq"`
}

var featureStreams = map[string]string{"identity": "IDENTITY", "social": "SOCIAL", "chat": "CHAT", "pay": "LEDGER",
	"oauth": "OAUTH", "rides": "RIDES", "food": "FOOD", "miniapp": "MINIAPP"}

// Status asks every DC for its readiness (forwarding the operator's
// credentials) and the cluster for every stream's replicas.
func (n *Node) Status(ctx context.Context, auth string) any {
	st := Status{AskedDC: n.cfg.Engine.DC, Isolated: n.eng.Isolated(), PeersSeen: n.eng.PeersSeen(), Features: map[string]FeatureHealth{}}
	if st.PeersSeen == nil {
		st.PeersSeen = []string{}
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if !st.Isolated {
			st.Streams = n.eng.Details(ctx)
		}
	}()
	eps := n.Endpoints()
	st.DCs = make([]DCStatus, len(eps))
	for i, ep := range eps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st.DCs[i] = askReady(ctx, ep, auth)
			st.DCs[i].Evacuated = n.Evacuated(ep.DC)
		}()
	}
	wg.Wait()
	for feature, stream := range featureStreams {
		fh := FeatureHealth{Stream: stream, Applied: map[string]uint64{}}
		for _, d := range st.Streams {
			if d.Name == stream {
				fh.Leader, fh.LastSeq = d.Leader, d.LastSeq
			}
		}
		fh.Healthy = fh.Leader != ""
		for _, dc := range st.DCs {
			for _, rm := range dc.ReadModels {
				if rm.Stream == stream {
					fh.Applied[dc.DC] = rm.Applied
					if dc.Reachable && rm.Applied+100 < fh.LastSeq {
						fh.Healthy = false
					}
				}
			}
		}
		st.Features[feature] = fh
	}
	sort.Slice(st.DCs, func(i, j int) bool { return st.DCs[i].DC < st.DCs[j].DC })
	return st
}

func askReady(ctx context.Context, ep httpapi.Endpoint, auth string) DCStatus {
	ds := DCStatus{DC: ep.DC, URL: ep.URL}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", ep.URL+"/readyz", nil)
	if err != nil {
		ds.Error = err.Error()
		return ds
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		ds.Error = err.Error()
		return ds
	}
	defer resp.Body.Close()
	var body struct {
		Status     string              `json:"status"`
		Reasons    []string            `json:"reasons"`
		ReadModels []httpapi.ReadModel `json:"read_models"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		ds.Error = err.Error()
		return ds
	}
	ds.Reachable, ds.Ready, ds.Reasons, ds.ReadModels = true, body.Status == "ready", body.Reasons, body.ReadModels
	return ds
}

// featureStream is the stream behind each gateway feature.
var featureStream = map[string]string{"identity": "IDENTITY", "social": "SOCIAL", "chat": "CHAT", "events": "CHAT", "pay": "LEDGER", "ledger": "LEDGER",
	"oauth": "OAUTH", "rides": "RIDES", "food": "FOOD", "miniapp": "MINIAPP"}

// FeatureFault injects (or, with "", clears) a fault of the feature's
// stream: engine.FaultStall or engine.FaultLag.
func (n *Node) FeatureFault(feature, fault string) error {
	stream, ok := featureStream[feature]
	if !ok {
		return fmt.Errorf("feature %q has no stream", feature)
	}
	return n.eng.SetStreamFault(stream, fault)
}
