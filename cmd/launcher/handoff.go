package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// LaunchLockEnv names the descriptor of the unpack lock a launcher that
// unpacked the program hands on to it (cmd/unetes releases it).
const LaunchLockEnv = "UNETES_LAUNCH_LOCK_FD"

// lockBuild takes the exclusive flock on dir/lock, waiting (and saying so)
// while another launcher of this build unpacks it. The launcher that
// unpacks keeps the lock through its exec into the program, which releases
// it once `unetes stop` could see the instance it starts: a stop (or any
// command) typed during a first run's unpack waits for the run instead of
// finding nothing.
func lockBuild(dir string, log io.Writer) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("unpack unetes: %w", err)
	}
	err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	if err == unix.EWOULDBLOCK {
		fmt.Fprintf(log, "unetes: waiting for another unetes to finish unpacking into %s\n", dir)
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("unpack unetes: lock %s: %w", f.Name(), err)
	}
	return f, nil
}

// handOn makes the held lock survive the exec into the program and names
// it in env.
func handOn(lock *os.File, env []string) ([]string, error) {
	fd := int(lock.Fd())
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, 0); err != nil {
		return env, fmt.Errorf("keep the unpack lock open: %w", err)
	}
	return append(env, LaunchLockEnv+"="+strconv.Itoa(fd)), nil
}

// withoutLaunchLock is env less any inherited LaunchLockEnv: only the
// launcher that unpacked names a lock.
func withoutLaunchLock(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, LaunchLockEnv+"=") {
			out = append(out, kv)
		}
	}
	return out
}
