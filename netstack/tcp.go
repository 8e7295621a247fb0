package netstack

import (
	"context"
	"errors"
	"net"
	"net/netip"

	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// handleTCP runs in its own goroutine for each SYN (gVisor's forwarder starts
// it), so a slow or black-holed destination only holds its own handshake.
func (st *Stack) handleTCP(r *tcp.ForwarderRequest) {
	id := r.ID()
	dst := netip.AddrPortFrom(addrOf(id.LocalAddress), id.LocalPort)
	verdict, target := st.cfg.Route(dst)
	if verdict == Refuse {
		st.log.Debug("tcp refused", "dst", dst)
		st.syns.take(id)
		r.Complete(true)
		return
	}
	ctx, cancel := context.WithTimeout(st.ctx, st.cfg.ConnectTimeout)
	defer cancel()
	var host net.Conn
	var err error
	if verdict == ServeDNS {
		host, err = st.dns.dialTCP(ctx)
	} else if st.cfg.dialTCP != nil {
		host, err = st.cfg.dialTCP(ctx, target.String())
	} else {
		var d net.Dialer
		host, err = d.DialContext(ctx, "tcp", target.String())
	}
	s, known := st.syns.take(id)
	if err != nil {
		if code, ok := unreachableCode(err); ok && known {
			st.log.Debug("tcp dial failed: destination unreachable", "dst", dst, "target", target, "err", err)
			st.tcpUnreachable(id, s, code)
			r.Complete(false)
			return
		}
		reset := answerFailedDial(err)
		st.log.Debug("tcp dial failed", "dst", dst, "target", target, "err", err, "reset", reset)
		r.Complete(reset)
		return
	}
	var wq waiter.Queue
	ep, terr := r.CreateEndpoint(&wq)
	if terr != nil {
		st.log.Debug("tcp create endpoint failed", "dst", dst, "err", terr)
		r.Complete(true)
		host.Close()
		return
	}
	r.Complete(false)
	ep.SocketOptions().SetKeepAlive(true)
	guest := gonet.NewTCPConn(&wq, ep)
	st.relayTCP(guest, host)
}

// answerFailedDial tells whether the guest's SYN is answered with a reset
// after the host's dial failed with err. A destination that never answered
// gets no answer either: the guest retransmits its SYN (each one a new dial,
// the first ones swallowed while one is in flight) and times out on its own
// schedule, as on the host, instead of being refused after ConnectTimeout.
// Anything else (refused, the stack closing) is a reset; an unreachable
// destination gets an ICMP unreachable where the SYN is known
// (tcpUnreachable), else a reset.
func answerFailedDial(err error) bool {
	var ne net.Error // the dial's deadline and the host's own ETIMEDOUT both say Timeout
	return !(errors.As(err, &ne) && ne.Timeout())
}

// relayTCP copies both directions with half-close until both are done.
func (st *Stack) relayTCP(guest *gonet.TCPConn, host net.Conn) {
	if !st.track(guest) {
		guest.Close()
		host.Close()
		return
	}
	st.track(host)
	st.wg.Add(1)
	defer st.wg.Done()
	st.flows.Add(1)
	defer st.flows.Add(-1)
	done := make(chan struct{})
	go func() {
		copyHalf(host, guest, false)
		if hc, ok := host.(interface{ CloseWrite() error }); ok {
			hc.CloseWrite()
		}
		close(done)
	}()
	copyHalf(guest, host, true)
	guest.CloseWrite()
	<-done
	guest.Close()
	host.Close()
	st.untrack(guest)
	st.untrack(host)
}
