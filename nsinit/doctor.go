package nsinit

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"strings"
)

// Level is the outcome of one host check.
type Level int

const (
	OK   Level = iota
	Info       // worth knowing, changes nothing
	Warn       // unetes runs, with a stated limitation
	Fail       // unetes cannot run until fixed
)

func (l Level) String() string {
	return [...]string{" ok ", "info", "warn", "FAIL"}[l]
}

// Check is one host prerequisite and, when it is not met, the exact fix.
type Check struct {
	Name   string
	Level  Level
	Detail string
	Fix    string
}

// Host is what the checks read; the real one is LiveHost, tests use a fake.
type Host interface {
	ReadFile(path string) ([]byte, error)
	Stat(path string) (fs.FileInfo, error)
	LookPath(name string) (string, error)
	HasFileCaps(path string) bool
	OpenRW(path string) error
}

// User is who runs unetes.
type User struct {
	Name     string
	UID, GID int
}

// Doctor runs every check. It is pure given h.
func Doctor(h Host, u User) []Check {
	cs := []Check{checkUserNS(h, u)}
	if u.UID != 0 {
		cs = append(cs, checkIDMapTools(h), checkSubIDs(h, u))
	} else {
		cs = append(cs, Check{Name: "sub-IDs", Level: OK, Detail: "running as root: the whole ID range is mapped, no sub-IDs needed"})
	}
	cs = append(cs, checkTun(h), checkIPTool(h), checkFirewall(h), checkCgroup(h, u), checkPorts(h), checkPing(h, u), checkBrNetfilter(h))
	return cs
}

// Failed returns the checks that stop unetes from running.
func Failed(cs []Check) []Check {
	var out []Check
	for _, c := range cs {
		if c.Level == Fail {
			out = append(out, c)
		}
	}
	return out
}

// PrereqError is returned by Start when a host prerequisite is missing.
type PrereqError struct{ Checks []Check }

func (e *PrereqError) Error() string {
	var b strings.Builder
	b.WriteString("host prerequisites missing (run `unetes doctor` for the full report):")
	for _, c := range e.Checks {
		fmt.Fprintf(&b, "\n  %s: %s\n    fix: %s", c.Name, c.Detail, c.Fix)
	}
	return b.String()
}

// Print writes the report, one line a check and its fix under it.
func Print(w io.Writer, cs []Check) {
	for _, c := range cs {
		fmt.Fprintf(w, "[%s] %s: %s\n", c.Level, c.Name, c.Detail)
		if c.Fix != "" && c.Level != OK {
			fmt.Fprintf(w, "       fix: %s\n", c.Fix)
		}
	}
}

func readInt(h Host, path string) (int, bool) {
	b, err := h.ReadFile(path)
	if err != nil {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	return n, err == nil
}

func checkUserNS(h Host, u User) Check {
	c := Check{Name: "user namespaces"}
	if n, ok := readInt(h, "/proc/sys/user/max_user_namespaces"); ok && n == 0 {
		c.Level, c.Detail = Fail, "user.max_user_namespaces is 0"
		c.Fix = "sudo sysctl -w user.max_user_namespaces=28633 (persist it in /etc/sysctl.d/99-unetes.conf)"
		return c
	}
	if u.UID != 0 {
		if n, ok := readInt(h, "/proc/sys/kernel/unprivileged_userns_clone"); ok && n == 0 {
			c.Level, c.Detail = Fail, "kernel.unprivileged_userns_clone is 0 (Debian/Arch kernels)"
			c.Fix = "sudo sysctl -w kernel.unprivileged_userns_clone=1 (persist it in /etc/sysctl.d/99-unetes.conf)"
			return c
		}
		if n, ok := readInt(h, "/proc/sys/kernel/apparmor_restrict_unprivileged_userns"); ok && n == 1 {
			c.Level, c.Detail = Fail, "AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns=1)"
			c.Fix = "sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0, or load an AppArmor profile granting `userns,` to the unetes binary"
			return c
		}
	}
	c.Level, c.Detail = OK, "enabled"
	return c
}

func checkIDMapTools(h Host) Check {
	c := Check{Name: "newuidmap/newgidmap"}
	for _, tool := range []string{"newuidmap", "newgidmap"} {
		p, err := h.LookPath(tool)
		if err != nil {
			c.Level, c.Detail = Fail, tool+" not found"
			c.Fix = "sudo apt-get install uidmap (Fedora: dnf install shadow-utils; Arch: pacman -S shadow)"
			return c
		}
		fi, err := h.Stat(p)
		if err != nil || (fi.Mode()&fs.ModeSetuid == 0 && !h.HasFileCaps(p)) {
			c.Level, c.Detail = Fail, p+" is neither setuid nor has file capabilities"
			c.Fix = "sudo chmod u+s " + p + " (or reinstall the uidmap package)"
			return c
		}
	}
	c.Level, c.Detail = OK, "present and privileged"
	return c
}

func checkSubIDs(h Host, u User) Check {
	c := Check{Name: "sub-IDs"}
	fix := fmt.Sprintf("sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 %s", u.Name)
	for _, f := range []struct {
		path string
		id   int
	}{{"/etc/subuid", u.UID}, {"/etc/subgid", u.GID}} {
		b, err := h.ReadFile(f.path)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			c.Level, c.Detail, c.Fix = Fail, fmt.Sprintf("cannot read %s: %v", f.path, err), "make "+f.path+" readable (mode 0644)"
			return c
		}
		ranges, err := ParseSubIDs(b, u.Name, f.id)
		if err != nil {
			c.Level, c.Detail, c.Fix = Fail, fmt.Sprintf("%s: %v", f.path, err), "correct "+f.path+" (format name:start:count)"
			return c
		}
		if n := TotalIDs(ranges, f.id); n < MinSubIDs {
			c.Level = Fail
			c.Detail = fmt.Sprintf("user %q has %d IDs in %s, needs at least %d", u.Name, n, f.path, MinSubIDs)
			c.Fix = fix
			return c
		}
	}
	c.Level, c.Detail = OK, fmt.Sprintf("at least %d in /etc/subuid and /etc/subgid", MinSubIDs)
	return c
}

func checkTun(h Host) Check {
	c := Check{Name: "/dev/net/tun"}
	err := h.OpenRW("/dev/net/tun")
	switch {
	case err == nil:
		c.Level, c.Detail = OK, "usable"
	case errors.Is(err, fs.ErrNotExist):
		c.Level, c.Detail, c.Fix = Fail, "missing", "sudo modprobe tun (and add tun to /etc/modules)"
	default:
		c.Level, c.Detail = Fail, fmt.Sprintf("cannot open it: %v", err)
		c.Fix = `sudo chmod 0666 /dev/net/tun (persist with a udev rule: KERNEL=="tun", MODE="0666")`
	}
	return c
}

func checkIPTool(h Host) Check {
	if _, err := h.LookPath("ip"); err != nil {
		return Check{Name: "ip (iproute2)", Level: Fail, Detail: "not found", Fix: "sudo apt-get install iproute2"}
	}
	return Check{Name: "ip (iproute2)", Level: OK, Detail: "present"}
}

func checkFirewall(h Host) Check {
	for _, t := range []string{"nft", "iptables"} {
		if p, err := h.LookPath(t); err == nil {
			return Check{Name: "iptables/nft", Level: OK, Detail: p + " present"}
		}
	}
	return Check{Name: "iptables/nft", Level: Warn, Detail: "neither nft nor iptables found; Kubernetes Services and pod masquerading need one",
		Fix: "sudo apt-get install nftables iptables"}
}

func checkPorts(h Host) Check {
	n, ok := readInt(h, "/proc/sys/net/ipv4/ip_unprivileged_port_start")
	if !ok || n == 0 {
		return Check{Name: "privileged ports", Level: OK, Detail: "any host port can be forwarded"}
	}
	return Check{Name: "privileged ports", Level: Info,
		Detail: fmt.Sprintf("host ports below %d cannot be forwarded by an ordinary user", n),
		Fix:    "sudo sysctl -w net.ipv4.ip_unprivileged_port_start=0, or sudo setcap cap_net_bind_service=ep PATH-TO-unetes"}
}

func checkPing(h Host, u User) Check {
	c := Check{Name: "ping"}
	b, err := h.ReadFile("/proc/sys/net/ipv4/ping_group_range")
	var lo, hi int
	if err == nil {
		_, err = fmt.Sscan(string(b), &lo, &hi)
	}
	if err == nil && u.GID >= lo && u.GID <= hi {
		c.Level, c.Detail = OK, "ping from the namespace is forwarded (ping sockets allowed)"
		return c
	}
	c.Level = Info
	c.Detail = "ping sockets are not allowed for your group: only 10.0.2.2 and 10.0.2.3 answer ping inside"
	c.Fix = `sudo sysctl -w net.ipv4.ping_group_range="0 2147483647"`
	return c
}

// checkBrNetfilter: without br_netfilter (a module on Debian's and
// Ubuntu's kernels, which a user namespace cannot load) docker's
// containers cannot reach each other through a port published on the
// node's address; everything else works.
func checkBrNetfilter(h Host) Check {
	c := Check{Name: "br_netfilter"}
	if _, err := h.ReadFile("/proc/sys/net/bridge/bridge-nf-call-iptables"); err == nil {
		c.Level, c.Detail = OK, "loaded: bridged traffic passes iptables"
		return c
	}
	c.Level = Info
	c.Detail = "not loaded: a docker container cannot reach another on the same network through a port published on the node's address (by name or container address it can; pods and host ports are not affected)"
	c.Fix = "sudo modprobe br_netfilter (at every boot: echo br_netfilter | sudo tee /etc/modules-load.d/br_netfilter.conf)"
	return c
}
