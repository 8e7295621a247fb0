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
// its file. Frames carry no packet-information header but a virtio-net
// header, and the namespace may leave TCP and UDP checksums partial
// (TUN_F_CSUM): the NAT never checks them (tapLink), so nobody sums a
// payload that only crosses this machine's memory. With TSO the namespace
// hands over TCP segments of up to 64 KiB whatever the MTU (pods' traffic,
// or a small --mtu), which gVisor takes whole.
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
	ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI | unix.IFF_VNET_HDR)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("create TAP device %s: %w", name, err)
	}
	if err := unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, tunFCsum|tunFTSO4|tunFTSO6); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("offload checksums on TAP device %s: %w", name, err)
	}
	return os.NewFile(uintptr(fd), "/dev/net/tun:"+name), nil
}
