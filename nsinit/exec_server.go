package nsinit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ExecServer runs commands for `unetes exec`. It lives in the process inside
// the namespaces, so what it starts is inside them too: pure Go, no nsenter.
type ExecServer struct {
	log *slog.Logger
	wg  sync.WaitGroup

	mu     sync.Mutex
	l      net.Listener
	conns  map[net.Conn]struct{}
	closed bool
}

// NewExecServer returns a server; Serve it on a listener the caller owns.
func NewExecServer(log *slog.Logger) *ExecServer {
	return &ExecServer{log: log, conns: map[net.Conn]struct{}{}}
}

// Serve accepts requests until Close.
func (s *ExecServer) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return net.ErrClosed
	}
	s.l = l
	s.mu.Unlock()
	for {
		c, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("accept exec connection: %w", err)
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return nil
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			s.handle(c.(*net.UnixConn))
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			c.Close()
		}()
	}
}

// Close stops accepting, hangs up running commands and waits for them.
func (s *ExecServer) Close() error {
	s.mu.Lock()
	s.closed = true
	if s.l != nil {
		s.l.Close()
	}
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

func (s *ExecServer) handle(c *net.UnixConn) {
	enc := json.NewEncoder(c)
	req, fds, rest, err := readRequest(c)
	files := make([]*os.File, 0, len(fds))
	for _, fd := range fds {
		unix.CloseOnExec(fd)
		files = append(files, os.NewFile(uintptr(fd), "exec-stdio"))
	}
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	if err == nil && (len(files) != 3 || len(req.Argv) == 0) {
		err = errors.New("an exec request needs a command and 3 stdio fds")
	}
	if err != nil {
		enc.Encode(execEvent{Error: err.Error(), Exit: intp(126)})
		return
	}
	cmd, err := buildCmd(req, files)
	if err != nil {
		enc.Encode(execEvent{Error: err.Error(), Exit: intp(127)})
		return
	}
	if err := cmd.Start(); err != nil {
		code := 126 // found but not runnable, as a shell says
		if errors.Is(err, fs.ErrNotExist) {
			code = 127
		}
		enc.Encode(execEvent{Error: err.Error(), Exit: intp(code)})
		return
	}
	for _, f := range files {
		f.Close()
	}
	files = nil
	s.log.Debug("exec started", "argv", req.Argv, "pid", cmd.Process.Pid)
	enc.Encode(execEvent{PID: cmd.Process.Pid})
	exited := make(chan struct{})
	go forwardSignals(io.MultiReader(bytes.NewReader(rest), c), cmd.Process, exited)
	werr := cmd.Wait()
	close(exited)
	code := exitCode(cmd.ProcessState, werr)
	enc.Encode(execEvent{Exit: &code})
}

// hangupGrace is how long a command whose client went away gets after
// SIGHUP before its process group is killed.
const hangupGrace = 2 * time.Second

// forwardSignals relays the client's signals to the command. When the client
// goes away (killed, like an nsenter would be together with its command), the
// command's process group gets SIGHUP and, after hangupGrace, SIGKILL.
func forwardSignals(r io.Reader, p *os.Process, exited <-chan struct{}) {
	dec := json.NewDecoder(r)
	for {
		var ctl execControl
		if err := dec.Decode(&ctl); err != nil {
			break
		}
		if ctl.Signal > 0 && ctl.Signal < 65 {
			p.Signal(syscall.Signal(ctl.Signal))
		}
	}
	select {
	case <-exited:
		return
	default:
	}
	syscall.Kill(-p.Pid, syscall.SIGHUP)
	select {
	case <-exited:
	case <-time.After(hangupGrace):
		syscall.Kill(-p.Pid, syscall.SIGKILL)
	}
}

func buildCmd(req ExecRequest, stdio []*os.File) (*exec.Cmd, error) {
	path, err := lookPathIn(req.Argv[0], envValue(req.Env, "PATH"))
	if err != nil {
		return nil, err
	}
	dir := req.Dir
	if fi, err := os.Stat(dir); dir == "" || err != nil || !fi.IsDir() {
		dir = "/"
	}
	return &exec.Cmd{
		Path:   path,
		Args:   req.Argv,
		Env:    req.Env,
		Dir:    dir,
		Stdin:  stdio[0],
		Stdout: stdio[1],
		Stderr: stdio[2],
		// Own process group, so a signal meant for the command does not hit the server.
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true},
	}, nil
}

func lookPathIn(name, pathEnv string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	if pathEnv == "" {
		pathEnv = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	}
	for _, d := range filepath.SplitList(pathEnv) {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: command not found in the instance (PATH=%s)", name, pathEnv)
}

func envValue(env []string, key string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], key+"="); ok {
			return v
		}
	}
	return ""
}

func exitCode(ps *os.ProcessState, err error) int {
	if ps == nil {
		return 126
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

func intp(i int) *int { return &i }
