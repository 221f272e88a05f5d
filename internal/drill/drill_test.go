package drill_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
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
// lost or duplicated.
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
	if rep.Features["chat"].Acknowledged == 0 || rep.Features["pay"].Acknowledged == 0 {
		t.Fatalf("no writes acknowledged: %+v", rep.Features)
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
	if got["lost"] != 0.0 || got["duplicated"] != 0.0 || got["invariants_ok"] != true || got["converged"] != true {
		t.Fatalf("report.json: %s", raw)
	}
	html, err := os.ReadFile(filepath.Join(dir, "report", "report.html"))
	if err != nil || !strings.Contains(string(html), "<polyline") || !strings.Contains(string(html), "fire ") {
		t.Fatalf("report.html: %v %.300s", err, html)
	}
	t.Logf("MEASURE drill: chat write outage max %dms, pay %dms; rebuild %dms",
		rep.Features["chat"].WriteOutageMaxMS, rep.Features["pay"].WriteOutageMaxMS, rep.RebuildMS)
}
