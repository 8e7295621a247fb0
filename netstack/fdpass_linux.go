package netstack

import (
	"errors"
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// sendFD sends f over the unix socket at path.
func sendFD(path string, f *os.File) error {
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return fmt.Errorf("connect to %s: %w", path, err)
	}
	defer c.Close()
	if _, _, err := c.WriteMsgUnix([]byte{0}, unix.UnixRights(int(f.Fd())), nil); err != nil {
		return fmt.Errorf("pass fd over %s: %w", path, err)
	}
	return nil
}

// recvFD receives one file descriptor from c.
func recvFD(c *net.UnixConn) (*os.File, error) {
	oob := make([]byte, unix.CmsgSpace(4))
	buf := make([]byte, 1)
	_, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, fmt.Errorf("receive fd: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return nil, fmt.Errorf("parse control message: %w", err)
	}
	for _, m := range msgs {
		fds, err := unix.ParseUnixRights(&m)
		if err != nil {
			continue
		}
		for _, extra := range fds[1:] {
			unix.Close(extra)
		}
		if len(fds) > 0 {
			return os.NewFile(uintptr(fds[0]), "passed-fd"), nil
		}
	}
	return nil, errors.New("receive fd: no fd in message")
}
