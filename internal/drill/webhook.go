package drill

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"superapp/client"
)

// hooks is the backend of the drill's mini-apps: an HTTP server on
// loopback receiving their webhooks. It checks every signature and
// records each delivery once by its delivery id, as a mini-app's backend
// must (a delivery may come again: after a lost answer, or from another
// DC after the one attempting it burnt).
type hooks struct {
	srv  *http.Server
	base string

	mu      sync.Mutex
	apps    map[string]hookApp         // path name → the mini-app
	got     map[string]hookDelivery    // delivery id → what it said
	byEvent map[string]map[string]bool // "<pay request id>/<event>" → delivery ids
	badSig  int                        // deliveries refused for a bad signature
	failed  error                      // the server stopped
}

type hookApp struct{ clientID, secret string }

// hookDelivery is one delivery as received.
type hookDelivery struct {
	clientID, event, payRequest string
	times                       int
}

func newHooks() (*hooks, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	h := &hooks{base: "http://" + l.Addr().String(), apps: map[string]hookApp{}, got: map[string]hookDelivery{}, byEvent: map[string]map[string]bool{}}
	h.srv = &http.Server{Handler: http.HandlerFunc(h.serve), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := h.srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			h.mu.Lock()
			h.failed = err
			h.mu.Unlock()
		}
	}()
	return h, nil
}

func (h *hooks) close() { _ = h.srv.Close() }

// url is where a mini-app's webhooks go.
func (h *hooks) url(name string) string { return h.base + "/hooks/" + name }

// expect registers a mini-app's webhook secret under its path name.
func (h *hooks) expect(name, clientID, secret string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.apps[name] = hookApp{clientID: clientID, secret: secret}
}

func (h *hooks) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	name, ok := strings.CutPrefix(r.URL.Path, "/hooks/")
	if err != nil || !ok || r.Method != http.MethodPost {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	a, known := h.apps[name]
	if !known || !client.VerifyWebhook(a.secret, r.Header, body, time.Now(), 5*time.Minute) {
		h.badSig++
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var ev struct {
		ID   string `json:"id"`
		Type string `json:"type"`
		Data struct {
			PayRequest struct {
				ID string `json:"pay_request_id"`
			} `json:"pay_request"`
		} `json:"data"`
	}
	id := r.Header.Get(client.HeaderDeliveryID)
	if json.Unmarshal(body, &ev) != nil || ev.ID != id || ev.Type != r.Header.Get(client.HeaderEvent) {
		http.Error(w, "malformed", http.StatusBadRequest)
		return
	}
	d := h.got[id]
	d.clientID, d.event, d.payRequest = a.clientID, ev.Type, ev.Data.PayRequest.ID
	d.times++
	h.got[id] = d
	k := ev.Data.PayRequest.ID + "/" + ev.Type
	if h.byEvent[k] == nil {
		h.byEvent[k] = map[string]bool{}
	}
	h.byEvent[k][id] = true
	w.WriteHeader(http.StatusNoContent)
}

// received is the ids of the deliveries of a pay request's event.
func (h *hooks) received(payRequest, event string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var ids []string
	for id := range h.byEvent[payRequest+"/"+event] {
		ids = append(ids, id)
	}
	return ids
}
