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
	WriteOutageP50MS int64 `json:"write_outage_p50_ms"`
	ReadOutageMaxMS  int64 `json:"read_outage_max_ms"`
	ReadOutageP99MS  int64 `json:"read_outage_p99_ms"`
	ReadOutageP50MS  int64 `json:"read_outage_p50_ms"`
	// SlowestWrite is the write that waited longest, to line up with
	// the DCs' logs (nil if none waited long enough to be kept).
	SlowestWrite     *SlowWrite `json:"slowest_write,omitempty"`
	LedgerInvariants bool       `json:"ledger_invariants_ok,omitempty"`
	Converged        bool       `json:"converged"`
	RebuildMS        int64      `json:"rebuild_ms"`
}

// SlowWrite is one write's wait: whose, and when.
type SlowWrite struct {
	User int `json:"user"` // the simulated user's index
	// StartedAt is when the write was first sent (wall clock, RFC 3339),
	// StartedS the same in seconds since the load began.
	StartedAt string  `json:"started_at"`
	StartedS  float64 `json:"started_s"`
	MS        int64   `json:"ms"`
	// Attempts are the HTTP requests the write took, hedges and retries
	// included (the first and the last ones of a long retry).
	Attempts []Attempt `json:"attempts"`
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

var colors = map[string]string{"identity": "#7b4fd6", "chat": "#1f8a4c", "pay": "#d6641f",
	"rides": "#1f5fd6", "food": "#c9a100", "oauth": "#d61f8a", "miniapp": "#1fa3a3"}

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
	type featureRow struct {
		Name, Color string
		*FeatureReport
		Success string
	}
	var features []featureRow
	for _, name := range sortedKeys(r.Features) {
		f := r.Features[name]
		features = append(features, featureRow{Name: name, Color: colors[name], FeatureReport: f, Success: fmt.Sprintf("%.2f%%", 100*f.SuccessRate)})
	}
	// The client-visible outage of each fault: one bar per feature.
	type bar struct {
		Y, W          float64
		Color, Label  string
		LabelX, TextY float64
	}
	type faultRow struct {
		N int
		Fault
		Outages []string
		Y       float64
		Bars    []bar
	}
	const barH, barLeft, barWidth = 10.0, 150.0, 700.0
	var longest int64 = 1000
	rowH := 46.0 // room for a fault's label and one bar per feature
	for _, f := range r.Faults {
		for _, ms := range f.OutageMS {
			longest = max(longest, ms)
		}
		rowH = max(rowH, barH*float64(len(f.OutageMS))+16)
	}
	var faults []faultRow
	for i, f := range r.Faults {
		row := faultRow{N: i + 1, Fault: f, Y: 10 + rowH*float64(i)}
		for j, name := range sortedKeys(f.OutageMS) {
			ms := f.OutageMS[name]
			row.Outages = append(row.Outages, fmt.Sprintf("%s %d ms", name, ms))
			w := barWidth * float64(ms) / float64(longest)
			y := row.Y + barH*float64(j)
			row.Bars = append(row.Bars, bar{Y: y, W: max(w, 1), Color: colors[name], Label: fmt.Sprintf("%s %.2f s", name, float64(ms)/1000),
				LabelX: barLeft + max(w, 1) + 4, TextY: y + barH - 1})
		}
		faults = append(faults, row)
	}
	return reportPage.Execute(w, map[string]any{
		"W": width + left + 20, "H": height + top + 40, "Left": left, "Top": top, "Width": width, "Height": height,
		"Bottom": top + height, "Mid": y(0.5), "Bands": bands, "Lines": lines, "Secs": secs,
		"Verdict": map[bool]string{true: "passed", false: "FAILED"}[r.OK], "R": r, "Features": features, "Faults": faults,
		"BarLeft": barLeft, "OneSecX": barLeft + barWidth*1000/float64(longest), "OutageH": 20 + rowH*float64(len(faults)), "OutageW": barLeft + barWidth + 120, "Longest": float64(longest) / 1000,
	})
}

var reportPage = template.Must(template.New("report").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>superapp drill report</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#222;max-width:1040px}
h1{margin:0 0 4px}h2{margin:28px 0 8px;font-size:17px}
.verdict{font-size:15px;margin:0 0 16px}.ok{color:#1f7a3c}.bad{color:#b3261e}
table{border-collapse:collapse;width:100%;margin:6px 0}th,td{padding:5px 8px;border-bottom:1px solid #e4e4e4;text-align:right;white-space:nowrap}
th{background:#f5f5f7;font-weight:600}th.group{text-align:center;border-bottom:1px solid #d8d8dc}td:first-child,th:first-child{text-align:left}.left{text-align:left}
td.saw{white-space:normal}
.swatch{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:6px}
.wrap{overflow-x:auto}svg{max-width:100%;height:auto}small{color:#666}
</style></head>
<body>
<h1>superapp drill: <span class="{{if .R.OK}}ok{{else}}bad{{end}}">{{.Verdict}}</span></h1>
<p class="verdict">{{.R.Users}} users for {{printf "%.0f" .R.DurationS}} s, {{len .R.Faults}} faults.
Lost <b>{{.R.Lost}}</b>, duplicated <b>{{.R.Duplicated}}</b>; ledger invariants {{if .R.InvariantsOK}}held{{else}}<b class="bad">broken</b>{{end}};
DCs {{if .R.Converged}}converged{{else}}<b class="bad">did not converge</b>{{end}}; longest rebuild from empty {{.R.RebuildMS}} ms.</p>

<h2>Features</h2>
<div class="wrap"><table>
<tr><th rowspan="2">feature</th><th rowspan="2">requests</th><th rowspan="2">success</th><th rowspan="2">acked writes</th><th rowspan="2">lost</th><th rowspan="2">dups</th><th colspan="3" class="group">write outage</th><th colspan="2" class="group">read outage</th></tr>
<tr><th>p50</th><th>p99</th><th>max</th><th>p99</th><th>max</th></tr>
{{range .Features}}<tr><td><span class="swatch" style="background:{{.Color}}"></span>{{.Name}}</td><td>{{.Requests}}</td><td>{{.Success}}</td><td>{{.Acknowledged}}</td><td>{{.Lost}}</td><td>{{.Duplicated}}</td><td>{{.WriteOutageP50MS}} ms</td><td>{{.WriteOutageP99MS}} ms</td><td>{{.WriteOutageMaxMS}} ms</td><td>{{.ReadOutageP99MS}} ms</td><td>{{.ReadOutageMaxMS}} ms</td></tr>
{{end}}</table></div>
<small>An outage is how long a user waited for an operation that then succeeded, from its first attempt; p50 and p99 are over each user's longest.</small>

<h2>Faults</h2>
{{if .Faults}}<div class="wrap"><table>
<tr><th>#</th><th class="left">kind</th><th class="left">DC</th><th>start</th><th>ready again</th><th>recovery</th><th class="left">what users saw (longest write wait)</th></tr>
{{range .Faults}}<tr><td>{{.N}}</td><td class="left">{{.Kind}}</td><td class="left">{{.DC}}</td><td>{{printf "%.1f" .At}} s</td><td>{{printf "%.1f" .End}} s</td><td>{{.RecoveryMS}} ms</td><td class="left saw">{{range $i, $o := .Outages}}{{if $i}}, {{end}}{{$o}}{{end}}{{if .Error}} <b class="bad">{{.Error}}</b>{{end}}</td></tr>
{{end}}</table></div>

<h2>Client-visible outage of each fault</h2>
<div class="wrap"><svg xmlns="http://www.w3.org/2000/svg" width="{{.OutageW}}" height="{{.OutageH}}" viewBox="0 0 {{.OutageW}} {{.OutageH}}" role="img" aria-label="longest write wait per feature for each fault">
<line x1="{{.OneSecX}}" x2="{{.OneSecX}}" y1="4" y2="{{.OutageH}}" stroke="#999" stroke-dasharray="3 3"/><text x="{{.OneSecX}}" y="{{.OutageH}}" dx="3" dy="-2" font-size="10" fill="#666">1 s</text>
{{range $f := .Faults}}<text x="0" y="{{$f.Y}}" dy="12" font-size="12">{{$f.N}}. {{$f.Kind}} {{$f.DC}}</text>
{{range $f.Bars}}<rect x="{{$.BarLeft}}" y="{{.Y}}" width="{{.W}}" height="9" fill="{{.Color}}"/><text x="{{.LabelX}}" y="{{.TextY}}" font-size="10">{{.Label}}</text>
{{end}}{{end}}</svg></div>
{{else}}<p>No faults were injected.</p>{{end}}

<h2>Success rate over time</h2>
<p><small>Each feature's requests per second that got an answer; shaded: faults, from injection until the DC was ready again.</small></p>
<div class="wrap"><svg xmlns="http://www.w3.org/2000/svg" width="{{.W}}" height="{{.H}}" viewBox="0 0 {{.W}} {{.H}}" role="img" aria-label="success rate per feature over time">
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
{{end}}</svg></div>
{{if .R.Problems}}<h2>Problems</h2><ul>{{range .R.Problems}}<li>{{.}}</li>{{end}}</ul>{{end}}
<p><small>Every figure is also in report.json next to this page.</small></p>
</body></html>
`))
