package engine

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Endpoint is one DC's public HTTP endpoint, as clients should dial it.
type Endpoint struct {
	DC  string `json:"dc"`
	URL string `json:"url"`
}

// endpointsBucket is the replicated key-value bucket where every DC
// announces its endpoint under its own name.
const endpointsBucket = "ENDPOINTS"

func (e *Engine) endpointsKV(ctx context.Context) (jetstream.KeyValue, error) {
	return e.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: endpointsBucket, History: 1, Storage: jetstream.FileStorage, Replicas: e.replicas,
	})
}

// AnnounceEndpoints keeps ep in the endpoints bucket and calls fn with the
// whole list (sorted by DC) whenever it changes, until ctx ends. It retries
// through elections and isolation; fn's last list stays valid meanwhile.
func (e *Engine) AnnounceEndpoints(ctx context.Context, ep Endpoint, fn func([]Endpoint)) {
	val, _ := json.Marshal(ep)
	for ctx.Err() == nil {
		err := func() error {
			actx, cancel := context.WithTimeout(ctx, 5*time.Second)
			kv, err := e.endpointsKV(actx)
			if err == nil {
				_, err = kv.Put(actx, ep.DC, val)
			}
			cancel()
			if err != nil {
				return err
			}
			w, err := kv.WatchAll(ctx)
			if err != nil {
				return err
			}
			defer w.Stop()
			all := map[string]Endpoint{}
			for {
				select {
				case <-ctx.Done():
					return nil
				case u, ok := <-w.Updates():
					if !ok {
						return errors.New("endpoints watch ended")
					}
					if u == nil { // the initial values are all in
						fn(sortedEndpoints(all))
						continue
					}
					var got Endpoint
					if u.Operation() == jetstream.KeyValuePut && json.Unmarshal(u.Value(), &got) == nil && got.DC != "" {
						all[got.DC] = got
					} else {
						delete(all, u.Key())
					}
					fn(sortedEndpoints(all))
				}
			}
		}()
		if err != nil && ctx.Err() == nil {
			e.log.Warn("endpoints: retrying", "err", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

func sortedEndpoints(m map[string]Endpoint) []Endpoint {
	out := make([]Endpoint, 0, len(m))
	for _, ep := range m {
		out = append(out, ep)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].DC < out[j].DC })
	return out
}
