package main

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

func TestReadOnlyMapping(t *testing.T) {
	for _, c := range []struct {
		line       string
		start, end uintptr
		ok         bool
	}{
		{"00400000-056e7000 r-xp 00000000 fe:00 9978083    /tmp/ub/unetes", 0x400000, 0x56e7000, true},
		{"056e7000-0bf97000 r--p 052e7000 fe:00 9978083    /tmp/ub/unetes", 0x56e7000, 0xbf97000, true},
		{"0bf97000-0c161000 rw-p 0bb97000 fe:00 9978083    /tmp/ub/unetes", 0, 0, false}, // data: written
		{"7f97c3000000-7f9a43000000 r--s 00000000 fe:00 9978083 /x/db", 0, 0, false},     // shared
		{"056e7000-0bf97000 r--p 052e7000 fe:00 1234    /other", 0, 0, false},            // another file
		{"1cbbef400000-1cbbfe000000 rw-p 00000000 00:00 0 ", 0, 0, false},                // anonymous
		{"zz-0bf97000 r--p 052e7000 fe:00 9978083    /tmp/ub/unetes", 0, 0, false},       // malformed
		{"0bf97000-056e7000 r--p 052e7000 fe:00 9978083    /tmp/ub/unetes", 0, 0, false}, // end before start
	} {
		s, e, ok := readOnlyMapping(c.line, 9978083)
		if s != c.start || e != c.end || ok != c.ok {
			t.Errorf("readOnlyMapping(%q) = %#x, %#x, %v; want %#x, %#x, %v", c.line, s, e, ok, c.start, c.end, c.ok)
		}
	}
}

// TestDropExecutablePages: the executable's read-only pages leave the
// process's resident set, and the process runs on (they map again on use).
func TestDropExecutablePages(t *testing.T) {
	before := executableRss(t)
	dropExecutablePages()
	after := executableRss(t)
	t.Logf("resident pages of the executable: %d kB, then %d kB", before, after)
	if before == 0 || after >= before {
		t.Fatalf("resident pages of the executable: %d kB before, %d kB after dropping them", before, after)
	}
	if len(commands) == 0 {
		t.Fatal("no commands after dropping the executable's pages")
	}
}

// executableRss sums Rss (kB) of the executable's read-only mappings, as
// dropExecutablePages picks them, from /proc/self/smaps.
func executableRss(t *testing.T) int {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat("/proc/self/exe", &st); err != nil {
		t.Fatal(err)
	}
	return smapsRss(t, func(line string) bool { _, _, ok := readOnlyMapping(line, st.Ino); return ok })
}

// smapsRss sums Rss (kB) of this process's mappings whose /proc/self/smaps
// header line pick accepts.
func smapsRss(t *testing.T, pick func(line string) bool) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	kb, in := 0, false
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 5 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":"):
			in = pick(line)
		case in && len(f) >= 2 && f[0] == "Rss:":
			n, _ := strconv.Atoi(f[1])
			kb += n
		}
	}
	return kb
}

func TestSharedMapping(t *testing.T) {
	for _, c := range []struct {
		line       string
		start, end uintptr
		ok         bool
	}{
		{"7f97c3000000-7f9a43000000 r--s 00000000 fe:00 42 /x/db", 0x7f97c3000000, 0x7f9a43000000, true},
		{"7f97c3000000-7f9a43000000 rw-s 00000000 fe:00 42 /x/db", 0, 0, false}, // writable
		{"7f97c3000000-7f9a43000000 r--p 00000000 fe:00 42 /x/db", 0, 0, false}, // private
		{"7f97c3000000-7f9a43000000 r--s 00000000 fe:00 43 /x/other", 0, 0, false},
	} {
		s, e, ok := sharedMapping(c.line, 42)
		if s != c.start || e != c.end || ok != c.ok {
			t.Errorf("sharedMapping(%q) = %#x, %#x, %v; want %#x, %#x, %v", c.line, s, e, ok, c.start, c.end, c.ok)
		}
	}
}

// TestDropMappedFilePages: a data file mapped shared, as bbolt maps etcd's
// database, leaves the resident set and reads the same afterwards.
func TestDropMappedFilePages(t *testing.T) {
	path := t.TempDir() + "/db"
	data := make([]byte, 8<<20)
	for i := range data {
		data[i] = byte(i / 4096)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := syscall.Mmap(int(f.Fd()), 0, len(data), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Munmap(m)
	sum := 0
	for i := 0; i < len(m); i += 4096 {
		sum += int(m[i])
	}
	before := mappingRss(t, path)
	dropMappedFilePages(path)
	after := mappingRss(t, path)
	t.Logf("resident pages of the mapping: %d kB, then %d kB", before, after)
	if before < 4096 || after > before/4 {
		t.Fatalf("resident pages of the mapping: %d kB before, %d kB after dropping them", before, after)
	}
	again := 0
	for i := 0; i < len(m); i += 4096 {
		again += int(m[i])
	}
	if again != sum {
		t.Fatalf("the mapping reads %d after the drop, %d before", again, sum)
	}
}

// mappingRss sums Rss (kB) of this process's mappings of path.
func mappingRss(t *testing.T, path string) int {
	t.Helper()
	return smapsRss(t, func(line string) bool { f := strings.Fields(line); return len(f) >= 6 && f[5] == path })
}
