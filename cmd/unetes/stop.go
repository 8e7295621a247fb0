package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"syscall"
	"time"

	"github.com/unetes/unetes/nsinit"
)

func runStop(args []string, stdout, stderr io.Writer) int {
	var inst instanceFlags
	var timeout time.Duration
	fs := newFlagSet("stop", "stop [--name N] [--timeout D]", stderr)
	inst.register(fs)
	fs.DurationVar(&timeout, "timeout", 30*time.Second, "how long to wait for the instance to exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	paths, err := inst.paths()
	if err != nil {
		return fail(stderr, err)
	}
	pid, err := nsinit.RunningPID(paths.StateDir)
	if errors.Is(err, nsinit.ErrNotRunning) {
		return fail(stderr, notRunningError(inst.name))
	}
	if err != nil {
		return fail(stderr, err)
	}
	resp, err := apiClient(paths.StateDir).Post("http://unetes/unetes/v1/stop", "", nil)
	if err == nil {
		resp.Body.Close()
	}
	if err != nil || resp.StatusCode != http.StatusAccepted {
		// The API is not up (still starting): fall back to the signal.
		if kerr := syscall.Kill(pid, syscall.SIGTERM); kerr != nil {
			return fail(stderr, fmt.Errorf("signal instance %q (pid %d): %w", inst.name, pid, kerr))
		}
	}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if _, err := nsinit.RunningPID(paths.StateDir); errors.Is(err, nsinit.ErrNotRunning) {
			fmt.Fprintf(stdout, "unetes: instance %q stopped\n", inst.name)
			return 0
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fail(stderr, fmt.Errorf("instance %q (pid %d) did not stop within %s: kill it with `kill %d`", inst.name, pid, timeout, pid))
}
