package webhookhttp

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestSendNeverFollowsRedirects(t *testing.T) {
	var hit atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hit.Add(1) }))
	defer other.Close()
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/steal", http.StatusTemporaryRedirect)
	}))
	defer redirect.Close()
	s := New(2*time.Second, true)
	status, err := s.Send(context.Background(), redirect.URL, nil, []byte(`{}`))
	if status != http.StatusTemporaryRedirect || err == nil || hit.Load() != 0 {
		t.Fatalf("redirect: %d %v, other host hit %d times", status, err, hit.Load())
	}
}

func TestSendBounds(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	defer slow.Close()
	big := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(strings.Repeat("x", 4<<20)))
	}))
	defer big.Close()
	s := New(100*time.Millisecond, true)
	if _, err := s.Send(context.Background(), slow.URL, nil, nil); err == nil || err.Error() != "timeout" {
		t.Fatalf("slow receiver: %v", err)
	}
	if status, err := New(2*time.Second, true).Send(context.Background(), big.URL, nil, nil); status != 200 || err != nil {
		t.Fatalf("big answer: %d %v", status, err)
	}
	for _, u := range []string{"http://example.com/h", "ftp://127.0.0.1/h", "https://user:pw@example.com/h"} {
		if Allowed(u, true) {
			t.Errorf("%s allowed", u)
		}
	}
	if _, err := s.Send(context.Background(), "https://10.1.2.3/h", nil, nil); err == nil || err.Error() != "connection failed" {
		t.Errorf("private address: %v", err)
	}
	if !Allowed("https://example.com/h", false) || !Allowed("http://127.0.0.1:8080/h", true) {
		t.Error("good URLs refused")
	}
	// In production no webhook reaches this machine: not by http on
	// loopback, not by a name or an https URL that leads there.
	prod := New(2*time.Second, false)
	if Allowed("http://127.0.0.1:8080/h", false) {
		t.Error("loopback allowed in production")
	}
	if _, err := prod.Send(context.Background(), strings.Replace(big.URL, "http://", "https://", 1), nil, nil); err == nil || err.Error() != "connection failed" {
		t.Errorf("https to loopback in production: %v", err)
	}
}
