package main

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/unetes/unetes/embed"
)

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
	b, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	kb, in := 0, false
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 5 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":"):
			_, in = embed.ReadOnlyMapping(line, st.Ino)
		case in && len(f) >= 2 && f[0] == "Rss:":
			n, _ := strconv.Atoi(f[1])
			kb += n
		}
	}
	return kb
}
