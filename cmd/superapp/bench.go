package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"superapp/internal/bench"
)

// benchCmd measures a feature on three local DCs.
func benchCmd(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: superapp bench chat|pay|rebuild|rides|state [flags]")
	}
	switch args[0] {
	case "chat":
		return benchChat(args[1:])
	case "pay":
		return benchPay(args[1:])
	case "rebuild":
		return benchRebuild(args[1:])
	case "rides":
		return benchRides(args[1:])
	case "state":
		return benchState(args[1:])
	}
	return fmt.Errorf("usage: superapp bench chat|pay|rebuild|rides|state [flags]")
}

func benchChat(args []string) error {
	fs := flag.NewFlagSet("bench chat", flag.ContinueOnError)
	o := bench.ChatOptions{Out: os.Stdout}
	fs.IntVar(&o.Users, "users", 40, "users, in one-to-one pairs (sign-ups are rate limited per address: at most 20 per DC at once)")
	fs.IntVar(&o.Senders, "senders", 128, "concurrent senders in the throughput run")
	fs.DurationVar(&o.Duration, "duration", 10*time.Second, "length of each run")
	fs.IntVar(&o.Rate, "rate", 1000, "offered messages/s in the latency run")
	fs.IntVar(&o.Conns, "conns", 5000, "idle WebSocket connections to open to one node")
	keep := fs.Bool("keep", false, "keep the DCs' data directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return runBench(*keep, func(ctx context.Context, bin, dir string) error {
		o.Binary, o.Dir = bin, dir
		return bench.Chat(ctx, o)
	})
}

func benchPay(args []string) error {
	fs := flag.NewFlagSet("bench pay", flag.ContinueOnError)
	o := bench.PayOptions{Out: os.Stdout}
	fs.IntVar(&o.Accounts, "accounts", 10_000, "ledger accounts in the batch run")
	fs.IntVar(&o.Batches, "batch-senders", 4, "concurrent senders of full batches")
	fs.IntVar(&o.Senders, "senders", 128, "concurrent HTTP payers")
	fs.DurationVar(&o.Duration, "duration", 10*time.Second, "length of each run")
	fs.IntVar(&o.Rate, "rate", 1000, "offered payments/s in the latency run")
	fs.StringVar(&o.Postgres, "postgres", "", "PostgreSQL address for the baseline run (scripts/bench-pay starts one)")
	fs.IntVar(&o.PGConns, "pg-conns", 64, "connections of the PostgreSQL baseline run")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return runBench(false, func(ctx context.Context, bin, dir string) error {
		o.Binary, o.Dir = bin, dir
		return bench.Pay(ctx, o)
	})
}

func benchRebuild(args []string) error {
	fs := flag.NewFlagSet("bench rebuild", flag.ContinueOnError)
	o := bench.RebuildOptions{Out: os.Stdout}
	fs.IntVar(&o.Messages, "messages", 1_000_000, "chat messages the wiped DC must catch up on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return runBench(false, func(ctx context.Context, bin, dir string) error {
		o.Binary, o.Dir = bin, dir
		return bench.Rebuild(ctx, o)
	})
}

func benchState(args []string) error {
	fs := flag.NewFlagSet("bench state", flag.ContinueOnError)
	o := bench.StateOptions{Out: os.Stdout}
	fs.IntVar(&o.Messages, "messages", 1_000_000, "chat messages written (N); memory is measured after N/4 and N")
	fs.IntVar(&o.Transfers, "transfers", 0, "ledger transfers written along with them (default: N/10)")
	fs.DurationVar(&o.Retention, "log-retention", 5*time.Minute, "every DC's --log-retention; the run waits for the streams to be trimmed and rebuilds a wiped DC (0: skip that step)")
	fs.StringVar(&o.CacheSize, "cache-size", "", "every DC's --cache-size (default: theirs)")
	fs.StringVar(&o.HeapProfiles, "heap-profiles", "", "save every DC's Go heap profile into this directory wherever memory is measured")
	keep := fs.Bool("keep", false, "keep the DCs' data directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.Transfers == 0 {
		o.Transfers = o.Messages / 10
	}
	return runBench(*keep, func(ctx context.Context, bin, dir string) error {
		o.Binary, o.Dir = bin, dir
		return bench.State(ctx, o)
	})
}

func benchRides(args []string) error {
	fs := flag.NewFlagSet("bench rides", flag.ContinueOnError)
	o := bench.RidesOptions{Out: os.Stdout}
	fs.IntVar(&o.Drivers, "drivers", 10_000, "online drivers")
	fs.IntVar(&o.Riders, "riders", 5_000, "riders (one ride at a time each)")
	fs.DurationVar(&o.Report, "report", 4*time.Second, "how often each driver reports its location")
	fs.IntVar(&o.Rate, "rate", 1000, "ride requests offered per second")
	fs.DurationVar(&o.Duration, "duration", 10*time.Second, "length of the run")
	fs.Float64Var(&o.Complete, "complete", 0.1, "share of offers driven to completion (the rest: the rider cancels)")
	fs.StringVar(&o.CPUProfile, "cpuprofile", "", "write the run's CPU profile to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return runBench(false, func(ctx context.Context, _, dir string) error {
		o.Dir = dir
		return bench.Rides(ctx, o)
	})
}

// runBench runs a benchmark with this executable (to start DCs from), a
// fresh data directory (removed afterwards unless keep) and a context that
// Ctrl-C ends.
func runBench(keep bool, run func(ctx context.Context, bin, dir string) error) error {
	bin, err := os.Executable()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "superapp-bench-")
	if err != nil {
		return err
	}
	if !keep {
		defer os.RemoveAll(dir)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return run(ctx, bin, dir)
}
