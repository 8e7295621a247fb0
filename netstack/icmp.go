package netstack

import (
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
	if v, _ := st.cfg.Route(netip.AddrPortFrom(dst, 0)); v != Forward {
		return true
	}
	eth := header.Ethernet(pkt.LinkHeader().Slice())
	if len(eth) < header.EthernetMinimumSize {
		return true
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
	return true
}

type pingRequest struct {
	guestMAC tcpip.LinkAddress
	guest    netip.Addr
	dst      netip.Addr
	echo     []byte // ICMP header and payload as the guest sent it
}

func (st *Stack) ping(req pingRequest) {
	c, err := pingSocket()
	if err != nil {
		st.log.Debug("ping not forwarded: the host does not allow ping sockets (net.ipv4.ping_group_range)", "err", err)
		return
	}
	if !st.track(c) {
		c.Close()
		return
	}
	defer st.untrack(c)
	defer c.Close()
	want := header.ICMPv4(req.echo)
	// A ping socket wrapped by the net package is a UDPConn: address it as UDP.
	if _, err := c.WriteTo(req.echo, &net.UDPAddr{IP: req.dst.AsSlice()}); err != nil {
		st.log.Debug("ping send failed", "dst", req.dst, "err", err)
		return
	}
	c.SetReadDeadline(time.Now().Add(pingTimeout))
	buf := make([]byte, 65536)
	for {
		n, _, err := c.ReadFrom(buf)
		if err != nil {
			return
		}
		r := header.ICMPv4(buf[:n])
		if n < header.ICMPv4MinimumSize || r.Type() != header.ICMPv4EchoReply || r.Sequence() != want.Sequence() {
			continue
		}
		// The kernel replaced the identifier with the socket's; restore the guest's.
		r.SetIdent(want.Ident())
		r.SetChecksum(0)
		r.SetChecksum(^checksum.Checksum(r, 0))
		st.writeToGuest(req.guestMAC, req.dst, req.guest, r)
		return
	}
}

// writeToGuest sends an IPv4 packet carrying icmp from the address from to
// the guest at to (link address mac).
func (st *Stack) writeToGuest(mac tcpip.LinkAddress, from, to netip.Addr, icmp []byte) {
	pkt := make([]byte, header.IPv4MinimumSize+len(icmp))
	ip := header.IPv4(pkt)
	ip.Encode(&header.IPv4Fields{
		TotalLength: uint16(len(pkt)),
		TTL:         64,
		Protocol:    uint8(header.ICMPv4ProtocolNumber),
		SrcAddr:     tcpip.AddrFrom4(from.As4()),
		DstAddr:     tcpip.AddrFrom4(to.As4()),
	})
	ip.SetChecksum(^ip.CalculateChecksum())
	copy(pkt[header.IPv4MinimumSize:], icmp)
	if e := st.s.WritePacketToRemote(nicID, mac, ipv4.ProtocolNumber, buffer.MakeWithData(pkt)); e != nil {
		st.log.Debug("icmp to the guest not delivered", "err", e)
	}
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

// sendUnreachable sends the guest an ICMP destination unreachable with
// code, from dst, about a packet it sent to dst with protocol proto: the
// quote is that packet's IP header and the first 8 bytes of its payload
// (lead). The guest's link address is the one the stack learnt (the guest
// resolved the gateway's before it sent anything through it).
func (st *Stack) sendUnreachable(guest, dst netip.Addr, proto tcpip.TransportProtocolNumber, code header.ICMPv4Code, lead []byte) {
	if !guest.Is4() || !dst.Is4() {
		return // ICMPv4 only; an IPv6 guest reads no error, as when the host got none
	}
	mac, ok := st.linkAddrOf(guest)
	if !ok {
		st.log.Debug("icmp unreachable not sent: the guest's link address is unknown", "guest", guest)
		return
	}
	quote := make([]byte, header.IPv4MinimumSize+len(lead))
	ip := header.IPv4(quote)
	ip.Encode(&header.IPv4Fields{
		TotalLength: uint16(len(quote)),
		TTL:         64,
		Protocol:    uint8(proto),
		SrcAddr:     tcpip.AddrFrom4(guest.As4()),
		DstAddr:     tcpip.AddrFrom4(dst.As4()),
	})
	ip.SetChecksum(^ip.CalculateChecksum())
	copy(quote[header.IPv4MinimumSize:], lead)
	icmp := header.ICMPv4(make([]byte, header.ICMPv4MinimumSize+len(quote)))
	icmp.SetType(header.ICMPv4DstUnreachable)
	icmp.SetCode(code)
	copy(icmp.Payload(), quote)
	icmp.SetChecksum(^checksum.Checksum(icmp, 0))
	st.writeToGuest(mac, dst, guest, icmp)
}

// linkAddrOf is the link address the stack knows for addr on the TAP.
func (st *Stack) linkAddrOf(addr netip.Addr) (tcpip.LinkAddress, bool) {
	ns, e := st.s.Neighbors(nicID, ipv4.ProtocolNumber)
	if e != nil {
		return "", false
	}
	want := tcpip.AddrFrom4(addr.As4())
	for _, n := range ns {
		if n.Addr == want && n.LinkAddr != "" {
			return n.LinkAddr, true
		}
	}
	return "", false
}

// pingSocket opens an unprivileged ICMP datagram socket on the netpoller.
func pingSocket() (net.PacketConn, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMP)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "ping")
	defer f.Close()
	return net.FilePacketConn(f)
}
