package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The download (bin/unetes) is a launcher: its first run for a user
// unpacks the program into the user's cache dir, later runs unpack
// nothing, and an instance's processes all run the unpacked program.
func TestDownloadUnpacksOnceIntoTheCache(t *testing.T) {
	u := asUser(t, *flagTestUser)
	cache, err := os.MkdirTemp(work.dir, "cache-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(cache) })
	chownTree(t, cache, u)
	version := func() (string, string) {
		cmd := u.command(work.unetes, "version")
		cmd.Env = append(cmd.Env, "XDG_CACHE_HOME="+cache)
		out, errOut, code := runFor(t, cmd, time.Minute)
		if code != 0 || !strings.HasPrefix(out, "unetes ") {
			t.Fatalf("unetes version: exit %d, %q %q", code, out, errOut)
		}
		return out, errOut
	}
	_, said := version()
	progs, _ := filepath.Glob(filepath.Join(cache, "unetes", "bin", "*", "unetes"))
	if len(progs) != 1 || !strings.Contains(said, "unpacked into "+filepath.Dir(progs[0])) {
		t.Fatalf("first run: programs %v, said %q", progs, said)
	}
	fi, err := os.Stat(progs[0])
	if err != nil || fi.Mode().Perm() != 0o755 || int(fi.Sys().(*syscall.Stat_t).Uid) != u.uid {
		t.Fatalf("the unpacked program: %v %v", fi, err)
	}
	if dl, _ := os.Stat(work.unetes); dl.Size() >= fi.Size() {
		t.Fatalf("the download (%d bytes) is not smaller than the program (%d)", dl.Size(), fi.Size())
	}
	ino := fi.Sys().(*syscall.Stat_t).Ino
	if _, said := version(); said != "" {
		t.Fatalf("a later run said %q", said)
	}
	if again, err := os.Stat(progs[0]); err != nil || again.Sys().(*syscall.Stat_t).Ino != ino {
		t.Fatalf("a later run unpacked again: %v", err)
	}

	// An instance's processes run the program unpacked in the user's own
	// cache, not the download.
	in := startInstanceNamed(t, u, newName())
	own := filepath.Join(u.home, ".cache", "unetes", "bin")
	pids := procsOf(u.uid, in.name)
	if len(pids) < 3 {
		t.Fatalf("instance processes:\n%s", describe(pids))
	}
	programs := 0
	for _, pid := range pids {
		exe, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
		if err != nil || filepath.Base(exe) != "unetes" {
			continue // gone, a helper, or not ours to read
		}
		if !strings.HasPrefix(exe, own+"/") {
			t.Fatalf("pid %d runs %s, not the program in %s:\n%s", pid, exe, own, describe(pids))
		}
		programs++
	}
	if programs < 3 { // run, the child, the sandbox
		t.Fatalf("%d processes run the unpacked program:\n%s", programs, describe(pids))
	}
}
