package netstack

import (
	"encoding/binary"

	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// A frame the namespace hands over with VIRTIO_NET_HDR_F_NEEDS_CSUM leaves
// one checksum to the device: the one's complement sum of the frame from
// csum_start on, stored at csum_start+csum_offset. The NAT never needs it
// when it is the frame's own TCP or UDP checksum (gVisor does not check
// received ones, and it re-originates every flow). But when it lies deeper,
// inside a UDP payload, it belongs to a tunnelled packet (VXLAN carrying a
// pod's TCP segment between nodes, see embed.Overlay) that the NAT sends on
// as it is: left partial, the far end's kernel drops the inner segment as
// invalid. Those are completed here.

// udpChecksumOffset is where a UDP header holds its checksum.
const udpChecksumOffset = 6

// completeInnerChecksum completes the partial checksum that vnetHdr
// describes when it is not the outermost transport header's. The frame is
// head followed by tail (the reader's two views); the checksum field must
// be in head. It reports whether it wrote one.
func completeInnerChecksum(vnetHdr, head, tail []byte) bool {
	if vnetHdr[0]&vnetFlagNeedsCsum == 0 {
		return false
	}
	start := int(binary.LittleEndian.Uint16(vnetHdr[6:]))
	field := start + int(binary.LittleEndian.Uint16(vnetHdr[8:]))
	if start == outerTransportOffset(head) || field+checksum.Size > len(head) {
		return false
	}
	var c checksum.Checksumer
	c.Add(head[start:])
	c.Add(tail)
	sum := ^c.Checksum()
	if sum == 0 && field-start == udpChecksumOffset {
		sum = 0xffff // a UDP checksum of 0 means none
	}
	checksum.Put(head[field:], sum)
	return true
}

// outerTransportOffset is where an Ethernet frame's IPv4 or IPv6 payload
// starts, -1 for anything else. (IPv6 extension headers are not walked:
// behind one, a checksum is completed even if it is the outer one, which
// costs a sum and is still right.)
func outerTransportOffset(frame []byte) int {
	if len(frame) < header.EthernetMinimumSize+1 {
		return -1
	}
	switch header.Ethernet(frame).Type() {
	case header.IPv4ProtocolNumber:
		return header.EthernetMinimumSize + int(frame[header.EthernetMinimumSize]&0x0f)*4
	case header.IPv6ProtocolNumber:
		return header.EthernetMinimumSize + header.IPv6MinimumSize
	}
	return -1
}
