package nsinit

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// CgroupInit is the leaf that unetes' own processes move into, so that the
// delegated cgroup itself holds no process and may hand its controllers down
// to the kubelet's pod cgroups (cgroup v2's no-internal-processes rule).
const CgroupInit = "unetes-init"

// DelegateCgroup prepares the delegated cgroup v2 m.Path under mountpoint
// (normally /sys/fs/cgroup) for the kubelet: it moves every process in it
// into the CgroupInit child and enables m's cpu, cpuset, io, memory and pids
// controllers for its children. Start runs it once the namespaces exist,
// with a cgroup namespace rooted at m.Path: inside, the kubelet's cgroup
// root is "/" and /sys/fs/cgroup shows m.Path's subtree (the kubelet wants
// every controller of the root it sees; systemd delegates neither cpuset
// everywhere nor hugetlb ever).
func DelegateCgroup(mountpoint string, m CgroupMode) error {
	if !m.Enforced() {
		return fmt.Errorf("cgroup %s is not delegated with cpu, memory and pids", m.Path)
	}
	dir := filepath.Join(mountpoint, m.Path)
	leaf := filepath.Join(dir, CgroupInit)
	if err := os.Mkdir(leaf, 0o755); err != nil && !os.IsExist(err) {
		return fmt.Errorf("make %s: %w", leaf, err)
	}
	procs, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return err
	}
	for _, pid := range strings.Fields(string(procs)) {
		// A process may have exited since the read; that is fine.
		if err := os.WriteFile(filepath.Join(leaf, "cgroup.procs"), []byte(pid), 0o644); err != nil && !isESRCH(err) {
			return fmt.Errorf("move pid %s into %s: %w", pid, leaf, err)
		}
	}
	var enable []string
	for _, c := range m.Controllers {
		switch c {
		case "cpu", "cpuset", "io", "memory", "pids":
			enable = append(enable, "+"+c)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte(strings.Join(enable, " ")), 0o644); err != nil {
		return fmt.Errorf("enable %s in %s: %w", strings.Join(enable, " "), dir, err)
	}
	return nil
}

func isESRCH(err error) bool { return strings.Contains(err.Error(), "no such process") }
