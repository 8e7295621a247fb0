package embed

import (
	"io"
	"net"
	"sync"
)

// connRelay is a TCP relay on the namespace's loopback to the apiserver, for
// kube-proxy alone. kube-proxy starts its informers with no stop channel,
// so its watches outlive its context and hold the apiserver's graceful
// shutdown for a minute; closing the relay ends them.
type connRelay struct {
	l      net.Listener
	target string

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

func newRelay(target string) (*connRelay, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &connRelay{l: l, target: target, conns: map[net.Conn]struct{}{}}
	go r.serve()
	return r, nil
}

// Addr is host:port of the relay.
func (r *connRelay) Addr() string { return r.l.Addr().String() }

func (r *connRelay) serve() {
	for {
		c, err := r.l.Accept()
		if err != nil {
			return
		}
		go r.relay(c)
	}
}

func (r *connRelay) track(c net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		c.Close()
		return false
	}
	r.conns[c] = struct{}{}
	return true
}

func (r *connRelay) relay(c net.Conn) {
	up, err := net.Dial("tcp", r.target)
	if err != nil {
		c.Close()
		return
	}
	if !r.track(c) || !r.track(up) {
		c.Close()
		up.Close()
		return
	}
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) { io.Copy(dst, src); done <- struct{}{} }
	go pipe(up, c)
	go pipe(c, up)
	<-done
	c.Close()
	up.Close()
	<-done
	r.mu.Lock()
	delete(r.conns, c)
	delete(r.conns, up)
	r.mu.Unlock()
}

// Close stops accepting and cuts every relayed connection.
func (r *connRelay) Close() {
	r.l.Close()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	for c := range r.conns {
		c.Close()
	}
}
