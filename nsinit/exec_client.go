package nsinit

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
)

// Exec runs req inside the instance whose state dir is given, with the given
// stdio, forwarding SIGINT, SIGTERM, SIGHUP and SIGQUIT. It returns the
// command's exit status (128+n when killed by signal n).
func Exec(stateDir string, req ExecRequest, stdin, stdout, stderr *os.File) (int, error) {
	sock := filepath.Join(stateDir, ExecSocketName)
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
			return 0, ErrNotRunning
		}
		return 0, fmt.Errorf("connect to %s: %w", sock, err)
	}
	defer c.Close()
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	defer signal.Stop(sigs)
	fds := []int{int(stdin.Fd()), int(stdout.Fd()), int(stderr.Fd())}
	if err := writeRequest(c, req, fds); err != nil {
		return 0, err
	}
	events := make(chan execEvent)
	readErr := make(chan error, 1)
	go func() {
		dec := json.NewDecoder(c)
		for {
			var ev execEvent
			if err := dec.Decode(&ev); err != nil {
				readErr <- err
				return
			}
			events <- ev
		}
	}()
	enc := json.NewEncoder(c)
	for {
		select {
		case s := <-sigs:
			enc.Encode(execControl{Signal: int(s.(syscall.Signal))})
		case ev := <-events:
			if ev.Exit != nil {
				if ev.Error != "" {
					return *ev.Exit, errors.New(ev.Error)
				}
				return *ev.Exit, nil
			}
		case err := <-readErr:
			return 0, fmt.Errorf("exec connection lost (did the instance stop?): %w", err)
		}
	}
}
