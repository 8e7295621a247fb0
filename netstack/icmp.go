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
		st.writeToGuest(req, r)
		return
	}
}

// writeToGuest sends an IPv4 packet carrying icmp from req.dst to the guest.
func (st *Stack) writeToGuest(req pingRequest, icmp []byte) {
	pkt := make([]byte, header.IPv4MinimumSize+len(icmp))
	ip := header.IPv4(pkt)
	ip.Encode(&header.IPv4Fields{
		TotalLength: uint16(len(pkt)),
		TTL:         64,
		Protocol:    uint8(header.ICMPv4ProtocolNumber),
		SrcAddr:     tcpip.AddrFrom4(req.dst.As4()),
		DstAddr:     tcpip.AddrFrom4(req.guest.As4()),
	})
	ip.SetChecksum(^ip.CalculateChecksum())
	copy(pkt[header.IPv4MinimumSize:], icmp)
	if e := st.s.WritePacketToRemote(nicID, req.guestMAC, ipv4.ProtocolNumber, buffer.MakeWithData(pkt)); e != nil {
		st.log.Debug("ping reply not delivered", "err", e)
	}
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
