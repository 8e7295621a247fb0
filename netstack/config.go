package netstack

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
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
)

// Args are the user's choices, as given on the command line.
type Args struct {
	MTU               int  // 0 means DefaultMTU
	AllowHostLoopback bool // let the gateway address reach the host's 127.0.0.1
}

// Config is the resolved configuration of the NAT.
type Config struct {
	MTU               int
	Subnet            netip.Prefix
	Guest             netip.Addr // address of the namespace's interface
	Gateway           netip.Addr // address of the NAT, default route of the namespace
	DNS               netip.Addr // DNS relay address
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
