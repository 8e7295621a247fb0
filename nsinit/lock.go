package nsinit

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

const (
	lockFile      = "lock"
	parentPIDFile = "parent.pid"
	childPIDFile  = "child_pid" // RootlessKit's documented name, kept for rootlessctl
)

// ErrNotRunning is returned when no instance holds the state dir's lock.
var ErrNotRunning = errors.New("instance is not running")

// RunningError is returned when another process runs the instance.
type RunningError struct {
	Name string
	PID  int
}

func (e *RunningError) Error() string {
	return fmt.Sprintf("instance %q is already running (pid %d): use `unetes stop --name %s` first, or pick another --name", e.Name, e.PID, e.Name)
}

// stateLock is an exclusive flock on <state>/lock, held while the instance runs.
type stateLock struct{ f *os.File }

func lockState(stateDir string) (*stateLock, error) {
	f, err := os.OpenFile(filepath.Join(stateDir, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, errLocked
		}
		return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	return &stateLock{f: f}, nil
}

var errLocked = errors.New("state dir is locked")

func (l *stateLock) unlock() {
	unix.Flock(int(l.f.Fd()), unix.LOCK_UN)
	l.f.Close()
}

// RunningPID returns the pid of the parent process running the instance
// whose state dir is given, or ErrNotRunning.
func RunningPID(stateDir string) (int, error) {
	l, err := lockState(stateDir)
	switch {
	case errors.Is(err, errLocked):
		b, rerr := os.ReadFile(filepath.Join(stateDir, parentPIDFile))
		if rerr != nil {
			return 0, fmt.Errorf("instance is starting or stopping: %w", rerr)
		}
		pid, perr := strconv.Atoi(strings.TrimSpace(string(b)))
		if perr != nil {
			return 0, fmt.Errorf("parse %s: %w", parentPIDFile, perr)
		}
		return pid, nil
	case err != nil:
		if errors.Is(err, os.ErrNotExist) {
			return 0, ErrNotRunning
		}
		return 0, err
	}
	l.unlock()
	return 0, ErrNotRunning
}
