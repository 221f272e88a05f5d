package drill_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"superapp/internal/dctest"
	"superapp/internal/drill"
)

// TestDrillFire is the short drill CI runs on every change: three DC
// processes, mixed load, one fire (SIGKILL of a stream leader, disk wiped,
// rebuilt from empty) and one blackout (a stream leader frozen and its
// links silent, then killed and restarted). Nothing acknowledged may be
// lost or duplicated, in any feature.
func TestDrillFire(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three processes")
	}
	dir := t.TempDir()
	var out strings.Builder
	rep, err := drill.Run(context.Background(), drill.Options{
		Binary: dctest.Binary(t), Dir: filepath.Join(dir, "dcs"), ReportDir: filepath.Join(dir, "report"),
		Duration: 45 * time.Second, Users: 9, Faults: []string{drill.Fire, drill.Blackout}, Down: 3 * time.Second, Out: &out,
	})
	t.Log(out.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Faults) != 2 || rep.Faults[0].Error != "" || rep.Faults[1].Error != "" || rep.Faults[1].Kind != drill.Blackout || rep.RebuildMS <= 0 {
		t.Fatalf("fault not injected as planned: %+v", rep.Faults)
	}
	for _, f := range drill.Features {
		if rep.Features[f] == nil || rep.Features[f].Requests == 0 {
			t.Fatalf("no load on %s", f)
		}
	}
	// Every feature, the ones people use through mini-apps too, wrote
	// and lost nothing.
	for _, f := range []string{"chat", "pay", "rides", "food", "oauth", "miniapp"} {
		if fr := rep.Features[f]; fr.Acknowledged == 0 || fr.Lost != 0 || fr.Duplicated != 0 {
			t.Fatalf("%s: acknowledged %d, lost %d, duplicated %d", f, fr.Acknowledged, fr.Lost, fr.Duplicated)
		}
	}
	// The public contract of report.json.
	raw, err := os.ReadFile(filepath.Join(dir, "report", "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"lost", "duplicated", "invariants_ok", "converged", "features"} {
		if _, ok := got[k]; !ok {
			t.Fatalf("report.json has no %q", k)
		}
	}
	features, _ := got["features"].(map[string]any)
	for _, f := range []string{"rides", "food", "miniapp"} {
		fr, _ := features[f].(map[string]any)
		for _, k := range []string{"requests", "acknowledged_writes", "lost", "duplicated", "write_outage_p99_ms", "read_outage_max_ms"} {
			if _, ok := fr[k]; !ok {
				t.Fatalf("report.json: features.%s has no %q", f, k)
			}
		}
	}
	if got["lost"] != 0.0 || got["duplicated"] != 0.0 || got["invariants_ok"] != true || got["converged"] != true {
		t.Fatalf("report.json: %s", raw)
	}
	html, err := os.ReadFile(filepath.Join(dir, "report", "report.html"))
	if err != nil || !strings.Contains(string(html), "<polyline") || !strings.Contains(string(html), "fire ") || !strings.Contains(string(html), "miniapp</td>") {
		t.Fatalf("report.html: %v %.300s", err, html)
	}
	for _, f := range drill.Features {
		fr := rep.Features[f]
		t.Logf("MEASURE drill %s: %d acknowledged, write outage p99 %dms, max %dms", f, fr.Acknowledged, fr.WriteOutageP99MS, fr.WriteOutageMaxMS)
		// The slowest write is named, to be found in the DCs' logs.
		if sw := fr.SlowestWrite; fr.WriteOutageMaxMS >= 100 {
			if sw == nil || sw.MS != fr.WriteOutageMaxMS || sw.StartedS < 0 || sw.StartedAt == "" {
				t.Errorf("%s: longest write wait %dms, slowest write %+v", f, fr.WriteOutageMaxMS, sw)
			} else if answered := slices.IndexFunc(sw.Attempts, func(a drill.Attempt) bool { return a.Status > 0 && a.Status < 500 }); answered < 0 ||
				!strings.HasPrefix(sw.Attempts[0].DC, "dc") || sw.Attempts[answered].AtMS+sw.Attempts[answered].MS > sw.MS {
				// Its requests are named, one of them answered in time.
				t.Errorf("%s: slowest write's attempts %+v", f, sw.Attempts)
			} else {
				t.Logf("%s: slowest write %dms: %+v", f, sw.MS, sw.Attempts)
			}
		}
	}
	t.Logf("MEASURE drill: rebuild %dms", rep.RebuildMS)
}
