package netstack

import (
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

const pingTimeout = 5 * time.Second

// handleICMP sees the ICMP packets gVisor does not consume itself. Echo
// requests to the gateway and DNS addresses are left to gVisor, which answers
// them; echo requests to forwarded destinations go out through an unprivileged
// ping socket (allowed by the host's net.ipv4.ping_group_range) and the reply
// is written back to the namespace. Everything else is dropped.
func (st *Stack) handleICMP(id stack.TransportEndpointID, pkt *stack.PacketBuffer) bool {
	dst := addrOf(id.LocalAddress)
	if dst == st.cfg.Gateway || dst == st.cfg.DNS {
		return false
	}
	h := header.ICMPv4(pkt.TransportHeader().Slice())
	if len(h) < header.ICMPv4MinimumSize || h.Type() != header.ICMPv4Echo {
		return true
	}
	st.forwardEcho(id, pkt)
	return true
}

// handleICMP6 is handleICMP for IPv6: gVisor's IPv6 layer keeps neighbour
// discovery and hands over echo requests, answering itself for the gateway.
func (st *Stack) handleICMP6(id stack.TransportEndpointID, pkt *stack.PacketBuffer) bool {
	if addrOf(id.LocalAddress) == st.cfg.Gateway6 {
		return false
	}
	h := header.ICMPv6(pkt.TransportHeader().Slice())
	if len(h) < header.ICMPv6EchoMinimumSize || h.Type() != header.ICMPv6EchoRequest {
		return true
	}
	st.forwardEcho(id, pkt)
	return true
}

// forwardEcho sends the guest's echo request pkt on to its destination from a
// ping socket of the host, if the destination is one the NAT forwards to.
func (st *Stack) forwardEcho(id stack.TransportEndpointID, pkt *stack.PacketBuffer) {
	dst := addrOf(id.LocalAddress)
	if v, _ := st.cfg.Route(netip.AddrPortFrom(dst, 0)); v != Forward {
		return
	}
	eth := header.Ethernet(pkt.LinkHeader().Slice())
	if len(eth) < header.EthernetMinimumSize {
		return
	}
	msg := stack.PayloadSince(pkt.TransportHeader())
	echo := append([]byte(nil), msg.AsSlice()...)
	msg.Release()
	req := pingRequest{guestMAC: eth.SourceAddress(), guest: addrOf(id.RemoteAddress), dst: dst, echo: echo}
	st.wg.Add(1)
	go func() {
		defer st.wg.Done()
		st.ping(req)
	}()
}

type pingRequest struct {
	guestMAC tcpip.LinkAddress
	guest    netip.Addr
	dst      netip.Addr
	echo     []byte // ICMP header and payload as the guest sent it
}

// Echo messages of both families share the layout of their first 8 bytes:
// type, code, checksum, identifier, sequence number.
func echoIdent(m []byte) uint16 { return binary.BigEndian.Uint16(m[4:]) }
func echoSeq(m []byte) uint16   { return binary.BigEndian.Uint16(m[6:]) }

func (st *Stack) ping(req pingRequest) {
	c, err := pingSocket(req.dst.Is6())
	if err != nil {
		st.log.Debug("ping not forwarded: the host does not allow ping sockets (net.ipv4.ping_group_range)", "dst", req.dst, "err", err)
		return
	}
	if !st.track(c) {
		c.Close()
		return
	}
	defer st.untrack(c)
	defer c.Close()
	// A ping socket wrapped by the net package is a UDPConn: address it as UDP.
	if _, err := c.WriteTo(req.echo, &net.UDPAddr{IP: req.dst.AsSlice()}); err != nil {
		st.log.Debug("ping send failed", "dst", req.dst, "err", err)
		return
	}
	replyType := uint8(header.ICMPv4EchoReply)
	if req.dst.Is6() {
		replyType = uint8(header.ICMPv6EchoReply)
	}
	c.SetReadDeadline(time.Now().Add(pingTimeout))
	buf := make([]byte, 65536)
	for {
		n, _, err := c.ReadFrom(buf)
		if err != nil {
			return
		}
		r := buf[:n]
		if n < header.ICMPv4MinimumSize || r[0] != replyType || echoSeq(r) != echoSeq(req.echo) {
			continue
		}
		// The kernel replaced the identifier with the socket's; restore the guest's.
		binary.BigEndian.PutUint16(r[4:], echoIdent(req.echo))
		st.writeToGuest(req.guestMAC, req.dst, req.guest, r)
		return
	}
}

// writeToGuest sends an IP packet carrying the ICMP message icmp (of from's
// family; its checksum is filled in here) from the address from to the guest
// at to (link address mac).
func (st *Stack) writeToGuest(mac tcpip.LinkAddress, from, to netip.Addr, icmp []byte) {
	icmp[2], icmp[3] = 0, 0
	proto, l4 := ipv4.ProtocolNumber, header.ICMPv4ProtocolNumber
	if from.Is6() {
		proto, l4 = ipv6.ProtocolNumber, header.ICMPv6ProtocolNumber
	}
	pkt := ipPacket(from, to, l4, len(icmp))
	if from.Is4() {
		header.ICMPv4(icmp).SetChecksum(^checksum.Checksum(icmp, 0))
	} else {
		h := header.ICMPv6(icmp)
		h.SetChecksum(header.ICMPv6Checksum(header.ICMPv6ChecksumParams{Header: h,
			Src: tcpip.AddrFrom16(from.As16()), Dst: tcpip.AddrFrom16(to.As16())}))
	}
	copy(pkt[len(pkt)-len(icmp):], icmp)
	if e := st.s.WritePacketToRemote(nicID, mac, proto, buffer.MakeWithData(pkt)); e != nil {
		st.log.Debug("icmp to the guest not delivered", "err", e)
	}
}

// ipPacket returns an IPv4 or IPv6 packet (by src's family) from src to dst
// carrying proto, its header filled in and n bytes of payload left zero.
func ipPacket(src, dst netip.Addr, proto tcpip.TransportProtocolNumber, n int) []byte {
	if src.Is4() {
		pkt := make([]byte, header.IPv4MinimumSize+n)
		ip := header.IPv4(pkt)
		ip.Encode(&header.IPv4Fields{
			TotalLength: uint16(len(pkt)),
			TTL:         64,
			Protocol:    uint8(proto),
			SrcAddr:     tcpip.AddrFrom4(src.As4()),
			DstAddr:     tcpip.AddrFrom4(dst.As4()),
		})
		ip.SetChecksum(^ip.CalculateChecksum())
		return pkt
	}
	pkt := make([]byte, header.IPv6MinimumSize+n)
	header.IPv6(pkt).Encode(&header.IPv6Fields{
		PayloadLength:     uint16(n),
		TransportProtocol: proto,
		HopLimit:          64,
		SrcAddr:           tcpip.AddrFrom16(src.As16()),
		DstAddr:           tcpip.AddrFrom16(dst.As16()),
	})
	return pkt
}

// portUnreachable tells the guest what the host's kernel told the NAT: no
// socket listens on dst. The guest's kernel finds the socket by the
// addresses and ports quoted (and it then reads ECONNREFUSED, as on the
// host).
func (st *Stack) portUnreachable(guest, dst netip.AddrPort) {
	udp := header.UDP(make([]byte, header.UDPMinimumSize))
	udp.Encode(&header.UDPFields{SrcPort: guest.Port(), DstPort: dst.Port(), Length: header.UDPMinimumSize})
	st.sendUnreachable(guest.Addr(), dst.Addr(), header.UDPProtocolNumber, header.ICMPv4PortUnreachable, udp)
}

// icmpv6Unreachable is the ICMPv6 code of each ICMPv4 unreachable code the NAT
// sends; the guest's kernel turns each into the same errno as the v4 one
// (ENETUNREACH, EHOSTUNREACH, ECONNREFUSED).
var icmpv6Unreachable = map[header.ICMPv4Code]header.ICMPv6Code{
	header.ICMPv4NetUnreachable:  header.ICMPv6NetworkUnreachable,
	header.ICMPv4HostUnreachable: header.ICMPv6AddressUnreachable,
	header.ICMPv4PortUnreachable: header.ICMPv6PortUnreachable,
}

// sendUnreachable sends the guest an ICMP destination unreachable with
// code (its ICMPv6 counterpart for IPv6), from dst, about a packet it sent
// to dst with protocol proto: the quote is that packet's IP header and the
// first 8 bytes of its payload (lead). The guest's link address is the one
// the stack learnt (the guest resolved the gateway's before it sent anything
// through it).
func (st *Stack) sendUnreachable(guest, dst netip.Addr, proto tcpip.TransportProtocolNumber, code header.ICMPv4Code, lead []byte) {
	mac, ok := st.linkAddrOf(guest)
	if !ok {
		st.log.Debug("icmp unreachable not sent: the guest's link address is unknown", "guest", guest)
		return
	}
	quote := ipPacket(guest, dst, proto, len(lead))
	icmpType, icmpCode := uint8(header.ICMPv4DstUnreachable), uint8(code)
	if guest.Is6() {
		icmpType, icmpCode = uint8(header.ICMPv6DstUnreachable), uint8(icmpv6Unreachable[code])
	}
	copy(quote[len(quote)-len(lead):], lead)
	// Both families: type, code, checksum, 4 unused bytes, then the quote.
	icmp := make([]byte, header.ICMPv4MinimumSize+len(quote))
	icmp[0], icmp[1] = icmpType, icmpCode
	copy(icmp[header.ICMPv4MinimumSize:], quote)
	st.writeToGuest(mac, dst, guest, icmp)
}

// linkAddrOf is the link address the stack knows for addr on the TAP.
func (st *Stack) linkAddrOf(addr netip.Addr) (tcpip.LinkAddress, bool) {
	proto, want := ipv4.ProtocolNumber, tcpip.AddrFromSlice(addr.AsSlice())
	if addr.Is6() {
		proto = ipv6.ProtocolNumber
	}
	ns, e := st.s.Neighbors(nicID, proto)
	if e != nil {
		return "", false
	}
	for _, n := range ns {
		if n.Addr == want && n.LinkAddr != "" {
			return n.LinkAddr, true
		}
	}
	return "", false
}

// pingSocket opens an unprivileged ICMP (or ICMPv6) datagram socket on the
// netpoller.
func pingSocket(v6 bool) (net.PacketConn, error) {
	family, proto := unix.AF_INET, unix.IPPROTO_ICMP
	if v6 {
		family, proto = unix.AF_INET6, unix.IPPROTO_ICMPV6
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, proto)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "ping")
	defer f.Close()
	return net.FilePacketConn(f)
}
