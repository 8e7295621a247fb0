package embed

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Span is an address range [Start, End) of a process.
type Span struct{ Start, End uintptr }

// ExecutableSpans returns the private, read-only mappings of pid's own
// executable (text, rodata): what start-up's initialisers and tables touch
// and the steady state mostly does not. pid 0 is this process.
func ExecutableSpans(pid int) ([]Span, error) {
	proc := "/proc/self"
	if pid != 0 {
		proc = "/proc/" + strconv.Itoa(pid)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(proc+"/exe", &st); err != nil {
		return nil, err
	}
	f, err := os.Open(proc + "/maps")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Span
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if s, ok := ReadOnlyMapping(sc.Text(), st.Ino); ok {
			out = append(out, s)
		}
	}
	return out, sc.Err()
}

// ReadOnlyMapping parses a /proc/PID/maps line and reports the range of a
// private mapping of inode ino that cannot be written.
func ReadOnlyMapping(line string, ino uint64) (Span, bool) {
	f := strings.Fields(line)
	if len(f) < 6 || strings.ContainsAny(f[1], "ws") || f[4] != strconv.FormatUint(ino, 10) {
		return Span{}, false
	}
	lo, hi, found := strings.Cut(f[0], "-")
	if !found {
		return Span{}, false
	}
	s, err1 := strconv.ParseUint(lo, 16, 64)
	e, err2 := strconv.ParseUint(hi, 16, 64)
	if err1 != nil || err2 != nil || e <= s {
		return Span{}, false
	}
	return Span{uintptr(s), uintptr(e)}, true
}

// pageOutExecutable has the kernel reclaim the pages of another process's
// executable that it is not using now (process_madvise MADV_PAGEOUT): a
// child that is not unetes (dockerd) cannot drop them itself, as unetes'
// own roles do once they are up. dockerd's start touches ~60 MB of its
// 88 MB binary, which would otherwise stay mapped; what it runs again is
// read back on use. Needs CAP_SYS_NICE over the target (the sandbox is
// root in the target's user namespace).
func pageOutExecutable(pid int) error {
	spans, err := ExecutableSpans(pid)
	if err != nil {
		return err
	}
	if len(spans) == 0 {
		return nil
	}
	// struct iovec of the other process's addresses: never dereferenced here.
	type iovec struct{ base, len uintptr }
	iov := make([]iovec, len(spans))
	for i, s := range spans {
		iov[i] = iovec{s.Start, s.End - s.Start}
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return fmt.Errorf("pidfd of %d: %w", pid, err)
	}
	defer unix.Close(fd)
	if _, _, e := unix.Syscall6(unix.SYS_PROCESS_MADVISE, uintptr(fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)), unix.MADV_PAGEOUT, 0, 0); e != 0 {
		return fmt.Errorf("process_madvise %d: %w", pid, e)
	}
	return nil
}
