package netstack

import (
	"errors"
	"sync"
	"syscall"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// syn is what the NAT keeps of a guest's SYN while its dial is in flight:
// an ICMP error about the connection must quote the SYN's sequence number,
// or the guest's kernel ignores it, and gVisor's forwarder request does not
// expose it.
type syn struct {
	seq  uint32
	seen time.Time
}

// synTable holds the SYNs of handshakes being dialled. It is bounded: at
// limit entries it drops those older than maxAge (a SYN retransmitted just
// as its dial ended, or one the forwarder dropped over its own limit), and
// if none is, it notes no more until some go.
type synTable struct {
	mu     sync.Mutex
	m      map[stack.TransportEndpointID]syn
	limit  int
	maxAge time.Duration
}

func newSYNTable(limit int, maxAge time.Duration) *synTable {
	return &synTable{m: map[stack.TransportEndpointID]syn{}, limit: limit, maxAge: maxAge}
}

// withSYNs wraps the TCP forwarder's handler, which sees only segments no
// connection claims (new connections' SYNs, strays): it notes each SYN
// before the forwarder takes it. The data path does not pass here.
func (t *synTable) withSYNs(next func(stack.TransportEndpointID, *stack.PacketBuffer) bool) func(stack.TransportEndpointID, *stack.PacketBuffer) bool {
	return func(id stack.TransportEndpointID, pkt *stack.PacketBuffer) bool {
		h := header.TCP(pkt.TransportHeader().Slice())
		if len(h) >= header.TCPMinimumSize && h.Flags() == header.TCPFlagSyn {
			t.note(id, syn{seq: h.SequenceNumber(), seen: time.Now()})
		}
		return next(id, pkt)
	}
}

func (t *synTable) note(id stack.TransportEndpointID, s syn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.m[id]; !ok && len(t.m) >= t.limit {
		for k, v := range t.m {
			if s.seen.Sub(v.seen) > t.maxAge {
				delete(t.m, k)
			}
		}
		if len(t.m) >= t.limit {
			return
		}
	}
	t.m[id] = s
}

// take returns and forgets the SYN of id.
func (t *synTable) take(id stack.TransportEndpointID) (syn, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s, ok := t.m[id]
	delete(t.m, id)
	return s, ok
}

// unreachableCode is the ICMP destination-unreachable code that stands for
// a dial's failure err, if one does.
func unreachableCode(err error) (header.ICMPv4Code, bool) {
	switch {
	case errors.Is(err, syscall.EHOSTUNREACH):
		return header.ICMPv4HostUnreachable, true
	case errors.Is(err, syscall.ENETUNREACH):
		return header.ICMPv4NetUnreachable, true
	}
	return 0, false
}

// tcpUnreachable tells the guest that the destination of its handshake id
// (its SYN s) cannot be reached, as the host's kernel told the NAT: its
// connect fails with EHOSTUNREACH or ENETUNREACH, as it would on the host.
func (st *Stack) tcpUnreachable(id stack.TransportEndpointID, s syn, code header.ICMPv4Code) {
	guest, dst := addrOf(id.RemoteAddress), addrOf(id.LocalAddress)
	seg := header.TCP(make([]byte, header.TCPMinimumSize))
	seg.Encode(&header.TCPFields{SrcPort: id.RemotePort, DstPort: id.LocalPort, SeqNum: s.seq,
		DataOffset: header.TCPMinimumSize, Flags: header.TCPFlagSyn})
	// RFC 792: the IP header and the first 8 bytes of the segment (ports and
	// sequence number).
	st.sendUnreachable(guest, dst, header.TCPProtocolNumber, code, seg[:8])
}
