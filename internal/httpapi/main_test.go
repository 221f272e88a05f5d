package httpapi_test

import (
	"fmt"
	"net/http"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if the tests leave a goroutine behind: every
// node they start must stop all of its goroutines on Close.
func TestMain(m *testing.M) {
	code := m.Run()
	// Idle keep-alive connections of the shared transport are the tests'
	// own, not the node's.
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutine leak:", err)
			code = 1
		}
	}
	os.Exit(code)
}
