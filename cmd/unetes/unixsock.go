package main

import (
	"fmt"
	"net"
	"os"
	"syscall"
)

// listenPrivate listens on a unix socket only the owner may connect to
// (mode 0600 from the start: the umask is set around bind).
func listenPrivate(path string) (net.Listener, error) {
	os.Remove(path)
	old := syscall.Umask(0o177)
	defer syscall.Umask(old)
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	return l, nil
}
