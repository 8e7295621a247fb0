package nsinit

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"

	"golang.org/x/sys/unix"
)

// ExecSocketName is the socket, in the state dir, on which the process inside
// the namespaces accepts `unetes exec` requests.
const ExecSocketName = "exec.sock"

// ExecRequest asks for a command to be run inside the namespaces. The
// caller's stdin, stdout and stderr travel with it as file descriptors.
type ExecRequest struct {
	Argv []string `json:"argv"`
	Env  []string `json:"env"`
	Dir  string   `json:"dir"`
}

// execControl flows client → server after the request.
type execControl struct {
	Signal int `json:"signal,omitempty"`
}

// execEvent flows server → client.
type execEvent struct {
	PID   int    `json:"pid,omitempty"`
	Exit  *int   `json:"exit,omitempty"`
	Error string `json:"error,omitempty"`
}

const maxExecRequest = 1 << 20

// writeRequest sends the length-prefixed request with the fds attached.
func writeRequest(c *net.UnixConn, req ExecRequest, fds []int) error {
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	msg := binary.BigEndian.AppendUint32(nil, uint32(len(body)))
	msg = append(msg, body...)
	n, _, err := c.WriteMsgUnix(msg, unix.UnixRights(fds...), nil)
	if err != nil {
		return fmt.Errorf("send exec request: %w", err)
	}
	if n < len(msg) {
		_, err = c.Write(msg[n:])
	}
	return err
}

// readRequest receives a request and its fds; rest holds bytes read past it.
func readRequest(c *net.UnixConn) (req ExecRequest, fds []int, rest []byte, err error) {
	buf := make([]byte, 64<<10)
	oob := make([]byte, unix.CmsgSpace(3*4))
	n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
	if err != nil {
		return req, nil, nil, fmt.Errorf("read exec request: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return req, nil, nil, fmt.Errorf("parse exec request fds: %w", err)
	}
	for _, m := range msgs {
		if got, err := unix.ParseUnixRights(&m); err == nil {
			fds = append(fds, got...)
		}
	}
	data := buf[:n]
	for len(data) < 4 {
		return req, fds, nil, errors.New("read exec request: short header")
	}
	size := int(binary.BigEndian.Uint32(data))
	if size > maxExecRequest {
		return req, fds, nil, fmt.Errorf("exec request of %d bytes is too large", size)
	}
	for len(data) < 4+size {
		more := make([]byte, 4+size-len(data))
		m, err := io.ReadFull(c, more)
		data = append(data, more[:m]...)
		if err != nil {
			return req, fds, nil, fmt.Errorf("read exec request: %w", err)
		}
	}
	if err := json.Unmarshal(data[4:4+size], &req); err != nil {
		return req, fds, nil, fmt.Errorf("decode exec request: %w", err)
	}
	return req, fds, data[4+size:], nil
}
