package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"superapp/internal/drill"
)

// drillCmd runs a fire drill and writes its report; it fails when anything
// acknowledged was lost or duplicated, an invariant broke or the DCs did
// not converge.
func drillCmd(args []string) error {
	fs := flag.NewFlagSet("drill", flag.ContinueOnError)
	o := drill.Options{Out: os.Stdout}
	fs.StringVar(&o.ReportDir, "report", "./drill-report", "directory for report.json and report.html")
	fs.DurationVar(&o.Duration, "duration", 2*time.Minute, "how long the load runs (at least; the faults finish first)")
	fs.IntVar(&o.Users, "users", 24, "simulated users, each with one failover-capable client")
	faults := fs.String("faults", drill.Fire, "faults to inject in order, comma-separated: fire, crash, partition, rebuild, blackout (\"\" for none)")
	soak := fs.Int("soak", 0, "inject this many faults, cycling through every kind (overrides --faults)")
	fs.DurationVar(&o.Down, "down", 5*time.Second, "how long a burning DC stays down (a partition lasts twice as long)")
	endpoints := fs.String("endpoints", "", "attach to these running DCs (comma-separated base URLs) instead of starting three; no faults")
	seed := fs.Uint64("seed", 1, "seed of the users' choices")
	keep := fs.Bool("keep-data", false, "keep the DCs' data directories after the drill")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o.Seed = *seed
	if *endpoints != "" {
		for _, e := range strings.Split(*endpoints, ",") {
			if e = strings.TrimSpace(e); e != "" {
				o.Endpoints = append(o.Endpoints, strings.TrimRight(e, "/"))
			}
		}
		*faults = ""
	}
	for _, f := range strings.Split(*faults, ",") {
		if f = strings.TrimSpace(f); f != "" {
			if !slices.Contains(drill.Kinds, f) {
				return fmt.Errorf("--faults: unknown fault %q (fire, crash, partition, rebuild, blackout)", f)
			}
			o.Faults = append(o.Faults, f)
		}
	}
	if *soak > 0 {
		o.Faults = nil
		for i := 0; i < *soak; i++ {
			o.Faults = append(o.Faults, drill.Kinds[i%len(drill.Kinds)])
		}
		// Room for each fault and its recovery.
		o.Duration = max(o.Duration, time.Duration(*soak)*(3*o.Down+20*time.Second))
	}
	if len(o.Endpoints) == 0 {
		bin, err := os.Executable()
		if err != nil {
			return err
		}
		dir, err := os.MkdirTemp("", "superapp-drill-")
		if err != nil {
			return err
		}
		if *keep {
			fmt.Println("drill: data in", dir)
		} else {
			defer os.RemoveAll(dir)
		}
		o.Binary, o.Dir = bin, dir
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	_, err := drill.Run(ctx, o)
	return err
}
