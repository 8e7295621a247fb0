package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// hostNet is a made-up network of "hosts" on this machine: one network
// namespace per host, each with a veth pair to a bridge in a hub namespace
// and an address of 192.168.77.0/24; nothing routes off the machine. The
// test user's unetes runs inside a host's namespace (nsenter, then the
// user's own namespaces), so every instance has its own host address and
// ports, as on separate machines.
type hostNet struct {
	hub   string
	hosts []string // namespace names
	addrs []string // their addresses
}

func newHostNet(t *testing.T, n int) *hostNet {
	t.Helper()
	if os.Getuid() != 0 {
		t.Fatal("this test makes network namespaces and needs the suite to run as root (make test runs it so)")
	}
	id := fmt.Sprintf("u7s%d", os.Getpid()%100000)
	h := &hostNet{hub: id + "-hub"}
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	t.Cleanup(func() {
		for _, ns := range append(h.hosts, h.hub) {
			exec.Command("ip", "netns", "del", ns).Run()
		}
	})
	ip("netns", "add", h.hub)
	ip("-n", h.hub, "link", "add", "br0", "type", "bridge")
	ip("-n", h.hub, "link", "set", "br0", "up")
	for i := 0; i < n; i++ {
		ns, addr := fmt.Sprintf("%s-h%d", id, i), fmt.Sprintf("192.168.77.%d", i+1)
		ip("netns", "add", ns)
		h.hosts, h.addrs = append(h.hosts, ns), append(h.addrs, addr)
		ip("-n", ns, "link", "set", "lo", "up")
		veth := fmt.Sprintf("v%d", i)
		ip("link", "add", veth, "netns", h.hub, "type", "veth", "peer", "name", "eth0", "netns", ns)
		ip("-n", h.hub, "link", "set", veth, "master", "br0", "up")
		ip("-n", ns, "addr", "add", addr+"/24", "dev", "eth0")
		ip("-n", ns, "link", "set", "eth0", "up")
	}
	return h
}

// on is u on host i: its commands run in that host's network namespace.
func (h *hostNet) on(u *testUser, i int) *testUser {
	c := *u
	c.netns = h.hosts[i]
	return &c
}
