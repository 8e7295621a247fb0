package netstack

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// handleUDP is called for the first datagram of a new flow (guest address and
// port to destination address and port). It returns false to have gVisor
// answer with ICMP port unreachable.
func (st *Stack) handleUDP(r *udp.ForwarderRequest) bool {
	id := r.ID()
	dst := netip.AddrPortFrom(addrOf(id.LocalAddress), id.LocalPort)
	verdict, target := st.cfg.Route(dst)
	if verdict == Refuse {
		st.log.Debug("udp refused", "dst", dst)
		return false
	}
	var host *net.UDPConn
	if verdict == Forward {
		c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(target))
		if err != nil {
			st.log.Debug("udp dial failed", "dst", dst, "err", err)
			return false
		}
		host = c
	}
	var wq waiter.Queue
	ep, terr := r.CreateEndpoint(&wq)
	if terr != nil {
		st.log.Debug("udp create endpoint failed", "dst", dst, "err", terr)
		if host != nil {
			host.Close()
		}
		return false
	}
	guest := gonet.NewUDPConn(&wq, ep)
	if !st.track(guest) {
		guest.Close()
		if host != nil {
			host.Close()
		}
		return true
	}
	st.wg.Add(1)
	st.flows.Add(1)
	go func() {
		defer st.wg.Done()
		defer st.flows.Add(-1)
		defer st.untrack(guest)
		defer guest.Close()
		if verdict == ServeDNS {
			st.serveDNSFlow(guest)
			return
		}
		defer host.Close()
		st.relayUDP(guest, host, netip.AddrPortFrom(addrOf(id.RemoteAddress), id.RemotePort), dst)
	}()
	return true
}

// relayUDP copies datagrams both ways until the flow has been idle for
// UDPIdleTimeout or the stack closes. A port unreachable the host got for
// the flow (ECONNREFUSED) goes on to the guest (from, to: the flow's
// addresses as the guest sent it) and the flow stays, as a socket's does.
func (st *Stack) relayUDP(guest *gonet.UDPConn, host *net.UDPConn, from, to netip.AddrPort) {
	idle := st.cfg.UDPIdleTimeout
	host.SetReadDeadline(time.Now().Add(idle))
	guest.SetReadDeadline(time.Now().Add(idle))
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			n, err := host.Read(buf)
			if errors.Is(err, syscall.ECONNREFUSED) {
				st.portUnreachable(from, to)
				continue
			}
			if err != nil {
				guest.SetReadDeadline(time.Now()) // wake the other direction
				return
			}
			guest.SetReadDeadline(time.Now().Add(idle))
			host.SetReadDeadline(time.Now().Add(idle))
			if _, err := guest.Write(buf[:n]); err != nil {
				return
			}
		}
	}()
	buf := make([]byte, 65536)
	for {
		n, err := guest.Read(buf)
		if err != nil {
			break
		}
		host.SetReadDeadline(time.Now().Add(idle))
		guest.SetReadDeadline(time.Now().Add(idle))
		if _, err := host.Write(buf[:n]); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			// ECONNREFUSED from an earlier ICMP error is not fatal for UDP.
			continue
		}
	}
	host.SetReadDeadline(time.Now())
	<-done
}

// serveDNSFlow answers each query of one guest flow through the relay.
func (st *Stack) serveDNSFlow(guest *gonet.UDPConn) {
	buf := make([]byte, 65536)
	for {
		guest.SetReadDeadline(time.Now().Add(st.cfg.UDPIdleTimeout))
		n, err := guest.Read(buf)
		if err != nil {
			return
		}
		resp, err := st.dns.exchange(st.ctx, buf[:n])
		if err != nil {
			st.log.Debug("dns relay failed", "err", err)
			continue // the guest's resolver retries or tries the next server
		}
		guest.Write(resp)
	}
}
