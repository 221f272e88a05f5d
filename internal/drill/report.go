package drill

import (
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Report is what a drill found. Its JSON form, DIR/report.json, is a
// public contract: "lost", "duplicated", "invariants_ok", "converged" and
// "features" keep their names and meaning.
type Report struct {
	OK           bool                      `json:"ok"`
	Lost         int                       `json:"lost"`
	Duplicated   int                       `json:"duplicated"`
	InvariantsOK bool                      `json:"invariants_ok"`
	Converged    bool                      `json:"converged"`
	Features     map[string]*FeatureReport `json:"features"`
	Faults       []Fault                   `json:"faults"`
	// RebuildMS is the longest time a DC took from starting with an empty
	// disk to ready (caught up on every stream).
	RebuildMS int64    `json:"rebuild_ms"`
	DurationS float64  `json:"duration_s"`
	Users     int      `json:"users"`
	Problems  []string `json:"problems"`
	// Timeline is each feature's attempts per second since the load began.
	Timeline map[string][]Second `json:"timeline"`
}

// FeatureReport is one feature's figures.
type FeatureReport struct {
	Requests         int64   `json:"requests"` // HTTP attempts, failovers included
	FailedRequests   int64   `json:"failed_requests"`
	SuccessRate      float64 `json:"success_rate"`
	Acknowledged     int64   `json:"acknowledged_writes"`
	FailedOperations int64   `json:"failed_operations"` // gave up after the client's own retries
	Lost             int     `json:"lost"`
	Duplicated       int     `json:"duplicated"`
	// Outages: how long a user waited for a write (read) that eventually
	// succeeded, counted from the first attempt; the longest, and the p99
	// of each user's longest.
	WriteOutageMaxMS int64 `json:"write_outage_max_ms"`
	WriteOutageP99MS int64 `json:"write_outage_p99_ms"`
	ReadOutageMaxMS  int64 `json:"read_outage_max_ms"`
	ReadOutageP99MS  int64 `json:"read_outage_p99_ms"`
	LedgerInvariants bool  `json:"ledger_invariants_ok,omitempty"`
	Converged        bool  `json:"converged"`
	RebuildMS        int64 `json:"rebuild_ms"`
}

func (r *Report) write(dir string) error {
	for _, f := range r.Features {
		f.Converged, f.RebuildMS = r.Converged, r.RebuildMS
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "report.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(dir, "report.html"))
	if err != nil {
		return err
	}
	defer f.Close()
	return r.html(f)
}

func (r *Report) print(w io.Writer) {
	verdict := "PASSED"
	if !r.OK {
		verdict = "FAILED"
	}
	fmt.Fprintf(w, "\ndrill %s after %.0fs with %d users: lost %d, duplicated %d, ledger invariants ok: %v, DCs converged: %v, longest rebuild %dms\n",
		verdict, r.DurationS, r.Users, r.Lost, r.Duplicated, r.InvariantsOK, r.Converged, r.RebuildMS)
	for _, f := range r.Faults {
		fmt.Fprintf(w, "  fault %-9s %s at %5.1fs, ready again at %5.1fs (recovery %dms)%s\n", f.Kind, f.DC, f.At, f.End, f.RecoveryMS, map[bool]string{true: " ERROR " + f.Error}[f.Error != ""])
	}
	fmt.Fprintf(w, "  %-9s %9s %8s %9s %6s %5s %11s %11s %11s\n", "feature", "requests", "success", "acked", "lost", "dups", "w-out max", "w-out p99", "r-out max")
	for _, name := range sortedKeys(r.Features) {
		f := r.Features[name]
		fmt.Fprintf(w, "  %-9s %9d %7.2f%% %9d %6d %5d %9dms %9dms %9dms\n", name, f.Requests, 100*f.SuccessRate, f.Acknowledged, f.Lost, f.Duplicated, f.WriteOutageMaxMS, f.WriteOutageP99MS, f.ReadOutageMaxMS)
	}
	for _, p := range r.Problems {
		fmt.Fprintln(w, "  problem:", p)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

var colors = map[string]string{"identity": "#7b4fd6", "chat": "#1f8a4c", "pay": "#d6641f"}

// html draws success rate per feature over time, faults shaded.
func (r *Report) html(w io.Writer) error {
	const width, height, left, top = 960.0, 320.0, 50.0, 20.0
	secs := 1
	for _, s := range r.Timeline {
		secs = max(secs, len(s))
	}
	x := func(t float64) float64 { return left + t/float64(secs)*width }
	y := func(rate float64) float64 { return top + (1-rate)*height }
	type band struct {
		X, W   float64
		Label  string
		LabelX float64
	}
	type line struct {
		Name, Color, Points string
		LegendX             float64
	}
	var bands []band
	for _, f := range r.Faults {
		bands = append(bands, band{X: x(f.At), W: max(2, x(f.End)-x(f.At)), Label: f.Kind + " " + f.DC, LabelX: x(f.At) + 3})
	}
	var lines []line
	for _, name := range sortedKeys(r.Timeline) {
		var pts []string
		for i, s := range r.Timeline[name] {
			if s.OK+s.Failed == 0 {
				continue
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(float64(i)+0.5), y(float64(s.OK)/float64(s.OK+s.Failed))))
		}
		lines = append(lines, line{Name: name, Color: colors[name], Points: strings.Join(pts, " "), LegendX: left + 100*float64(len(lines))})
	}
	summary, _ := json.MarshalIndent(struct {
		OK           bool                      `json:"ok"`
		Lost         int                       `json:"lost"`
		Duplicated   int                       `json:"duplicated"`
		InvariantsOK bool                      `json:"invariants_ok"`
		Converged    bool                      `json:"converged"`
		Features     map[string]*FeatureReport `json:"features"`
		Faults       []Fault                   `json:"faults"`
		Problems     []string                  `json:"problems"`
	}{r.OK, r.Lost, r.Duplicated, r.InvariantsOK, r.Converged, r.Features, r.Faults, r.Problems}, "", "  ")
	return reportPage.Execute(w, map[string]any{
		"W": width + left + 20, "H": height + top + 40, "Left": left, "Top": top, "Width": width, "Height": height,
		"Bottom": top + height, "Mid": y(0.5), "Bands": bands, "Lines": lines, "Secs": secs, "Summary": string(summary),
		"Verdict": map[bool]string{true: "passed", false: "FAILED"}[r.OK],
	})
}

var reportPage = template.Must(template.New("report").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>superapp drill report</title>
<style>body{font:14px system-ui,sans-serif;margin:24px;color:#222}pre{background:#f6f6f6;padding:12px;overflow:auto}</style></head>
<body>
<h1>superapp drill: {{.Verdict}}</h1>
<p>Success rate of each feature's requests per second; shaded: faults, from injection until the DC was ready again.</p>
<svg xmlns="http://www.w3.org/2000/svg" width="{{.W}}" height="{{.H}}" role="img" aria-label="success rate per feature over time">
<rect x="{{.Left}}" y="{{.Top}}" width="{{.Width}}" height="{{.Height}}" fill="#fff" stroke="#ccc"/>
{{range .Bands}}<rect x="{{.X}}" y="{{$.Top}}" width="{{.W}}" height="{{$.Height}}" fill="#e33" fill-opacity="0.15"/><text x="{{.LabelX}}" y="{{$.Top}}" dy="12" font-size="11" fill="#a11">{{.Label}}</text>
{{end}}<line x1="{{.Left}}" x2="{{.Left}}" y1="{{.Mid}}" y2="{{.Mid}}" stroke="#eee"/>
<text x="{{.Left}}" dx="-6" y="{{.Top}}" dy="4" text-anchor="end" font-size="11">100%</text>
<text x="{{.Left}}" dx="-6" y="{{.Mid}}" dy="4" text-anchor="end" font-size="11">50%</text>
<text x="{{.Left}}" dx="-6" y="{{.Bottom}}" dy="4" text-anchor="end" font-size="11">0%</text>
<text x="{{.Left}}" y="{{.Bottom}}" dy="16" font-size="11">0 s</text>
<text x="{{.Left}}" dx="{{.Width}}" y="{{.Bottom}}" dy="16" text-anchor="end" font-size="11">{{.Secs}} s</text>
{{range $l := .Lines}}<polyline fill="none" stroke="{{$l.Color}}" stroke-width="1.5" points="{{$l.Points}}"/>
<text x="{{$l.LegendX}}" y="{{$.Bottom}}" dy="32" font-size="12" fill="{{$l.Color}}">■ {{$l.Name}}</text>
{{end}}</svg>
<h2>Figures</h2>
<pre>{{.Summary}}</pre>
</body></html>
`))
