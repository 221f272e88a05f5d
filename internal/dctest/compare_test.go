package dctest

import "testing"

func TestCompareViews(t *testing.T) {
	a := []ReadModel{{"IDENTITY", 5, "aa"}, {"SOCIAL", 2, "bb"}}
	if same, div := compareViews(map[string][]ReadModel{"dc1": a, "dc2": a}); !same || div != "" {
		t.Fatalf("equal views: %v %q", same, div)
	}
	behind := []ReadModel{{"IDENTITY", 4, "a0"}, {"SOCIAL", 2, "bb"}}
	if same, div := compareViews(map[string][]ReadModel{"dc1": a, "dc2": behind}); same || div != "" {
		t.Fatalf("one behind: %v %q", same, div)
	}
	forked := []ReadModel{{"IDENTITY", 5, "ff"}, {"SOCIAL", 2, "bb"}}
	if _, div := compareViews(map[string][]ReadModel{"dc1": a, "dc2": forked}); div == "" {
		t.Fatal("divergence at the same position not reported")
	}
}
