package cluster

import "testing"

func TestCompareViews(t *testing.T) {
	a := []ReadModel{{Stream: "IDENTITY", Applied: 5, Digest: "aa"}, {Stream: "SOCIAL", Applied: 2, Digest: "bb"}}
	if same, div := CompareViews(map[string][]ReadModel{"dc1": a, "dc2": a}); !same || div != "" {
		t.Fatalf("equal views: %v %q", same, div)
	}
	behind := []ReadModel{{Stream: "IDENTITY", Applied: 4, Digest: "a0"}, {Stream: "SOCIAL", Applied: 2, Digest: "bb"}}
	if same, div := CompareViews(map[string][]ReadModel{"dc1": a, "dc2": behind}); same || div != "" {
		t.Fatalf("one behind: %v %q", same, div)
	}
	forked := []ReadModel{{Stream: "IDENTITY", Applied: 5, Digest: "ff"}, {Stream: "SOCIAL", Applied: 2, Digest: "bb"}}
	if _, div := CompareViews(map[string][]ReadModel{"dc1": a, "dc2": forked}); div == "" {
		t.Fatal("divergence at the same position not reported")
	}
}
