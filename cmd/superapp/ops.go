package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"superapp/internal/node"
)

// opsRequest calls an operator endpoint of a node.
func opsRequest(ctx context.Context, method, url, token string, body any, out any) error {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %d %s", method, url, resp.StatusCode, strings.TrimSpace(string(raw)))
	}
	return json.Unmarshal(raw, out)
}

func opsFlags(name string) (*flag.FlagSet, *string, *string) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	url := fs.String("url", "http://127.0.0.1:8081", "any DC's HTTP endpoint")
	token := fs.String("ops-token", "", "the ops token (needed unless the node is on its own and listens on loopback only)")
	return fs, url, token
}

// statusCmd prints each DC, every stream's leader and replica lag, and
// each feature's health.
func statusCmd(args []string) error {
	fs, url, token := opsFlags("status")
	asJSON := fs.Bool("json", false, "print the raw JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := fromEnv(fs); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var st node.Status
	var raw json.RawMessage
	if err := opsRequest(ctx, "GET", strings.TrimRight(*url, "/")+"/ops/status", *token, nil, &raw); err != nil {
		return err
	}
	if *asJSON {
		_, err := os.Stdout.Write(append(raw, '\n'))
		return err
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return err
	}
	printStatus(os.Stdout, st)
	return nil
}

func printStatus(w io.Writer, st node.Status) {
	fmt.Fprintf(w, "asked %s (sees %s)", st.AskedDC, strings.Join(st.PeersSeen, ", "))
	if st.Isolated {
		fmt.Fprint(w, " — ISOLATED: cut off from the majority")
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nDC\tURL\tSTATE\tDETAIL")
	for _, d := range st.DCs {
		state := "ready"
		switch {
		case !d.Reachable:
			state = "unreachable"
		case !d.Ready:
			state = "not ready"
		}
		if d.Evacuated {
			state += " (evacuated)"
		}
		detail := d.Error
		if len(d.Reasons) > 0 {
			detail = strings.Join(d.Reasons, "; ")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", d.DC, d.URL, state, detail)
	}
	fmt.Fprintln(tw, "\nSTREAM\tLEADER\tLEADER CHANGES\tLAST SEQ\tREPLICAS (lag, last heard)")
	for _, s := range st.Streams {
		var reps []string
		for _, r := range s.Replicas {
			switch {
			case r.Leader:
				reps = append(reps, r.DC+"*")
			case r.Offline:
				reps = append(reps, r.DC+" offline")
			default:
				cur := ""
				if !r.Current {
					cur = " behind"
				}
				reps = append(reps, fmt.Sprintf("%s lag %d%s, %dms", r.DC, r.Lag, cur, r.ActiveMS))
			}
		}
		if s.Error != "" {
			reps = append(reps, "error: "+s.Error)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\n", s.Name, s.Leader, s.LeaderChanges, s.LastSeq, strings.Join(reps, "; "))
	}
	fmt.Fprintln(tw, "\nFEATURE\tSTREAM\tHEALTH\tAPPLIED PER DC")
	for _, f := range []string{"identity", "social", "chat", "pay", "oauth", "rides", "food", "miniapp"} {
		fh := st.Features[f]
		health := "healthy"
		if !fh.Healthy {
			health = "DEGRADED"
		}
		var ap []string
		for _, d := range st.DCs {
			if a, ok := fh.Applied[d.DC]; ok {
				ap = append(ap, fmt.Sprintf("%s %d", d.DC, a))
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s (stream %d)\n", f, fh.Stream, health, strings.Join(ap, ", "), fh.LastSeq)
	}
	tw.Flush()
}

// evacuateCmd moves every stream leader out of a DC before maintenance.
func evacuateCmd(args []string) error {
	fs, url, token := opsFlags("evacuate")
	dc := fs.String("dc", "", "the DC to evacuate (required)")
	undo := fs.Bool("undo", false, "end the evacuation: the DC may lead streams again")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := fromEnv(fs); err != nil {
		return err
	}
	if *dc == "" {
		return fmt.Errorf("--dc is required")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	base := strings.TrimRight(*url, "/")
	var ev struct {
		Moved  []string `json:"moved"`
		Errors []string `json:"errors"`
	}
	if err := opsRequest(ctx, "POST", base+"/ops/evacuate", *token, map[string]any{"dc": *dc, "undo": *undo}, &ev); err != nil {
		return err
	}
	if *undo {
		fmt.Printf("%s is no longer evacuated\n", *dc)
		return nil
	}
	fmt.Printf("%s evacuated; handed over: %s\n", *dc, strings.Join(ev.Moved, ", "))
	// Wait until the DC leads nothing.
	for {
		var st node.Status
		if err := opsRequest(ctx, "GET", base+"/ops/status", *token, nil, &st); err != nil {
			return err
		}
		var led []string
		for _, s := range st.Streams {
			if s.Leader == *dc {
				led = append(led, s.Name)
			}
		}
		if len(led) == 0 {
			fmt.Printf("%s leads no stream: safe to stop for maintenance\n", *dc)
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s still leads %s", *dc, strings.Join(led, ", "))
		case <-time.After(500 * time.Millisecond):
		}
	}
}
