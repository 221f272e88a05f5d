package cmdlog

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Position is a point in one stream: after a write, the entry that holds it.
type Position struct {
	Stream string
	Seq    uint64
}

// Positions is a set of stream positions, at most one per stream, as carried
// by the X-Superapp-Position header: "IDENTITY:42,SOCIAL:7".
type Positions map[string]uint64

// Add keeps the later of p and what is already held for its stream.
func (ps Positions) Add(p Position) {
	if p.Stream != "" && p.Seq > ps[p.Stream] {
		ps[p.Stream] = p.Seq
	}
}

// String encodes positions in header form, streams sorted.
func (ps Positions) String() string {
	names := make([]string, 0, len(ps))
	for n := range ps {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for i, n := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s:%d", n, ps[n])
	}
	return b.String()
}

// ParsePositions decodes a header value; it rejects anything malformed.
func ParsePositions(s string) (Positions, error) {
	ps := Positions{}
	if strings.TrimSpace(s) == "" {
		return ps, nil
	}
	parts := strings.Split(s, ",")
	if len(parts) > 32 {
		return nil, fmt.Errorf("too many positions")
	}
	for _, part := range parts {
		name, num, ok := strings.Cut(strings.TrimSpace(part), ":")
		if !ok || name == "" || len(name) > 64 {
			return nil, fmt.Errorf("position %q: want STREAM:SEQ", part)
		}
		seq, err := strconv.ParseUint(num, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("position %q: bad sequence", part)
		}
		ps.Add(Position{Stream: name, Seq: seq})
	}
	return ps, nil
}
