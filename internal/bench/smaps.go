package bench

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// residentSplit is a process's resident memory by what backs it (Linux,
// from /proc/PID/smaps).
type residentSplit struct {
	// Anon is memory no file backs: the Go runtime's (its heap, stacks
	// and bookkeeping) and C malloc's, where the state store keeps its
	// block cache and memtables (Pebble allocates them outside the Go
	// heap).
	Anon uint64
	// Files is memory backed by files: the executable, and files mapped.
	Files uint64
}

// splitResident reads pid's smaps; the zero split if it cannot.
func splitResident(pid int) residentSplit {
	var s residentSplit
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		return s
	}
	defer f.Close()
	var cur *uint64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		if len(fields) >= 5 && strings.Contains(fields[0], "-") && !strings.HasSuffix(fields[0], ":") {
			// A mapping's header: range perms offset dev inode [path].
			if fields[4] != "0" {
				cur = &s.Files
			} else {
				cur = &s.Anon
			}
			continue
		}
		if rest, ok := strings.CutPrefix(line, "Rss:"); ok && cur != nil {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			*cur += kb << 10
		}
	}
	return s
}
