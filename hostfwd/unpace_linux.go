package hostfwd

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strconv"

	"github.com/rootless-containers/rootlesskit/v3/pkg/port"
	"golang.org/x/sys/unix"
)

// unpacedDriver is the port driver with one change: a TCP forward that
// listens on a loopback address serves only this machine's programs, so
// where the host's default congestion control paces (BBR; Config's
// UnpaceLoopback) its listening socket gets reno, which every accepted
// connection inherits. The namespace's hop already does not pace; this is
// the host's hop of a download (the forward sends to the host client).
// A forward on another address keeps the host's default: its clients may
// be across a real network.
type unpacedDriver struct {
	port.ParentDriver
	on  bool
	log *slog.Logger
}

func (d unpacedDriver) AddPort(ctx context.Context, spec port.Spec) (*port.Status, error) {
	st, err := d.ParentDriver.AddPort(ctx, spec)
	if err != nil || !d.on || (spec.Proto != "tcp" && spec.Proto != "tcp4" && spec.Proto != "tcp6") {
		return st, err
	}
	if a, perr := netip.ParseAddr(spec.ParentIP); perr == nil && a.IsLoopback() {
		if err := unpaceListener(a, spec.ParentPort); err != nil {
			d.log.Debug("forward keeps the host's congestion control", "port", spec.ParentPort, "err", err)
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
