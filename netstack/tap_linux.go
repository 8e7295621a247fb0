package netstack

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// TAPName is the interface the namespace gets.
const TAPName = "tap0"

// openTAP creates the TAP device in the current network namespace and returns
// its file. The frames carry no packet-information header.
//
// IFF_VNET_HDR is deliberately not set: gVisor's fdbased endpoint only
// handles virtio-net headers (host GSO) on socket fds, not on a TAP fd, so
// the large MTU is what keeps the per-packet cost low.
func openTAP(name string) (*os.File, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM) {
			return nil, fmt.Errorf("open /dev/net/tun: %w (fix: sudo chmod 0666 /dev/net/tun, see `unetes doctor`)", err)
		}
		return nil, fmt.Errorf("open /dev/net/tun: %w (fix: sudo modprobe tun)", err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("tap name %q: %w", name, err)
	}
	ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("create TAP device %s: %w", name, err)
	}
	return os.NewFile(uintptr(fd), "/dev/net/tun:"+name), nil
}
