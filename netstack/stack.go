package netstack

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/arp"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
)

const nicID tcpip.NICID = 1

// gatewayMAC is the link address the namespace sees for 10.0.2.2 and 10.0.2.3.
const gatewayMAC = tcpip.LinkAddress("\x52\x55\x0a\x00\x02\x02")

// Stack is a running NAT. Create it with New, stop it with Close.
type Stack struct {
	cfg    Config
	log    *slog.Logger
	s      *stack.Stack
	link   stack.LinkEndpoint
	dns    *dnsRelay
	syns   *synTable // SYNs of handshakes being dialled
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu    sync.Mutex
	conns map[io.Closer]struct{} // both ends of live flows, closed by Close
	done  bool
	flows atomic.Int64 // live TCP and UDP flows (one per guest connection)
}

// New attaches a gVisor stack to linkFD, which carries ethernet frames (a TAP
// device opened with IFF_TAP|IFF_NO_PI, or one end of a socketpair in tests).
// The Stack does not own linkFD; the caller closes it after Close returns.
func New(cfg Config, linkFD int, log *slog.Logger) (*Stack, error) {
	link, err := newTAPLink(linkFD, uint32(cfg.MTU), gatewayMAC, hasVnetHdr(linkFD))
	if err != nil {
		return nil, fmt.Errorf("attach link endpoint to fd %d: %w", linkFD, err)
	}
	return newOnLink(cfg, link, log)
}

func newOnLink(cfg Config, link stack.LinkEndpoint, log *slog.Logger) (*Stack, error) {
	nets := []stack.NetworkProtocolFactory{ipv4.NewProtocol, arp.NewProtocol}
	transports := []stack.TransportProtocolFactory{tcp.NewProtocol, udp.NewProtocol, icmp.NewProtocol4}
	if cfg.Gateway6.IsValid() {
		nets = append(nets, ipv6.NewProtocol)
		transports = append(transports, icmp.NewProtocol6)
	}
	s := stack.New(stack.Options{NetworkProtocols: nets, TransportProtocols: transports, HandleLocal: false})
	ctx, cancel := context.WithCancel(context.Background())
	st := &Stack{cfg: cfg, log: log, s: s, link: link, ctx: ctx, cancel: cancel,
		conns: map[io.Closer]struct{}{}, dns: newDNSRelay(cfg.DNSUpstreams, cfg.DNSTimeout),
		syns: newSYNTable(2*cfg.MaxInFlight, 2*cfg.ConnectTimeout)}
	if err := st.configure(); err != nil {
		s.Close()
		cancel()
		return nil, err
	}
	return st, nil
}

func (st *Stack) configure() error {
	s := st.s
	if err := tuneTCP(s); err != nil {
		return err
	}
	if e := s.CreateNIC(nicID, st.link); e != nil {
		return fmt.Errorf("create NIC: %s", e)
	}
	// Promiscuous + spoofing: accept packets for any destination and answer
	// from any source, which is what lets the NAT terminate every flow.
	if e := s.SetPromiscuousMode(nicID, true); e != nil {
		return fmt.Errorf("set promiscuous mode: %s", e)
	}
	if e := s.SetSpoofing(nicID, true); e != nil {
		return fmt.Errorf("set spoofing: %s", e)
	}
	// The NAT's own addresses answer ARP and neighbour solicitations (the
	// namespace's default routes lead to the gateways); every other
	// destination is accepted promiscuously.
	own := []netip.Prefix{netip.PrefixFrom(st.cfg.Gateway, st.cfg.Subnet.Bits()), netip.PrefixFrom(st.cfg.DNS, st.cfg.Subnet.Bits())}
	routes := []tcpip.Route{{Destination: header.IPv4EmptySubnet, NIC: nicID}}
	if g := st.cfg.Gateway6; g.IsValid() {
		own = append(own, netip.PrefixFrom(g, st.cfg.Subnet6.Bits()))
		routes = append(routes, tcpip.Route{Destination: header.IPv6EmptySubnet, NIC: nicID})
	}
	for _, p := range own {
		pa := tcpip.ProtocolAddress{Protocol: ipv4.ProtocolNumber,
			AddressWithPrefix: tcpip.AddressWithPrefix{Address: tcpip.AddrFromSlice(p.Addr().AsSlice()), PrefixLen: p.Bits()}}
		if p.Addr().Is6() {
			pa.Protocol = ipv6.ProtocolNumber
		}
		if e := s.AddProtocolAddress(nicID, pa, stack.AddressProperties{}); e != nil {
			return fmt.Errorf("add address %s: %s", p.Addr(), e)
		}
	}
	s.SetRouteTable(routes)
	tf := tcp.NewForwarder(s, 0, st.cfg.MaxInFlight, st.handleTCP)
	s.SetTransportProtocolHandler(tcp.ProtocolNumber, st.syns.withSYNs(tf.HandlePacket))
	uf := udp.NewForwarder(s, st.handleUDP)
	s.SetTransportProtocolHandler(udp.ProtocolNumber, uf.HandlePacket)
	s.SetTransportProtocolHandler(icmp.ProtocolNumber4, st.handleICMP)
	if st.cfg.Gateway6.IsValid() {
		s.SetTransportProtocolHandler(icmp.ProtocolNumber6, st.handleICMP6)
	}
	return nil
}

func tuneTCP(s *stack.Stack) error {
	sack := tcpip.TCPSACKEnabled(true)
	rcv := tcpip.TCPReceiveBufferSizeRangeOption{Min: 4 << 10, Default: 4 << 20, Max: 16 << 20}
	snd := tcpip.TCPSendBufferSizeRangeOption{Min: 4 << 10, Default: 4 << 20, Max: 16 << 20}
	mod := tcpip.TCPModerateReceiveBufferOption(true)
	for _, o := range []tcpip.SettableTransportProtocolOption{&sack, &rcv, &snd, &mod} {
		if e := s.SetTransportProtocolOption(tcp.ProtocolNumber, o); e != nil {
			return fmt.Errorf("set TCP option %T: %s", o, e)
		}
	}
	return nil
}

// track registers a live flow so Close can end it; it reports false when the
// stack is already closing.
func (st *Stack) track(c io.Closer) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.done {
		return false
	}
	st.conns[c] = struct{}{}
	return true
}

func (st *Stack) untrack(c io.Closer) {
	st.mu.Lock()
	delete(st.conns, c)
	st.mu.Unlock()
}

// OpenFlows is the number of TCP and UDP flows being relayed now.
func (st *Stack) OpenFlows() int64 { return st.flows.Load() }

// Close ends every flow, stops the stack and waits for all goroutines.
func (st *Stack) Close() error {
	st.mu.Lock()
	if st.done {
		st.mu.Unlock()
		return nil
	}
	st.done = true
	conns := st.conns
	st.conns = nil
	st.mu.Unlock()
	st.cancel()
	for c := range conns {
		c.Close()
	}
	st.wg.Wait()
	st.s.Close()
	st.link.Attach(nil)
	st.s.Wait()
	st.link.Wait()
	return nil
}
