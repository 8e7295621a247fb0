package main

import (
	"os"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/unetes/unetes/embed"
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
	spans, _ := embed.ExecutableSpans(0)
	for _, s := range spans {
		syscall.Syscall(syscall.SYS_MADVISE, s.Start, s.End-s.Start, syscall.MADV_DONTNEED)
	}
}
