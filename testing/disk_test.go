package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Before the kubelet evicts for disk space, status and an Event on the node
// say why and what to do; the threshold is settable. The disk's free share
// is what it is, so the test sets the threshold to put it in the warning
// band (free between the threshold and 1.5 times it).
func TestDiskLowIsSaidBeforeEviction(t *testing.T) {
	u := asUser(t, *flagTestUser)
	var st syscall.Statfs_t
	if err := syscall.Statfs(u.home, &st); err != nil {
		t.Fatal(err)
	}
	free := 100 * float64(st.Bavail) / float64(st.Blocks)
	threshold := fmt.Sprintf("%.1f%%", free/1.25)
	if _, errOut, code := u.unetes(t, "", "run", "--name", newName(), "--eviction-disk-free", "120%"); code == 0 || !strings.Contains(errOut, `--eviction-disk-free "120%" is not a percentage`) {
		t.Fatalf("run --eviction-disk-free 120%%: exit %d, %q", code, errOut)
	}
	name := newName()
	in, _ := startKubeWith(t, u, name, "--eviction-disk-free", threshold)
	conf, err := os.ReadFile(filepath.Join(in.stateDir(), "kubelet.yaml"))
	if err != nil || !strings.Contains(string(conf), fmt.Sprintf("nodefs.available: %q", threshold)) {
		t.Fatalf("the kubelet's threshold is not %s: %v\n%s", threshold, err, conf)
	}
	waitFor(t, 30*time.Second, "status to say the disk is low", func() bool {
		out, _, _ := u.unetes(t, "", "status", "--name", name)
		return regexpLine(out, `^\s+disk\s+low since .*near the eviction threshold `+regexp.QuoteMeta(threshold)+`.*--eviction-disk-free`)
	})
	waitFor(t, 30*time.Second, "a DiskSpaceLow event on the node", func() bool {
		out, _, _ := in.kubectl("get", "events", "--field-selector", "reason=DiskSpaceLow,involvedObject.kind=Node", "-o", "jsonpath={.items[*].message}")
		return strings.Contains(out, "near the eviction threshold "+threshold)
	})
	// Warned, not yet evicting: the node has no DiskPressure.
	if p := in.mustKubectl("get", "node", "-o", `jsonpath={.items[0].status.conditions[?(@.type=="DiskPressure")].status}`); p != "False" {
		t.Fatalf("DiskPressure %q with %.1f%% free and a threshold of %s", p, free, threshold)
	}
}
