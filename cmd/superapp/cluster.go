package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"superapp/internal/cluster"
)

// clusterCmd runs three DCs on this machine until Ctrl-C.
func clusterCmd(args []string) error {
	fs := flag.NewFlagSet("cluster", flag.ContinueOnError)
	dir := fs.String("data", "./cluster-data", "directory for the three DCs' data and logs")
	ports := fs.String("http-ports", "8081,8082,8083", "HTTP ports of dc1, dc2, dc3")
	secret := fs.String("cluster-secret", "", "cluster secret (random if empty)")
	opsToken := fs.String("ops-token", "", "every DC's ops token, for superapp status and evacuate (random if empty; printed)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := fromEnv(fs); err != nil {
		return err
	}
	var hp []int
	for _, p := range strings.Split(*ports, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n <= 0 || n > 65535 {
			return fmt.Errorf("--http-ports: %q is not a port", p)
		}
		hp = append(hp, n)
	}
	if len(hp) != 3 {
		return fmt.Errorf("--http-ports: give three ports")
	}
	bin, err := os.Executable()
	if err != nil {
		return err
	}
	c, err := cluster.New(cluster.Options{Binary: bin, Dir: *dir, Secret: *secret, HTTPPorts: hp, OpsToken: *opsToken})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := c.StartAll(); err != nil {
		c.StopAll()
		return err
	}
	defer c.StopAll()
	fmt.Println("starting three data centers; logs in", *dir)
	for _, d := range c.DCs {
		wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		took, err := c.WaitReady(wctx, d.Name)
		cancel()
		if err != nil {
			return err
		}
		fmt.Printf("%s ready in %v: %s\n", d.Name, took.Round(time.Millisecond), d.URL())
	}
	fmt.Println("every stream keeps one replica per DC; kill any one process and the others serve on.")
	fmt.Printf("operators' endpoints (superapp status, evacuate, /metrics) need the ops token: export SUPERAPP_OPS_TOKEN=%s\n", c.OpsToken())
	fmt.Println("Ctrl-C stops all three.")
	<-ctx.Done()
	fmt.Println("stopping")
	return nil
}
