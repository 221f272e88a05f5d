package client

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"superapp/internal/miniapp"
)

// VerifyWebhook accepts what superapp signs and nothing else: not another
// body, not another secret, not an old timestamp.
func TestVerifyWebhook(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`{"id":"dlv_1","type":"pay_request.approved","data":{}}`)
	sign := func(at time.Time, secret string) http.Header {
		ts := strconv.FormatInt(at.Unix(), 10)
		return http.Header{HeaderTimestamp: {ts}, HeaderSignature: {miniapp.Sign(secret, ts, body)}}
	}
	if !VerifyWebhook("s3cret", sign(now, "s3cret"), body, now.Add(time.Second), time.Minute) {
		t.Fatal("a good webhook refused")
	}
	for name, ok := range map[string]bool{
		"other secret": VerifyWebhook("s3cret", sign(now, "other"), body, now, time.Minute),
		"other body":   VerifyWebhook("s3cret", sign(now, "s3cret"), append([]byte(" "), body...), now, time.Minute),
		"too old":      VerifyWebhook("s3cret", sign(now.Add(-time.Hour), "s3cret"), body, now, time.Minute),
		"no headers":   VerifyWebhook("s3cret", http.Header{}, body, now, time.Minute),
	} {
		if ok {
			t.Errorf("%s: accepted", name)
		}
	}
}
