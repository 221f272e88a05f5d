package cmdlog

import (
	"context"
	"time"
)

// UnseenWait bounds how long Soon waits for a record this node has not
// applied yet.
const UnseenWait = 2 * time.Second

// Soon looks a record up in this node's read model and, when it is not
// there, looks again for up to UnseenWait. A record a caller names may
// have been written a moment ago through another DC by someone else (a
// mini-app's pay request, a person's payment code), whose position the
// caller does not have to wait for; right after a DC fails, this node's
// replica can be a few hundred milliseconds behind the new leader. Use it
// where a record is named by a random id: an unknown id costs its caller
// at most UnseenWait before "not found".
func Soon[T any](ctx context.Context, look func() (T, bool)) (T, bool) {
	if v, ok := look(); ok {
		return v, true
	}
	ctx, cancel := context.WithTimeout(ctx, UnseenWait)
	defer cancel()
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			var zero T
			return zero, false
		case <-t.C:
		}
		if v, ok := look(); ok {
			return v, true
		}
	}
}
