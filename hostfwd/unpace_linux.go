package hostfwd

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strconv"

	"github.com/rootless-containers/rootlesskit/v3/pkg/port"
	"golang.org/x/sys/unix"
)

// addPort starts s in the port driver. Where Config.UnpaceLoopback is set
// (the host's default congestion control paces: BBR), a TCP forward that
// listens on a loopback address serves only this machine's programs, so
// its listening socket gets reno, which every accepted connection
// inherits. The namespace's hop already does not pace; this is the host's
// hop of a download (the forward sends to the host client). A forward on
// another address keeps the host's default: its clients may be across a
// real network.
func (m *Manager) addPort(ctx context.Context, s Spec) (*port.Status, error) {
	st, err := m.drv.AddPort(ctx, s.rkSpec())
	if err == nil && m.unpace && s.Proto == "tcp" && s.HostIP.IsLoopback() {
		if err := unpaceListener(s.HostIP, int(s.HostPort)); err != nil {
			m.log.Debug("forward keeps the host's congestion control", "forward", s.String(), "err", err)
		}
	}
	return st, err
}

// unpaceListener sets reno on this process's TCP socket listening on
// addr:port (RootlessKit's driver opened it and keeps it to itself). Best
// effort: it changes only speed.
func unpaceListener(addr netip.Addr, p int) error {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return err
	}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if on, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); err != nil || on != 1 {
			continue
		}
		// Go listens with MPTCP where the kernel has it; TCP options
		// apply to its subflows.
		if proto, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PROTOCOL); err != nil || proto != unix.IPPROTO_TCP && proto != unix.IPPROTO_MPTCP {
			continue
		}
		sa, err := unix.Getsockname(fd)
		if err != nil || !sameAddr(sa, addr, p) {
			continue
		}
		return unix.SetsockoptString(fd, unix.IPPROTO_TCP, unix.TCP_CONGESTION, "reno")
	}
	return fmt.Errorf("no listener on %s", netip.AddrPortFrom(addr, uint16(p)))
}

func sameAddr(sa unix.Sockaddr, addr netip.Addr, p int) bool {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return sa.Port == p && netip.AddrFrom4(sa.Addr) == addr.Unmap()
	case *unix.SockaddrInet6:
		return sa.Port == p && netip.AddrFrom16(sa.Addr).Unmap() == addr.Unmap()
	}
	return false
}
