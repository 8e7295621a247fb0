package netstack

import (
	"fmt"
	"net"
	"net/netip"
	"os"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Opaque keys of the driver message that carry the namespace's IPv6, where
// the host has it (RootlessKit's message has IPv4 fields only).
const (
	opaqueGuest6   = "unetes.ipv6-address" // address/prefix length
	opaqueGateway6 = "unetes.ipv6-gateway"
)

// configureIPv6 gives the TAP device dev the address guest (with its prefix
// length) and the namespace a default IPv6 route via gateway. IPv6 is turned
// on for dev only: `all` stays off, which kube-proxy reads to run one
// (IPv4) proxier. No duplicate address detection (the NAT is the only
// other node) and no router advertisements (the route is static). The link
// comes up here, while the TAP is open (its carrier is on): RootlessKit
// adds IPv4 to it next.
func configureIPv6(dev string, guest netip.Prefix, gateway netip.Addr) error {
	for key, val := range map[string]string{"disable_ipv6": "0", "accept_dad": "0", "accept_ra": "0"} {
		if err := os.WriteFile("/proc/sys/net/ipv6/conf/"+dev+"/"+key, []byte(val+"\n"), 0o644); err != nil {
			return fmt.Errorf("ipv6 on %s: %w", dev, err)
		}
	}
	link, err := netlink.LinkByName(dev)
	if err != nil {
		return fmt.Errorf("ipv6: %w", err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("ipv6: bring %s up: %w", dev, err)
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: guest.Addr().AsSlice(), Mask: net.CIDRMask(guest.Bits(), 128)}, Flags: unix.IFA_F_NODAD}
	if err := netlink.AddrAdd(link, addr); err != nil {
		return fmt.Errorf("ipv6: address %s on %s: %w", guest, dev, err)
	}
	route := &netlink.Route{LinkIndex: link.Attrs().Index, Gw: gateway.AsSlice(), Family: netlink.FAMILY_V6}
	if err := netlink.RouteAdd(route); err != nil {
		return fmt.Errorf("ipv6: default route via %s: %w", gateway, err)
	}
	return nil
}
