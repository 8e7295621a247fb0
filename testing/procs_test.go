package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// procsOf lists live (non-zombie) processes of uid whose command line
// contains match.
func procsOf(uid int, match string) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		status, err := os.ReadFile(filepath.Join("/proc", e.Name(), "status"))
		if err != nil {
			continue
		}
		var state string
		var puid = -1
		for _, l := range strings.Split(string(status), "\n") {
			f := strings.Fields(l)
			if len(f) < 2 {
				continue
			}
			switch f[0] {
			case "State:":
				state = f[1]
			case "Uid:":
				puid, _ = strconv.Atoi(f[1])
			}
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		cmd := strings.ReplaceAll(string(cmdline), "\x00", " ")
		if puid == uid && state != "Z" && strings.Contains(cmd, match) {
			out = append(out, pid)
		}
	}
	return out
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for: %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// describe prints pid, state and command line of each pid.
func describe(pids []int) string {
	var b strings.Builder
	for _, pid := range pids {
		cmd, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
		stat, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
		fields := strings.Fields(string(stat))
		state := "?"
		if len(fields) > 2 {
			state = fields[2]
		}
		b.WriteString(strconv.Itoa(pid) + " " + state + " " + strings.ReplaceAll(string(cmd), "\x00", " ") + "\n")
	}
	return b.String()
}

// regexpLine reports whether some line of s matches re.
func regexpLine(s, re string) bool {
	r := regexp.MustCompile(re)
	for _, l := range strings.Split(s, "\n") {
		if r.MatchString(l) {
			return true
		}
	}
	return false
}
