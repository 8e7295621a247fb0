// Package hostaddr finds this host's own non-loopback IPv4 (and IPv6)
// address: what a namespace reaches through the NAT without special
// permission. The
// end-to-end tests and the benchmark both target it.
package hostaddr

import (
	"errors"
	"net"
)

// IPv4 returns the first IPv4 address of an up, non-loopback interface.
func IPv4() (net.IP, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	for _, i := range ifs {
		if i.Flags&net.FlagUp == 0 || i.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, _ := i.Addrs()
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && !ipn.IP.IsLinkLocalUnicast() {
				return ipn.IP.To4(), nil
			}
		}
	}
	return nil, errors.New("this host has no non-loopback IPv4 address to target")
}

// IPv6 returns the first global IPv6 address of an up, non-loopback
// interface (a ULA counts: it is what the host itself is reached at).
func IPv6() (net.IP, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	for _, i := range ifs {
		if i.Flags&net.FlagUp == 0 || i.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, _ := i.Addrs()
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() == nil && ipn.IP.IsGlobalUnicast() {
				return ipn.IP, nil
			}
		}
	}
	return nil, errors.New("this host has no global IPv6 address")
}
