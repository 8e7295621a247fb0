// Package hostnet makes a made-up network of "hosts" on this machine for
// the multi-node tests and bench: one network namespace per host, each with
// a veth pair to a bridge in a hub namespace and an address of
// 192.168.77.0/24; nothing routes off the machine. A user's unetes runs
// inside a host's namespace (Command: nsenter, then the user's own
// namespaces), so every instance has its own host address and ports, as on
// separate machines. It needs root.
package hostnet

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// Net is the hub and its hosts.
type Net struct {
	Hub   string
	Hosts []string // namespace names
	Addrs []string // their addresses
}

// New makes n hosts; id keeps the namespaces' names apart from other
// runs'. On error what was made is removed.
func New(id string, n int) (*Net, error) {
	if os.Getuid() != 0 {
		return nil, fmt.Errorf("making network namespaces needs root")
	}
	h := &Net{Hub: id + "-hub"}
	ip := func(args ...string) error {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	steps := [][]string{{"netns", "add", h.Hub}, {"-n", h.Hub, "link", "add", "br0", "type", "bridge"}, {"-n", h.Hub, "link", "set", "br0", "up"}}
	for i := 0; i < n; i++ {
		ns, addr, veth := fmt.Sprintf("%s-h%d", id, i), fmt.Sprintf("192.168.77.%d", i+1), fmt.Sprintf("v%d", i)
		h.Hosts, h.Addrs = append(h.Hosts, ns), append(h.Addrs, addr)
		steps = append(steps,
			[]string{"netns", "add", ns},
			[]string{"-n", ns, "link", "set", "lo", "up"},
			[]string{"link", "add", veth, "netns", h.Hub, "type", "veth", "peer", "name", "eth0", "netns", ns},
			[]string{"-n", h.Hub, "link", "set", veth, "master", "br0", "up"},
			[]string{"-n", ns, "addr", "add", addr + "/24", "dev", "eth0"},
			[]string{"-n", ns, "link", "set", "eth0", "up"})
	}
	for _, s := range steps {
		if err := ip(s...); err != nil {
			h.Close()
			return nil, err
		}
	}
	return h, nil
}

// Close removes the namespaces.
func (h *Net) Close() {
	for _, ns := range append(h.Hosts, h.Hub) {
		exec.Command("ip", "netns", "del", ns).Run()
	}
}

// Command is name with args run in host ns's network namespace as uid:gid
// (nsenter enters as root, drops the supplementary groups, takes the IDs
// and execs in place).
func Command(ns string, uid, gid int, name string, args ...string) *exec.Cmd {
	return exec.Command("nsenter", append([]string{"--net=/run/netns/" + ns, "-F",
		"-S", strconv.Itoa(uid), "-G", strconv.Itoa(gid), "--", name}, args...)...)
}
