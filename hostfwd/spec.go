package hostfwd

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/rootless-containers/rootlesskit/v3/pkg/port"
)

// DefaultHostIP is where a forward listens unless another address is given.
var DefaultHostIP = netip.MustParseAddr("127.0.0.1")

// Spec is one forward: HostIP:HostPort on the host to Port inside.
type Spec struct {
	HostIP   netip.Addr
	HostPort uint16
	Port     uint16
	Proto    string // "tcp" or "udp"
	// To is the address inside that Port belongs to: a Service's cluster
	// IP, the node's address. Zero means the namespace's own 127.0.0.1.
	To netip.Addr
	// Service, when set ("namespace/name"), is what a user forward targets:
	// Port is that Service's port and To its cluster IP, looked up at start
	// and whenever the Service changes.
	Service string
}

// Key names a forward on the host side, which is what must be unique.
type Key struct {
	HostIP   netip.Addr
	HostPort uint16
	Proto    string
}

// Key returns the host side of s.
func (s Spec) Key() Key { return Key{s.HostIP, s.HostPort, s.Proto} }

// String formats s so that ParseSpec reads it back.
func (s Spec) String() string {
	return fmt.Sprintf("%s:%d/%s", hostPart(s.HostIP, s.HostPort), s.Port, s.Proto)
}

// Target says where s leads inside, for people.
func (s Spec) Target() string {
	switch {
	case s.Service != "":
		return fmt.Sprintf("Service %s port %d", s.Service, s.Port)
	case s.To.IsValid():
		return fmt.Sprintf("%s:%d", s.To, s.Port)
	}
	return fmt.Sprintf("port %d", s.Port)
}

// String formats k so that ParseKey reads it back.
func (k Key) String() string {
	return fmt.Sprintf("%s/%s", hostPart(k.HostIP, k.HostPort), k.Proto)
}

func hostPart(ip netip.Addr, p uint16) string {
	if ip.Is6() {
		return fmt.Sprintf("[%s]:%d", ip, p)
	}
	return fmt.Sprintf("%s:%d", ip, p)
}

// ErrSpecSyntax is wrapped by every parse error.
var ErrSpecSyntax = errors.New("malformed forward")

const specHelp = "expected [IP:]HOSTPORT:PORT[/tcp|/udp], e.g. 8080:80 or 0.0.0.0:8053:53/udp"
const keyHelp = "expected [IP:]HOSTPORT[/tcp|/udp], e.g. 8080 or 127.0.0.1:8053/udp"

// ParseSpec reads [IP:]HOSTPORT:PORT[/tcp|/udp]. IPv6 addresses go in brackets.
func ParseSpec(s string) (Spec, error) {
	body, proto, err := splitProto(s)
	if err != nil {
		return Spec{}, fmt.Errorf("%w %q: %v; %s", ErrSpecSyntax, clip(s), err, specHelp)
	}
	i := strings.LastIndexByte(body, ':')
	if i < 0 {
		return Spec{}, fmt.Errorf("%w %q: no target port; %s", ErrSpecSyntax, clip(s), specHelp)
	}
	ip, hp, err := parseHost(body[:i])
	if err != nil {
		return Spec{}, fmt.Errorf("%w %q: %v; %s", ErrSpecSyntax, clip(s), err, specHelp)
	}
	p, err := parsePort(body[i+1:])
	if err != nil {
		return Spec{}, fmt.Errorf("%w %q: target %v; %s", ErrSpecSyntax, clip(s), err, specHelp)
	}
	return Spec{HostIP: ip, HostPort: hp, Port: p, Proto: proto}, nil
}

// ParseKey reads [IP:]HOSTPORT[/tcp|/udp], as `forward --remove` takes it.
func ParseKey(s string) (Key, error) {
	body, proto, err := splitProto(s)
	if err != nil {
		return Key{}, fmt.Errorf("%w %q: %v; %s", ErrSpecSyntax, clip(s), err, keyHelp)
	}
	ip, hp, err := parseHost(body)
	if err != nil {
		return Key{}, fmt.Errorf("%w %q: %v; %s", ErrSpecSyntax, clip(s), err, keyHelp)
	}
	return Key{ip, hp, proto}, nil
}

func splitProto(s string) (body, proto string, err error) {
	body, proto, found := strings.Cut(s, "/")
	if !found {
		return s, "tcp", nil
	}
	switch proto {
	case "tcp", "udp":
		return body, proto, nil
	}
	return "", "", fmt.Errorf("protocol %q is neither tcp nor udp", clip(proto))
}

// parseHost reads HOSTPORT, IP:HOSTPORT or [IPv6]:HOSTPORT.
func parseHost(s string) (netip.Addr, uint16, error) {
	ip := DefaultHostIP
	portStr := s
	if strings.HasPrefix(s, "[") {
		end := strings.Index(s, "]:")
		if end < 0 {
			return netip.Addr{}, 0, errors.New("an IPv6 address must be written [ADDR]:PORT")
		}
		a, err := netip.ParseAddr(s[1:end])
		if err != nil || !a.Is6() || a.Zone() != "" {
			return netip.Addr{}, 0, fmt.Errorf("bad IPv6 address %q", clip(s[1:end]))
		}
		ip, portStr = a, s[end+2:]
	} else if i := strings.LastIndexByte(s, ':'); i >= 0 {
		a, err := netip.ParseAddr(s[:i])
		if err != nil || !a.Is4() {
			return netip.Addr{}, 0, fmt.Errorf("bad IPv4 address %q", clip(s[:i]))
		}
		ip, portStr = a, s[i+1:]
	}
	p, err := parsePort(portStr)
	if err != nil {
		return netip.Addr{}, 0, fmt.Errorf("host %v", err)
	}
	return ip, p, nil
}

// clip shortens what a user typed for an error message: a long input is
// shown once, by its start.
func clip(s string) string {
	const max = 40
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}

func parsePort(s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 || strconv.FormatUint(n, 10) != s {
		return 0, fmt.Errorf("port %q is not a number from 1 to 65535", clip(s))
	}
	return uint16(n), nil
}

// ParseService reads svc/NAME[.NAMESPACE] (or service/…), as `unetes
// forward svc/web 8080:80` takes it, into "namespace/name".
func ParseService(s string) (string, error) {
	const help = "expected svc/NAME or svc/NAME.NAMESPACE, e.g. svc/web or svc/web.shop"
	kind, ref, ok := strings.Cut(s, "/")
	if !ok || (kind != "svc" && kind != "service" && kind != "services") {
		return "", fmt.Errorf("%w %q: %s", ErrSpecSyntax, clip(s), help)
	}
	name, ns, _ := strings.Cut(ref, ".")
	if ns == "" {
		ns = "default"
	}
	for _, part := range []string{name, ns} {
		if !dnsLabel(part) {
			return "", fmt.Errorf("%w %q: %q is not a Kubernetes name (lower-case letters, digits and '-'); %s", ErrSpecSyntax, clip(s), clip(part), help)
		}
	}
	return ns + "/" + name, nil
}

// dnsLabel reports whether s is an RFC 1123 label, as Service and
// namespace names are.
func dnsLabel(s string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// rkSpec converts to RootlessKit's spec. The target address is always set:
// left empty, RootlessKit would dial the host address inside.
func (s Spec) rkSpec() port.Spec {
	to := "127.0.0.1"
	if s.To.IsValid() {
		to = s.To.String()
	}
	return port.Spec{Proto: s.Proto, ParentIP: s.HostIP.String(), ParentPort: int(s.HostPort), ChildPort: int(s.Port), ChildIP: to}
}

// FromRK converts RootlessKit's spec (as rootlessctl sends it). An empty host
// address means 127.0.0.1 here, not RootlessKit's 0.0.0.0: ask for 0.0.0.0
// to listen on every address. An empty or 127.0.0.1 target address is the
// namespace's loopback (To stays zero).
func FromRK(p port.Spec) (Spec, error) {
	s := Spec{HostIP: DefaultHostIP}
	switch p.Proto {
	case "tcp", "tcp4", "tcp6":
		s.Proto = "tcp"
	case "udp", "udp4", "udp6":
		s.Proto = "udp"
	default:
		return Spec{}, fmt.Errorf("%w: protocol %q is neither tcp nor udp", ErrSpecSyntax, clip(p.Proto))
	}
	if p.ParentIP != "" {
		a, err := netip.ParseAddr(p.ParentIP)
		if err != nil {
			return Spec{}, fmt.Errorf("%w: bad host address %q", ErrSpecSyntax, clip(p.ParentIP))
		}
		s.HostIP = a.Unmap()
	}
	if p.ChildIP != "" && p.ChildIP != "127.0.0.1" {
		a, err := netip.ParseAddr(p.ChildIP)
		if err != nil || !a.Is4() {
			return Spec{}, fmt.Errorf("%w: bad target address %q: an IPv4 address inside the namespace", ErrSpecSyntax, clip(p.ChildIP))
		}
		s.To = a
	}
	if p.ParentPort < 1 || p.ParentPort > 65535 || p.ChildPort < 1 || p.ChildPort > 65535 {
		return Spec{}, fmt.Errorf("%w: ports must be from 1 to 65535", ErrSpecSyntax)
	}
	s.HostPort, s.Port = uint16(p.ParentPort), uint16(p.ChildPort)
	return s, nil
}
