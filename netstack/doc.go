// Package netstack is unetes' usermode NAT: a gVisor network stack attached to
// the TAP device of the instance's network namespace. TCP and UDP flows from
// the namespace are terminated in gVisor and re-originated from ordinary host
// sockets; DNS at the resolver address is relayed to the host's resolvers; the
// gateway address reaches the host's loopback only when that is allowed.
//
// The package also provides the RootlessKit network driver pair: the child
// side opens the TAP device inside the namespace and passes its file
// descriptor to the parent side over a unix socket.
package netstack
