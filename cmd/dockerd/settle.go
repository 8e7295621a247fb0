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

// settleDelays are when the daemon gives back what its start-up alone
// used: once a start is usually over, and again when even a slow one
// (many containers to restore) is.
var settleDelays = []time.Duration{10 * time.Second, 60 * time.Second}

// settleLater settles the process's memory after each of settleDelays:
// the heap's free pages, and the pages of the executable that start-up's
// initialisers and tables touched (~60 MB of the 88 MB binary, mapped
// whole folios at a time): MADV_DONTNEED on a private mapping that was
// never written only drops the page-table entries, and what the daemon
// runs again is mapped again from the page cache.
func settleLater() {
	for _, d := range settleDelays {
		time.AfterFunc(d, func() {
			debug.FreeOSMemory()
			dropExecutablePages()
		})
	}
}

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
	ino := strconv.FormatUint(st.Ino, 10)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// "START-END PERMS OFFSET DEV INODE PATH": private, not writable, this file.
		fl := strings.Fields(sc.Text())
		if len(fl) < 6 || strings.ContainsAny(fl[1], "ws") || fl[4] != ino {
			continue
		}
		lo, hi, _ := strings.Cut(fl[0], "-")
		s, err1 := strconv.ParseUint(lo, 16, 64)
		e, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 == nil && err2 == nil && e > s {
			syscall.Syscall(syscall.SYS_MADVISE, uintptr(s), uintptr(e-s), syscall.MADV_DONTNEED)
		}
	}
}
