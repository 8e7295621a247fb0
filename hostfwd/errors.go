package hostfwd

import (
	"errors"
	"fmt"
	"syscall"
)

// Errors callers can test with errors.Is.
var (
	ErrDuplicate = errors.New("forward already exists")
	ErrNotFound  = errors.New("no such forward")
	ErrInUse     = errors.New("host port in use")
	ErrPrivPort  = errors.New("privileged host port")
)

// explainListen turns a listen failure into an error that says what to do.
func explainListen(s Spec, err error) error {
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return fmt.Errorf("%w: %s is already taken on the host: pick another host port, or stop what listens there (ss -lnp 'sport = :%d')",
			ErrInUse, Key{s.HostIP, s.HostPort, s.Proto}, s.HostPort)
	case errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM):
		return fmt.Errorf("%w: an ordinary user cannot listen on %s: use a port from 1024, or lower net.ipv4.ip_unprivileged_port_start (sudo sysctl -w net.ipv4.ip_unprivileged_port_start=%d), or grant the binary sudo setcap cap_net_bind_service=ep $(command -v unetes)",
			ErrPrivPort, Key{s.HostIP, s.HostPort, s.Proto}, s.HostPort)
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return fmt.Errorf("host address %s is not an address of this host: use 127.0.0.1, 0.0.0.0 or one of `ip -br addr`", s.HostIP)
	}
	return fmt.Errorf("listen on %s: %w", Key{s.HostIP, s.HostPort, s.Proto}, err)
}
