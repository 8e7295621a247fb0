package netstack

import "net/netip"

// Verdict says what the NAT does with a new flow from the namespace.
type Verdict int

const (
	// Refuse rejects the flow (TCP RST, ICMP port unreachable for UDP).
	Refuse Verdict = iota
	// Forward re-originates the flow from a host socket to Target.
	Forward
	// ServeDNS answers the flow with the DNS relay.
	ServeDNS
)

func (v Verdict) String() string {
	switch v {
	case Forward:
		return "forward"
	case ServeDNS:
		return "dns"
	default:
		return "refuse"
	}
}

// Route decides what happens to a flow addressed to dst, and where a forwarded
// flow goes on the host. It is the whole NAT policy, kept pure for testing.
func (c Config) Route(dst netip.AddrPort) (Verdict, netip.AddrPort) {
	a := dst.Addr().Unmap()
	switch {
	case a == c.DNS:
		if dst.Port() == 53 {
			return ServeDNS, dst
		}
		return Refuse, dst
	case a == c.Gateway:
		if !c.AllowHostLoopback {
			return Refuse, dst
		}
		return Forward, netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), dst.Port())
	case a.Is6() && !c.Gateway6.IsValid():
		return Refuse, dst // the host has no IPv6: the namespace has none either
	case a == c.Gateway6:
		if !c.AllowHostLoopback {
			return Refuse, dst
		}
		return Forward, netip.AddrPortFrom(netip.IPv6Loopback(), dst.Port())
	case c.Subnet.Contains(a), c.Subnet6.IsValid() && c.Subnet6.Contains(a):
		return Refuse, dst // the namespace's own subnet is never sent out
	case !a.IsValid(), a.IsLoopback(), a.IsUnspecified(), a.IsMulticast(),
		a.IsLinkLocalUnicast(), a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return Refuse, dst
	}
	return Forward, netip.AddrPortFrom(a, dst.Port())
}
