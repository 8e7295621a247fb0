package main

import (
	"bufio"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Memory after start-up. Every role of the one binary runs the initialisers
// of every linked package, and start-up itself (OpenAPI specs, the first
// lists of every informer, unpacking helpers) makes garbage the steady state
// never needs again. Once a long-lived role is up, settleMemory gives back
// what start-up alone used:
//   - the heap's free pages, at once (the Go runtime returns them slowly);
//   - the pages of the executable that only start-up read (initialisers,
//     tables): they stay in the page cache, reclaimable, but no longer count
//     as this process's memory, and what the process runs again is mapped
//     again from the cache;
//   - with gcPercent > 0, a smaller heap goal from then on (the sandbox's
//     live heap is ~120 MB, half of it the apiserver's routes and OpenAPI
//     specs: GOGC 100 lets the heap sit at twice that). A GOGC the user set
//     wins.

const (
	// sandboxGCPercent is the sandbox's GOGC once it runs. Its heap goal
	// is then 1.5x the live heap instead of 2x (~60 MB less when idle);
	// lower values saved little more (goroutine stacks, ~30 MB, and
	// fragmentation are the rest) and cost CPU when pods start in bulk:
	// the collector's work grows as 1/GOGC with the allocation rate.
	sandboxGCPercent = 50
)

// settleDelays are when the roles with no "ready" of their own (child,
// kubelet) settle, after their start: once when an instance's start-up is
// usually over, and again when even a slow one is (a restart with many
// pods). Each costs a forced collection of a small heap.
var settleDelays = []time.Duration{10 * time.Second, 60 * time.Second}

func settleMemory(gcPercent int) {
	if gcPercent > 0 && os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	debug.FreeOSMemory()
	dropExecutablePages()
}

// settleMemoryLater settles the process's memory after each settleDelays.
func settleMemoryLater() {
	for _, d := range settleDelays {
		time.AfterFunc(d, func() { settleMemory(0) })
	}
}

// dropExecutablePages unmaps the pages of the executable's read-only
// mappings (text, rodata) from this process: MADV_DONTNEED on a private
// mapping that was never written only drops the page-table entries; the
// next access maps the page again from the page cache. Best effort.
func dropExecutablePages() {
	var st syscall.Stat_t
	if err := syscall.Stat("/proc/self/exe", &st); err != nil {
		return
	}
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		start, end, ok := readOnlyMapping(sc.Text(), st.Ino)
		if ok {
			syscall.Syscall(syscall.SYS_MADVISE, start, end-start, syscall.MADV_DONTNEED)
		}
	}
}

// readOnlyMapping parses a /proc/PID/maps line and reports the range of a
// private mapping of inode ino that cannot be written.
func readOnlyMapping(line string, ino uint64) (start, end uintptr, ok bool) {
	f := strings.Fields(line)
	if len(f) < 6 || strings.ContainsAny(f[1], "ws") || f[4] != strconv.FormatUint(ino, 10) {
		return 0, 0, false
	}
	lo, hi, found := strings.Cut(f[0], "-")
	if !found {
		return 0, 0, false
	}
	s, err1 := strconv.ParseUint(lo, 16, 64)
	e, err2 := strconv.ParseUint(hi, 16, 64)
	if err1 != nil || err2 != nil || e <= s {
		return 0, 0, false
	}
	return uintptr(s), uintptr(e), true
}
