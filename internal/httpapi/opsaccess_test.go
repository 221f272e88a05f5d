package httpapi

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestOpsLoopbackOnlyWhenAlone: without an ops token, a loopback caller
// is an operator only on a node allowed to trust loopback (on its own,
// listening on loopback alone). Elsewhere a reverse proxy on the host
// makes every request loopback: the operators' endpoints answer nobody,
// and forwarding headers change nothing either way.
func TestOpsLoopbackOnlyWhenAlone(t *testing.T) {
	ask := func(srv *Server, path string, hdr map[string]string) int {
		r := httptest.NewRequest("GET", path, nil)
		r.RemoteAddr = "127.0.0.1:40000"
		for k, v := range hdr {
			r.Header.Set(k, v)
		}
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, r)
		if w.Code == http.StatusForbidden && !strings.Contains(w.Body.String(), "forbidden") {
			t.Fatalf("%s: 403 without the forbidden code: %s", path, w.Body)
		}
		return w.Code
	}
	headers := []map[string]string{nil, {"X-Forwarded-For": "8.8.8.8"}, {"X-Forwarded-For": "127.0.0.1", "X-Real-Ip": "127.0.0.1", "Forwarded": "for=127.0.0.1"}}

	clustered := New(Config{})
	defer clustered.Close()
	for _, h := range headers {
		for _, path := range []string{"/ops/status", "/metrics"} {
			if code := ask(clustered, path, h); code != http.StatusForbidden {
				t.Errorf("clustered node, no token, loopback caller %v: %s answered %d", h, path, code)
			}
		}
	}

	alone := New(Config{OpsLoopback: true})
	defer alone.Close()
	if code := ask(alone, "/ops/status", nil); code == http.StatusForbidden {
		t.Errorf("node on its own on loopback refused its loopback operator")
	}
	r := httptest.NewRequest("GET", "/ops/status", nil)
	r.RemoteAddr = "10.1.2.3:40000"
	r.Header.Set("X-Forwarded-For", "127.0.0.1")
	w := httptest.NewRecorder()
	alone.ServeHTTP(w, r)
	if w.Code != http.StatusForbidden {
		t.Errorf("a remote caller claiming loopback in X-Forwarded-For got %d", w.Code)
	}
}
