package nsinit

import (
	"fmt"
	"slices"
	"strings"
)

// CgroupMode says whether resource limits can be enforced.
type CgroupMode struct {
	V2          bool     // unified hierarchy mounted at /sys/fs/cgroup
	Delegated   bool     // the user's cgroup is writable and has controllers
	Controllers []string // controllers available to the user (v2)
	Path        string   // the process's cgroup (v2)
}

// Enforced reports whether unetes can enforce pod resource limits.
func (m CgroupMode) Enforced() bool {
	if !m.V2 || !m.Delegated {
		return false
	}
	need := map[string]bool{"cpu": false, "memory": false, "pids": false}
	for _, c := range m.Controllers {
		if _, ok := need[c]; ok {
			need[c] = true
		}
	}
	for _, ok := range need {
		if !ok {
			return false
		}
	}
	return true
}

// DetectCgroup reads the cgroup layout through h. It is pure given h.
func DetectCgroup(h Host, u User) CgroupMode {
	var m CgroupMode
	mi, err := h.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return m
	}
	for _, line := range strings.Split(string(mi), "\n") {
		// ... mountpoint ... - fstype source options
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) >= 5 && len(g) >= 1 && f[4] == "/sys/fs/cgroup" && g[0] == "cgroup2" {
			m.V2 = true
		}
	}
	if !m.V2 {
		return m
	}
	cg, err := h.ReadFile("/proc/self/cgroup")
	if err != nil {
		return m
	}
	for _, line := range strings.Split(string(cg), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			m.Path = p
		}
	}
	dir := "/sys/fs/cgroup" + m.Path
	if b, err := h.ReadFile(dir + "/cgroup.controllers"); err == nil {
		m.Controllers = strings.Fields(string(b))
	}
	if fi, err := h.Stat(dir + "/cgroup.procs"); err == nil {
		m.Delegated = u.UID == 0 || ownerUID(fi) == u.UID
	}
	return m
}

func checkCgroup(h Host, u User) Check {
	m := DetectCgroup(h, u)
	c := Check{Name: "cgroups"}
	switch {
	case m.Enforced():
		c.Level, c.Detail = OK, fmt.Sprintf("cgroup v2, controllers %s delegated: resource limits are enforced", strings.Join(m.Controllers, " "))
	case !m.V2:
		c.Level, c.Detail = Warn, "cgroup v1 or hybrid hierarchy: unetes runs, but pod resource limits are NOT enforced"
		c.Fix = "boot with systemd.unified_cgroup_hierarchy=1 and delegate cpu, memory and pids to the user (systemd: Delegate=yes in user@.service)"
	default:
		c.Level = Warn
		c.Detail = fmt.Sprintf("cgroup v2 but %s is not delegated with cpu, memory and pids (has: %s): pod resource limits are NOT enforced",
			m.Path, strings.Join(m.Controllers, " "))
		c.Fix = cgroupV2Fix(h, u)
	}
	return c
}

// runDelegated is how to start unetes in a cgroup that the user's systemd
// delegates to it (a scope in the foreground; without --scope, a service).
const runDelegated = "systemd-run --user --scope -p Delegate=yes unetes run"

// cgroupV2Fix says what to do on a cgroup v2 host where unetes' cgroup is
// not delegated: start it in a delegated unit of the user's systemd, after
// giving that systemd the controllers or starting it, where needed.
func cgroupV2Fix(h Host, u User) string {
	mgr := fmt.Sprintf("/sys/fs/cgroup/user.slice/user-%d.slice/user@%d.service", u.UID, u.UID)
	b, err := h.ReadFile(mgr + "/cgroup.controllers")
	if err != nil {
		return fmt.Sprintf("no systemd user manager runs for %s (%s is missing): log in with a PAM session (or `sudo loginctl enable-linger %s`), then run unetes in a cgroup of its own: %s",
			u.Name, mgr, u.Name, runDelegated)
	}
	have := strings.Fields(string(b))
	var missing []string
	for _, c := range []string{"cpu", "memory", "pids"} {
		if !slices.Contains(have, c) {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		return fmt.Sprintf("your systemd (user@%d.service) is not delegated %s: `sudo mkdir -p /etc/systemd/system/user@.service.d && printf '[Service]\\nDelegate=cpu cpuset io memory pids\\n' | sudo tee /etc/systemd/system/user@.service.d/delegate.conf && sudo systemctl daemon-reload`, log in again, then: %s",
			u.UID, strings.Join(missing, ", "), runDelegated)
	}
	return "run unetes in a cgroup of its own that your systemd delegates to you: " + runDelegated + " (or as a service, without --scope)"
}
