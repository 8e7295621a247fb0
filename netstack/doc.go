// Package netstack is unetes' usermode NAT: a gVisor network stack attached to
// the TAP device of the instance's network namespace. TCP and UDP flows from
// the namespace are terminated in gVisor and re-originated from ordinary host
// sockets; DNS at the resolver address is relayed to the host's resolvers; the
// gateway address reaches the host's loopback only when that is allowed.
//
// The package also provides the RootlessKit network driver pair: the child
// side opens the TAP device inside the namespace and passes its file
// descriptor to the parent side over a unix socket.
//
// Throughput. The stack sits on its own link endpoint (tapLink), not gVisor's
// fdbased, because a profile of a download at ~5 Gbit/s on a 2-core host
// spent the NAT's core on: the kernel's TAP and socket copies (~50%, which no
// usermode stack avoids), clearing gVisor's buffers (~10%), TCP checksums
// summed by gVisor and summed again by the namespace's kernel (~10%), and
// system calls and thread wake-ups around each ACK (ppoll, readv returning
// EAGAIN, a hand-off to a processor goroutine). On this VM-hosted machine
// every system call and wake-up is dear. tapLink carries a virtio-net header
// so TCP checksums stay partial both ways (and gVisor may send GSO segments
// when the MTU is small), delivers frames in the goroutine that read them,
// waits in Go's poller, and reads ACKs into a small buffer. What is left is
// the kernel's copies and gVisor's own buffer clearing, which needs gVisor.
package netstack
