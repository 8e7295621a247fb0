package netstack

import (
	"encoding/binary"
	"testing"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// vxlanFrame is what the namespace's kernel hands the TAP for a pod's TCP
// segment sent across the overlay: Ethernet, IPv4, UDP to 8472, VXLAN, the
// inner Ethernet, IPv4 and TCP with only the pseudo-header sum in its
// checksum, and the virtio-net header pointing at it.
func vxlanFrame(payload []byte) (vnet, frame []byte, innerTCP int) {
	inner := header.EthernetMinimumSize + header.IPv4MinimumSize + header.UDPMinimumSize + 8
	innerTCP = inner + header.EthernetMinimumSize + header.IPv4MinimumSize
	frame = make([]byte, innerTCP+header.TCPMinimumSize+len(payload))
	header.Ethernet(frame).Encode(&header.EthernetFields{Type: header.IPv4ProtocolNumber})
	outer := header.IPv4(frame[header.EthernetMinimumSize:])
	outer.Encode(&header.IPv4Fields{TotalLength: uint16(len(frame) - header.EthernetMinimumSize), Protocol: uint8(header.UDPProtocolNumber), TTL: 64,
		SrcAddr: tcpip.AddrFrom4([4]byte{192, 168, 77, 2}), DstAddr: tcpip.AddrFrom4([4]byte{192, 168, 77, 1})})
	header.UDP(outer.Payload()).Encode(&header.UDPFields{SrcPort: 40000, DstPort: 8472, Length: uint16(len(outer.Payload()))})
	header.Ethernet(frame[inner:]).Encode(&header.EthernetFields{Type: header.IPv4ProtocolNumber})
	src, dst := tcpip.AddrFrom4([4]byte{10, 88, 1, 2}), tcpip.AddrFrom4([4]byte{10, 88, 0, 2})
	ip := header.IPv4(frame[inner+header.EthernetMinimumSize:])
	tcpLen := header.TCPMinimumSize + len(payload)
	ip.Encode(&header.IPv4Fields{TotalLength: uint16(header.IPv4MinimumSize + tcpLen), Protocol: uint8(header.TCPProtocolNumber), TTL: 64, SrcAddr: src, DstAddr: dst})
	tcp := header.TCP(frame[innerTCP:])
	tcp.Encode(&header.TCPFields{SrcPort: 34567, DstPort: 80, SeqNum: 1, DataOffset: header.TCPMinimumSize, Flags: header.TCPFlagSyn, WindowSize: 65535})
	copy(frame[innerTCP+header.TCPMinimumSize:], payload)
	tcp.SetChecksum(header.PseudoHeaderChecksum(header.TCPProtocolNumber, src, dst, uint16(tcpLen)))
	vnet = make([]byte, vnetHdrLen)
	vnet[0] = vnetFlagNeedsCsum
	binary.LittleEndian.PutUint16(vnet[6:], uint16(innerTCP))
	binary.LittleEndian.PutUint16(vnet[8:], header.TCPChecksumOffset)
	return vnet, frame, innerTCP
}

func innerValid(frame []byte, innerTCP int) bool {
	ip := header.IPv4(frame[innerTCP-header.IPv4MinimumSize:])
	tcp := header.TCP(frame[innerTCP:])
	return tcp.IsChecksumValid(ip.SourceAddress(), ip.DestinationAddress(),
		checksum.Checksum(tcp.Payload(), 0), uint16(len(tcp.Payload())))
}

func TestCompleteInnerChecksum(t *testing.T) {
	for _, size := range []int{0, 1, 1400, 3001} { // odd sizes, and frames that span both views
		payload := make([]byte, size)
		for i := range payload {
			payload[i] = byte(i * 7)
		}
		vnet, frame, innerTCP := vxlanFrame(payload)
		if innerValid(frame, innerTCP) {
			t.Fatalf("size %d: the partial checksum already passes; the test proves nothing", size)
		}
		head, tail := frame, []byte(nil)
		if len(frame) > smallView {
			head, tail = frame[:smallView], frame[smallView:]
		}
		if !completeInnerChecksum(vnet, head, tail) {
			t.Fatalf("size %d: the inner checksum was not completed", size)
		}
		if !innerValid(frame, innerTCP) {
			t.Errorf("size %d: inner TCP checksum invalid after completing", size)
		}
	}
}

func TestCompleteInnerChecksumLeavesOuter(t *testing.T) {
	// A plain TCP segment's own partial checksum, and a frame without
	// NEEDS_CSUM, are left alone.
	vnet, frame, innerTCP := vxlanFrame([]byte("hello"))
	plain := frame[innerTCP-header.IPv4MinimumSize-header.EthernetMinimumSize:]
	binary.LittleEndian.PutUint16(vnet[6:], uint16(header.EthernetMinimumSize+header.IPv4MinimumSize))
	before := string(plain)
	if completeInnerChecksum(vnet, plain, nil) || string(plain) != before {
		t.Error("the outermost TCP checksum was completed; the NAT never needs it")
	}
	vnet[0] = 0
	if completeInnerChecksum(vnet, frame, nil) {
		t.Error("a frame without NEEDS_CSUM was changed")
	}
}
