// Package webhookhttp posts mini-app webhooks over HTTP: the adapter
// behind miniapp.Sender. It must never follow a redirect, never wait
// without bound, never read more than a small part of an answer, and
// never tell the developer more about a failure than a short category.
package webhookhttp

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"syscall"
	"time"
)

// MaxResponse is how much of an answer is read (and then dropped).
const MaxResponse = 64 << 10

// Sender posts webhooks. It keeps no idle connections, so nothing of it
// outlives an attempt.
type Sender struct {
	client   *http.Client
	loopback bool
}

// New returns a sender whose attempts each take at most timeout. Only with
// loopback (development) may a webhook go to this machine itself.
func New(timeout time.Duration, loopback bool) *Sender {
	control := func(network, address string, c syscall.RawConn) error {
		return refuseInternal(network, address, c, loopback)
	}
	tr := &http.Transport{
		Proxy:                  nil,
		DialContext:            (&net.Dialer{Timeout: min(timeout, 5*time.Second), Control: control}).DialContext,
		TLSHandshakeTimeout:    min(timeout, 5*time.Second),
		ResponseHeaderTimeout:  timeout,
		DisableKeepAlives:      true,
		MaxResponseHeaderBytes: 16 << 10,
	}
	return &Sender{loopback: loopback, client: &http.Client{
		Transport: tr,
		Timeout:   timeout,
		// A redirect is an answer, not an instruction: the URL the
		// developer registered is the only one posted to.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// Allowed reports whether raw is a URL webhooks may go to: https, or (with
// loopback, for development) http on loopback.
func Allowed(raw string, loopback bool) bool {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil {
		return false
	}
	if u.Scheme == "https" {
		return true
	}
	if u.Scheme != "http" || !loopback {
		return false
	}
	h := u.Hostname()
	ip := net.ParseIP(h)
	return h == "localhost" || (ip != nil && ip.IsLoopback())
}

var (
	errURL      = errors.New("webhook URL not allowed")
	errTimeout  = errors.New("timeout")
	errConnect  = errors.New("connection failed")
	errRedirect = errors.New("redirect not followed")
)

// Send posts body with header to rawURL and returns the answer's status.
func (s *Sender) Send(ctx context.Context, rawURL string, header map[string]string, body []byte) (int, error) {
	if !Allowed(rawURL, s.loopback) {
		return 0, errURL
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rawURL, bytes.NewReader(body))
	if err != nil {
		return 0, errURL
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "superapp-webhooks/1")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := s.client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
			return 0, errTimeout
		}
		return 0, errConnect
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, MaxResponse))
	if res.StatusCode >= 300 && res.StatusCode < 400 {
		return res.StatusCode, errRedirect
	}
	return res.StatusCode, nil
}

// refuseInternal refuses connections to private, link-local (cloud
// metadata), multicast and unspecified addresses, whatever name resolved
// to them: a webhook URL must not reach into the data center. Loopback
// stays open for development (Allowed admits it over http only).
func refuseInternal(network, address string, _ syscall.RawConn, loopback bool) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return errURL
	}
	ip := net.ParseIP(host)
	if ip == nil || (ip.IsLoopback() && !loopback) || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() {
		return errURL
	}
	for _, n := range internalNets {
		if n.Contains(ip) {
			return errURL
		}
	}
	return nil
}

// internalNets are ranges net.IP's predicates miss that still lead inside:
// shared address space (some clouds' metadata), benchmarking, "this
// network", and NAT64 (which maps any IPv4 address, private ones too).
var internalNets = func() []*net.IPNet {
	var out []*net.IPNet
	for _, c := range []string{"100.64.0.0/10", "198.18.0.0/15", "0.0.0.0/8", "64:ff9b::/96", "64:ff9b:1::/48"} {
		_, n, _ := net.ParseCIDR(c)
		out = append(out, n)
	}
	return out
}()

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
