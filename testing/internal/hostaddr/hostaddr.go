// Package hostaddr finds this host's own non-loopback IPv4 (and IPv6)
// address: what a namespace reaches through the NAT without special
// permission. The end-to-end tests and the benchmark both target it.
package hostaddr

import (
	"errors"
	"net"
)

// IPv4 returns the first IPv4 address of an up, non-loopback interface.
func IPv4() (net.IP, error) {
	ip := first(func(ip net.IP) bool { return ip.To4() != nil && !ip.IsLinkLocalUnicast() })
	if ip == nil {
		return nil, errors.New("this host has no non-loopback IPv4 address to target")
	}
	return ip.To4(), nil
}

// IPv6 returns the first global IPv6 address of an up, non-loopback
// interface (a ULA counts: it is what the host itself is reached at).
func IPv6() (net.IP, error) {
	ip := first(func(ip net.IP) bool { return ip.To4() == nil && ip.IsGlobalUnicast() })
	if ip == nil {
		return nil, errors.New("this host has no global IPv6 address")
	}
	return ip, nil
}

// first is the first address of an up, non-loopback interface that match
// accepts, or nil.
func first(match func(net.IP) bool) net.IP {
	ifs, _ := net.Interfaces()
	for _, i := range ifs {
		if i.Flags&net.FlagUp == 0 || i.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, _ := i.Addrs()
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && match(ipn.IP) {
				return ipn.IP
			}
		}
	}
	return nil
}
