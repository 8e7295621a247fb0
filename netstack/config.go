package netstack

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Defaults of the virtual network, the ones slirp4netns users know.
const (
	DefaultMTU     = 65520
	MinMTU         = 1280
	defaultSubnet  = "10.0.2.0/24"
	defaultGuest   = "10.0.2.100"
	defaultGateway = "10.0.2.2"
	defaultDNS     = "10.0.2.3"
	// IPv6, when the host has it: a ULA prefix (RFC 4193) with the same
	// host numbers. slirp4netns' fd00::/64 is left alone: it is a common
	// prefix of hosts' own networks (the CI host's among them).
	defaultSubnet6  = "fd75:6e65:7465::/64"
	defaultGuest6   = "fd75:6e65:7465::100"
	defaultGateway6 = "fd75:6e65:7465::2"
)

// Args are the user's choices, as given on the command line.
type Args struct {
	MTU               int  // 0 means DefaultMTU
	AllowHostLoopback bool // let the gateway address reach the host's 127.0.0.1
	HostIPv6          bool // the host has IPv6 connectivity (HostHasIPv6): the namespace gets it too
}

// Config is the resolved configuration of the NAT.
type Config struct {
	MTU     int
	Subnet  netip.Prefix
	Guest   netip.Addr // address of the namespace's interface
	Gateway netip.Addr // address of the NAT, default route of the namespace
	DNS     netip.Addr // DNS relay address
	// IPv6, where the host has it (else invalid): the namespace's address
	// in Subnet6 and its default route via Gateway6. DNS stays the IPv4
	// relay, which answers AAAA queries too.
	Subnet6           netip.Prefix
	Guest6, Gateway6  netip.Addr
	AllowHostLoopback bool
	DNSUpstreams      []netip.AddrPort // host resolvers, in order
	ConnectTimeout    time.Duration    // outbound TCP dial timeout
	UDPIdleTimeout    time.Duration    // a UDP flow without traffic this long is closed
	DNSTimeout        time.Duration    // per upstream attempt
	MaxInFlight       int              // TCP handshakes being dialled at once

	// dialTCP replaces the host's TCP dial in tests, which cannot make the
	// host's kernel fail a dial in every way; nil is net.Dialer's.
	dialTCP func(ctx context.Context, address string) (net.Conn, error)
}

// ErrNoResolvers is returned when the host's resolv.conf names no usable nameserver.
var ErrNoResolvers = errors.New("no nameserver in the host's resolv.conf")

// Resolve turns Args and the content of the host's resolv.conf into a Config.
// It is pure: the caller reads the file.
func Resolve(a Args, resolvConf []byte) (Config, error) {
	c := Config{
		MTU:               a.MTU,
		Subnet:            netip.MustParsePrefix(defaultSubnet),
		Guest:             netip.MustParseAddr(defaultGuest),
		Gateway:           netip.MustParseAddr(defaultGateway),
		DNS:               netip.MustParseAddr(defaultDNS),
		AllowHostLoopback: a.AllowHostLoopback,
		ConnectTimeout:    30 * time.Second,
		UDPIdleTimeout:    60 * time.Second,
		DNSTimeout:        2 * time.Second,
		MaxInFlight:       4096,
	}
	if a.HostIPv6 {
		c.Subnet6 = netip.MustParsePrefix(defaultSubnet6)
		c.Guest6 = netip.MustParseAddr(defaultGuest6)
		c.Gateway6 = netip.MustParseAddr(defaultGateway6)
	}
	if c.MTU == 0 {
		c.MTU = DefaultMTU
	}
	if c.MTU < MinMTU || c.MTU > DefaultMTU {
		return Config{}, fmt.Errorf("mtu %d out of range: use a value from %d to %d", c.MTU, MinMTU, DefaultMTU)
	}
	ups, err := ParseResolvConf(resolvConf)
	if err != nil {
		return Config{}, err
	}
	c.DNSUpstreams = ups
	return c, nil
}

// ParseResolvConf returns the IPv4 and IPv6 nameservers of a resolv.conf, port 53.
// Loopback stub resolvers (127.0.0.53 of systemd-resolved, 127.0.0.1 of dnsmasq)
// are kept: the NAT runs in the host's network namespace and reaches them.
func ParseResolvConf(b []byte) ([]netip.AddrPort, error) {
	var out []netip.AddrPort
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || f[0] != "nameserver" {
			continue
		}
		a, err := netip.ParseAddr(f[1])
		if err != nil {
			continue // malformed entries are skipped, like libc does
		}
		out = append(out, netip.AddrPortFrom(a.Unmap(), 53))
	}
	if len(out) == 0 {
		return nil, ErrNoResolvers
	}
	return out, nil
}

// HostHasIPv6 reports whether the host has IPv6 connectivity, from the content of
// its /proc/net/ipv6_route: a default route (::/0) on an interface other than
// lo that is not a reject route. Pure.
func HostHasIPv6(ipv6Route []byte) bool {
	const rtfReject = 0x200
	for _, line := range strings.Split(string(ipv6Route), "\n") {
		// dst plen src plen nexthop metric refcnt use flags iface
		f := strings.Fields(line)
		if len(f) != 10 || f[0] != strings.Repeat("0", 32) || f[1] != "00" || f[9] == "lo" {
			continue
		}
		flags, err := strconv.ParseUint(f[8], 16, 32)
		if err == nil && flags&rtfReject == 0 {
			return true
		}
	}
	return false
}
