package netstack

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// tapLink is the NAT's link endpoint: ethernet frames on a TAP device (or a
// socketpair in tests). It replaces gVisor's fdbased endpoint for what a
// profile of the NAT showed (see the package doc):
//
//   - With a virtio-net header on the TAP (IFF_VNET_HDR, TUN_F_CSUM), TCP
//     checksums are offloaded both ways: gVisor writes only the pseudo-header
//     sum and the namespace's kernel takes the segment as CHECKSUM_PARTIAL, so
//     neither side sums 64 KiB payloads (fdbased offers this only on sockets).
//     The same header lets gVisor send GSO segments larger than the MTU when
//     the MTU is small.
//   - Frames are delivered to the stack in the reading goroutine, not handed
//     to a processor goroutine first (TCP queues them to its own processors),
//     and the reader waits in Go's poller rather than in a ppoll of its own.
//   - A read lands in a small view first, so an ACK does not take (and clear)
//     a 64 KiB buffer.
type tapLink struct {
	fd   int      // frames are written here
	rf   *os.File // a dup of fd in Go's poller, read by the reader; closing it stops the reader
	vnet bool     // frames carry a virtio_net_hdr

	mu         sync.RWMutex
	mtu        uint32
	addr       tcpip.LinkAddress
	dispatcher stack.NetworkDispatcher
	onClose    func()
	wg         sync.WaitGroup
}

const (
	vnetHdrLen = 10 // struct virtio_net_hdr, the TAP's default TUNSETVNETHDRSZ

	vnetFlagNeedsCsum = 1 // VIRTIO_NET_HDR_F_NEEDS_CSUM
	vnetGSONone       = 0
	vnetGSOTCPv4      = 1
	vnetGSOTCPv6      = 4

	tunFCsum = 0x01 // TUN_F_CSUM: the namespace may hand over frames with partial checksums
	tunFTSO4 = 0x02 // TUN_F_TSO4: ... and TCP segments above the MTU, cut by the NAT's stack
	tunFTSO6 = 0x04 // TUN_F_TSO6

	// smallView holds whole ACKs, ARP, DNS and ICMP frames; only larger
	// frames use the big view too.
	smallView = 2048

	// tapGSOMaxSize bounds a GSO segment by what the IPv4 total length and
	// the virtio-net header can express.
	tapGSOMaxSize = 1<<16 - 1
)

var (
	_ stack.LinkEndpoint = (*tapLink)(nil)
	_ stack.GSOEndpoint  = (*tapLink)(nil)
)

// newTAPLink attaches to fd, which must stay open until the link is closed.
// vnet says whether frames on fd carry a virtio-net header (see hasVnetHdr).
func newTAPLink(fd int, mtu uint32, addr tcpip.LinkAddress, vnet bool) (*tapLink, error) {
	if err := unix.SetNonblock(fd, true); err != nil {
		return nil, fmt.Errorf("set fd %d non-blocking: %w", fd, err)
	}
	dup, err := unix.Dup(fd)
	if err != nil {
		return nil, fmt.Errorf("dup fd %d: %w", fd, err)
	}
	unix.CloseOnExec(dup)
	rf := os.NewFile(uintptr(dup), "tap-reader") // non-blocking, so it is in Go's poller
	return &tapLink{fd: fd, rf: rf, vnet: vnet, mtu: mtu, addr: addr}, nil
}

// hasVnetHdr reports whether fd is a TAP device opened with IFF_VNET_HDR;
// anything else (a socketpair in tests) carries plain frames.
func hasVnetHdr(fd int) bool {
	ifr, err := unix.NewIfreq("")
	if err != nil {
		return false
	}
	if err := unix.IoctlIfreq(fd, unix.TUNGETIFF, ifr); err != nil {
		return false
	}
	return ifr.Uint16()&unix.IFF_VNET_HDR != 0
}

// MTU implements stack.LinkEndpoint.
func (l *tapLink) MTU() uint32 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.mtu
}

// SetMTU implements stack.LinkEndpoint.
func (l *tapLink) SetMTU(mtu uint32) {
	l.mu.Lock()
	l.mtu = mtu
	l.mu.Unlock()
}

// MaxHeaderLength implements stack.LinkEndpoint.
func (l *tapLink) MaxHeaderLength() uint16 { return header.EthernetMinimumSize }

// LinkAddress implements stack.LinkEndpoint.
func (l *tapLink) LinkAddress() tcpip.LinkAddress {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.addr
}

// SetLinkAddress implements stack.LinkEndpoint.
func (l *tapLink) SetLinkAddress(addr tcpip.LinkAddress) {
	l.mu.Lock()
	l.addr = addr
	l.mu.Unlock()
}

// Capabilities implements stack.LinkEndpoint. Received frames are not
// checksummed again: the peer is the local kernel, and with a virtio-net
// header it may leave TCP and UDP checksums partial.
func (l *tapLink) Capabilities() stack.LinkEndpointCapabilities {
	return stack.CapabilityRXChecksumOffload | stack.CapabilityResolutionRequired
}

// GSOMaxSize implements stack.GSOEndpoint.
func (l *tapLink) GSOMaxSize() uint32 {
	if !l.vnet {
		return 0
	}
	return tapGSOMaxSize
}

// SupportedGSO implements stack.GSOEndpoint: with a virtio-net header gVisor
// leaves TCP checksums partial and may send segments above the MTU, which the
// namespace's kernel takes as it takes GRO'd ones.
func (l *tapLink) SupportedGSO() stack.SupportedGSO {
	if !l.vnet {
		return stack.GSONotSupported
	}
	return stack.HostGSOSupported
}

// ARPHardwareType implements stack.LinkEndpoint.
func (l *tapLink) ARPHardwareType() header.ARPHardwareType { return header.ARPHardwareEther }

// AddHeader implements stack.LinkEndpoint.
func (l *tapLink) AddHeader(pkt *stack.PacketBuffer) {
	eth := header.Ethernet(pkt.LinkHeader().Push(header.EthernetMinimumSize))
	eth.Encode(&header.EthernetFields{
		SrcAddr: pkt.EgressRoute.LocalLinkAddress,
		DstAddr: pkt.EgressRoute.RemoteLinkAddress,
		Type:    pkt.NetworkProtocolNumber,
	})
}

// ParseHeader implements stack.LinkEndpoint.
func (l *tapLink) ParseHeader(pkt *stack.PacketBuffer) bool {
	hdr, ok := pkt.LinkHeader().Consume(header.EthernetMinimumSize)
	if !ok {
		return false
	}
	pkt.NetworkProtocolNumber = header.Ethernet(hdr).Type()
	return true
}

// Attach implements stack.LinkEndpoint: a dispatcher starts the reader, nil
// stops it and waits for it.
func (l *tapLink) Attach(d stack.NetworkDispatcher) {
	l.mu.Lock()
	if d == nil {
		had := l.dispatcher != nil
		l.dispatcher = nil
		l.mu.Unlock()
		if had {
			l.rf.Close() // wakes the reader out of the poller
			l.wg.Wait()
		}
		return
	}
	defer l.mu.Unlock()
	if l.dispatcher == nil {
		l.dispatcher = d
		l.wg.Add(1)
		go l.readLoop(d)
	}
}

// IsAttached implements stack.LinkEndpoint.
func (l *tapLink) IsAttached() bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.dispatcher != nil
}

// Wait implements stack.LinkEndpoint.
func (l *tapLink) Wait() { l.wg.Wait() }

// Close implements stack.LinkEndpoint.
func (l *tapLink) Close() {
	l.Attach(nil)
	l.rf.Close()
	l.mu.Lock()
	f := l.onClose
	l.onClose = nil
	l.mu.Unlock()
	if f != nil {
		f()
	}
}

// SetOnCloseAction implements stack.LinkEndpoint.
func (l *tapLink) SetOnCloseAction(f func()) {
	l.mu.Lock()
	l.onClose = f
	l.mu.Unlock()
}

// WritePackets implements stack.LinkEndpoint. A TAP takes one frame per
// write; the kernel never blocks or short-writes it.
func (l *tapLink) WritePackets(pkts stack.PacketBufferList) (int, tcpip.Error) {
	for i, pkt := range pkts.AsSlice() {
		if err := l.writePacket(pkt); err != nil {
			return i, err
		}
	}
	return pkts.Len(), nil
}

func (l *tapLink) writePacket(pkt *stack.PacketBuffer) tcpip.Error {
	var hdr [vnetHdrLen]byte
	var iovs [8]unix.Iovec
	iov := iovs[:0]
	if l.vnet {
		putVnetHdr(hdr[:], pkt)
		iov = appendIovec(iov, hdr[:])
	}
	for _, s := range pkt.AsSlices() {
		iov = appendIovec(iov, s)
	}
	_, _, errno := unix.RawSyscall(unix.SYS_WRITEV, uintptr(l.fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
	if errno != 0 {
		return tcpip.TranslateErrno(errno)
	}
	return nil
}

func appendIovec(iov []unix.Iovec, b []byte) []unix.Iovec {
	if len(b) == 0 {
		return iov
	}
	v := unix.Iovec{Base: &b[0]}
	v.SetLen(len(b))
	return append(iov, v)
}

// putVnetHdr writes the virtio-net header of pkt: a partial checksum to
// complete (the namespace's kernel takes it as already checked when the
// segment is delivered locally, and completes it if it forwards it) and, for
// a segment above the MSS, how to cut it.
func putVnetHdr(b []byte, pkt *stack.PacketBuffer) {
	clear(b)
	gso := pkt.GSOOptions
	if gso.Type == stack.GSONone {
		return
	}
	binary.LittleEndian.PutUint16(b[2:], uint16(pkt.HeaderSize()))
	if gso.NeedsCsum {
		b[0] = vnetFlagNeedsCsum
		binary.LittleEndian.PutUint16(b[6:], uint16(header.EthernetMinimumSize+gso.L3HdrLen))
		binary.LittleEndian.PutUint16(b[8:], gso.CsumOffset)
	}
	if pkt.Data().Size() > int(gso.MSS) {
		b[1] = vnetGSOTCPv4
		if gso.Type == stack.GSOTCPv6 {
			b[1] = vnetGSOTCPv6
		}
		binary.LittleEndian.PutUint16(b[4:], gso.MSS)
	}
}

// readLoop delivers frames to d until the reader's file is closed or the
// device goes away.
func (l *tapLink) readLoop(d stack.NetworkDispatcher) {
	defer l.wg.Done()
	rc, err := l.rf.SyscallConn()
	if err != nil {
		return
	}
	r := frameReader{vnet: l.vnet}
	defer r.release()
	for {
		l.mu.RLock()
		mtu, addr := l.mtu, l.addr
		l.mu.RUnlock()
		var n int
		var rerr error
		frameMax := int(mtu)
		if l.vnet {
			// A peer offered TSO (the kernel) or GSO (gVisor in tests)
			// sends segments above the MTU.
			frameMax = max(frameMax, tapGSOMaxSize)
		}
		err := rc.Read(func(fd uintptr) bool {
			n, rerr = r.read(int(fd), frameMax+header.EthernetMinimumSize)
			return !errors.Is(rerr, unix.EAGAIN)
		})
		if err != nil || (rerr != nil && !errors.Is(rerr, unix.EINTR)) || (n == 0 && rerr == nil) {
			return // closed, or the TAP's device is gone
		}
		if rerr != nil {
			continue
		}
		pkt := r.packet(n)
		if pkt == nil {
			continue
		}
		if l.ParseHeader(pkt) {
			// Ours, or broadcast/multicast (ARP requests, neighbour solicitations).
			if dst := header.Ethernet(pkt.LinkHeader().Slice()).DestinationAddress(); dst == addr || dst[0]&1 == 1 {
				d.DeliverNetworkPacket(pkt.NetworkProtocolNumber, pkt)
			}
		}
		pkt.DecRef()
	}
}

// frameReader reads one frame per readv into a small view and, only when the
// frame is larger, a big one; a used view is replaced, an unused one kept.
type frameReader struct {
	vnet  bool
	hdr   [vnetHdrLen]byte
	small *buffer.View
	big   *buffer.View
	bigN  int
}

func (r *frameReader) release() {
	for _, v := range []*buffer.View{r.small, r.big} {
		if v != nil {
			v.Release()
		}
	}
	r.small, r.big = nil, nil
}

func (r *frameReader) read(fd, frameMax int) (int, error) {
	if r.small == nil {
		r.small = buffer.NewViewSize(smallView)
	}
	if bigN := max(frameMax-smallView, 0); r.big == nil || r.bigN != bigN {
		if r.big != nil {
			r.big.Release()
		}
		r.big, r.bigN = nil, bigN
		if bigN > 0 {
			r.big = buffer.NewViewSize(bigN)
		}
	}
	var iovs [3]unix.Iovec
	iov := iovs[:0]
	if r.vnet {
		iov = appendIovec(iov, r.hdr[:])
	}
	iov = appendIovec(iov, r.small.AsSlice())
	if r.big != nil {
		iov = appendIovec(iov, r.big.AsSlice())
	}
	n, _, errno := unix.RawSyscall(unix.SYS_READV, uintptr(fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

// packet takes the views that n bytes filled into a packet, or returns nil
// for a frame too short to carry anything.
func (r *frameReader) packet(n int) *stack.PacketBuffer {
	if r.vnet {
		if n <= vnetHdrLen {
			return nil
		}
		// A partial checksum needs nothing here unless it is a tunnelled
		// packet's (completeInnerChecksum): received checksums are not
		// checked (RXChecksumOffload). A GSO frame is one segment above the
		// MSS, which gVisor's TCP takes as it is.
		n -= vnetHdrLen
		if n > smallView {
			completeInnerChecksum(r.hdr[:], r.small.AsSlice(), r.big.AsSlice()[:n-smallView])
		} else if n >= header.EthernetMinimumSize {
			completeInnerChecksum(r.hdr[:], r.small.AsSlice()[:n], nil)
		}
	}
	if n < header.EthernetMinimumSize {
		return nil
	}
	v := r.small
	r.small = nil
	if n <= smallView {
		v.CapLength(n)
		return stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithView(v)})
	}
	b := buffer.MakeWithView(v)
	big := r.big
	r.big = nil
	big.CapLength(n - smallView)
	b.Append(big)
	return stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: b})
}
