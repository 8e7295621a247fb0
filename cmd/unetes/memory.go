package main

import (
	"bufio"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
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
//   - the pages of data files it maps (etcd's database), which start-up
//     read through in large folios (dropMappedFilePages);
//   - with gcPercent > 0, a smaller heap goal from then on (the sandbox's
//     live heap is ~120 MB, half of it the apiserver's routes and OpenAPI
//     specs: GOGC 100 lets the heap sit at twice that). A GOGC the user set
//     wins.

const (
	// sandboxGCPercent is the sandbox's GOGC once it runs. Its heap goal
	// is then the live heap (~116 MB idle) plus 35 % of it and of the
	// goroutine stacks, instead of 50 %: ~6 MB less PSS for an idle
	// instance at the same idle CPU (~195 ticks a minute). 25 saved no
	// more: what remains is the live heap and the spans start-up left
	// part-used. Start-up keeps GOGC 100: it allocates the most, and 35
	// from the start, though it left ~14 MB less heap, made a warm start
	// ready ~0.4 s later (2.5 -> 2.9 s).
	sandboxGCPercent = 35
	// smallGCPercent is that of the other long-lived roles (run, child,
	// kubelet), whose live heaps are a few MB.
	smallGCPercent = 50
)

// settleDelays are when the roles with no "ready" of their own (child,
// kubelet) settle, after their start: once when an instance's start-up is
// usually over, and again when even a slow one is (a restart with many
// pods). Each costs a forced collection of a small heap.
var settleDelays = []time.Duration{10 * time.Second, 60 * time.Second}

func settleMemory(gcPercent int, mappedFiles ...string) {
	if gcPercent > 0 && os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	debug.FreeOSMemory()
	dropExecutablePages()
	for _, f := range mappedFiles {
		dropMappedFilePages(f)
	}
}

// settleMemoryLater settles the process's memory after each settleDelays.
func settleMemoryLater() {
	for _, d := range settleDelays {
		time.AfterFunc(d, func() { settleMemory(smallGCPercent) })
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
	adviseMappings(func(line string) (uintptr, uintptr, bool) { return readOnlyMapping(line, st.Ino) }, syscall.MADV_DONTNEED)
}

// adviseMappings applies each advice, in order, to the mappings of this
// process that match picks from their /proc/self/maps line. Best effort.
func adviseMappings(match func(line string) (start, end uintptr, ok bool), advice ...int) {
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if start, end, ok := match(sc.Text()); ok {
			for _, a := range advice {
				syscall.Syscall(syscall.SYS_MADVISE, start, end-start, uintptr(a))
			}
		}
	}
}

// dropMappedFilePages is for a data file this process maps shared and reads
// at random (etcd's bbolt database): start-up read it through, its page
// faults read ahead, and the page cache keeps it in large folios, each
// mapped whole by a fault on any of its pages (etcd's 16 MB database of an
// empty cluster counted 16 MB PSS). The mappings' pages are dropped, the
// file's clean pages leave the page cache, and with readahead off for the
// mappings each later fault reads and maps one base page. Best effort.
func dropMappedFilePages(path string) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return
	}
	adviseMappings(func(line string) (uintptr, uintptr, bool) { return sharedMapping(line, st.Ino) }, syscall.MADV_DONTNEED, syscall.MADV_RANDOM)
	if df, err := os.Open(path); err == nil {
		unix.Fadvise(int(df.Fd()), 0, 0, unix.FADV_DONTNEED)
		df.Close()
	}
}

// sharedMapping reports the range of a read-only shared mapping of inode
// ino in a /proc/PID/maps line.
func sharedMapping(line string, ino uint64) (start, end uintptr, ok bool) {
	f := strings.Fields(line)
	if len(f) < 6 || f[1] != "r--s" || f[4] != strconv.FormatUint(ino, 10) {
		return 0, 0, false
	}
	return mappingRange(f[0])
}

// readOnlyMapping parses a /proc/PID/maps line and reports the range of a
// private mapping of inode ino that cannot be written.
func readOnlyMapping(line string, ino uint64) (start, end uintptr, ok bool) {
	f := strings.Fields(line)
	if len(f) < 6 || strings.ContainsAny(f[1], "ws") || f[4] != strconv.FormatUint(ino, 10) {
		return 0, 0, false
	}
	return mappingRange(f[0])
}

// mappingRange parses a maps line's "start-end" (hex).
func mappingRange(r string) (start, end uintptr, ok bool) {
	lo, hi, found := strings.Cut(r, "-")
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
