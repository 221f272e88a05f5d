package node

import (
	"testing"

	"superapp/internal/engine"
)

// TestOpsLoopback: loopback callers may be operators without a token only
// on a node on its own that listens on loopback alone.
func TestOpsLoopback(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want bool
	}{
		{"alone on 127.0.0.1", Config{HTTPAddr: "127.0.0.1:8080"}, true},
		{"alone on localhost", Config{HTTPAddr: "localhost:8080"}, true},
		{"alone on ::1", Config{HTTPAddr: "[::1]:8080"}, true},
		{"alone on every interface", Config{HTTPAddr: ":8080"}, false},
		{"alone on 0.0.0.0", Config{HTTPAddr: "0.0.0.0:8080"}, false},
		{"alone on a public address", Config{HTTPAddr: "10.0.0.5:8080"}, false},
		{"clustered on loopback", Config{HTTPAddr: "127.0.0.1:8080", Engine: engine.Config{Peers: []string{"127.0.0.1:6222"}}}, false},
		{"external NATS on loopback", Config{HTTPAddr: "127.0.0.1:8080", Engine: engine.Config{NATSURL: "nats://127.0.0.1:4222"}}, false},
		{"with a token", Config{HTTPAddr: "127.0.0.1:8080", OpsToken: "t"}, false},
	} {
		if got := opsLoopback(tc.cfg); got != tc.want {
			t.Errorf("%s: loopback operators %v, want %v", tc.name, got, tc.want)
		}
	}
}
