package drill

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReportPage: report.html is a page people read: a table per feature,
// a table per fault with what users saw, and the outage chart; not the
// JSON.
func TestReportPage(t *testing.T) {
	r := &Report{OK: true, InvariantsOK: true, Converged: true, Users: 24, DurationS: 300, RebuildMS: 3400,
		Features: map[string]*FeatureReport{
			"chat": {Requests: 5000, SuccessRate: 0.9967, Acknowledged: 3000, WriteOutageP50MS: 40, WriteOutageP99MS: 1100, WriteOutageMaxMS: 1262, ReadOutageMaxMS: 310},
			"pay":  {Requests: 4000, SuccessRate: 0.9973, Acknowledged: 2000, WriteOutageMaxMS: 923},
		},
		Faults: []Fault{
			{Kind: Fire, DC: "dc2", At: 60, End: 64.5, RecoveryMS: 3400, OutageMS: map[string]int64{"chat": 1262, "pay": 923}},
			{Kind: Blackout, DC: "dc3", At: 150, End: 156, RecoveryMS: 1100, OutageMS: map[string]int64{"chat": 1018, "pay": 1582}},
		},
		Timeline: map[string][]Second{"chat": {{OK: 10}, {OK: 8, Failed: 2}}},
	}
	dir := t.TempDir()
	if err := r.write(dir); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "report.html"))
	if err != nil {
		t.Fatal(err)
	}
	page := string(raw)
	for _, want := range []string{
		"superapp drill: <span class=\"ok\">passed</span>",
		"<th colspan=\"3\" class=\"group\">write outage</th>", "99.67%", "1262 ms",
		"<td class=\"left\">blackout</td>", "chat 1018 ms, pay 1582 ms",
		`aria-label="longest write wait per feature for each fault"`, "pay 1.58 s",
		`aria-label="success rate per feature over time"`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	if strings.Contains(page, `"features":`) {
		t.Error("report.html dumps the JSON")
	}
}
