package e2e

import (
	"fmt"
	"os"
	"testing"

	"github.com/unetes/unetes/testing/internal/hostnet"
)

// hostNet is a made-up network of hosts on this machine (hostnet): each
// instance in its own network namespace with its own address.
type hostNet struct {
	*hostnet.Net
}

func newHostNet(t *testing.T, n int) *hostNet {
	t.Helper()
	if os.Getuid() != 0 {
		t.Fatal("this test makes network namespaces and needs the suite to run as root (make test runs it so)")
	}
	h, err := hostnet.New(fmt.Sprintf("u7s%d", os.Getpid()%100000), n)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return &hostNet{h}
}

// on is u on host i: its commands run in that host's network namespace.
func (h *hostNet) on(u *testUser, i int) *testUser {
	c := *u
	c.netns = h.Hosts[i]
	return &c
}
