package main

import (
	"os"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// launchLockEnv is cmd/launcher's LaunchLockEnv: the descriptor of the
// build's unpack lock, handed on by the launcher that just unpacked this
// program, so that a command typed meanwhile (`unetes stop` during a first
// run) waits in its own launcher until this one could be seen.
const launchLockEnv = "UNETES_LAUNCH_LOCK_FD"

var (
	launchLock  *os.File
	releaseOnce sync.Once
)

// takeLaunchLock adopts the lock named in the environment, if any: it is
// closed on exec (no process this one starts holds it) and the variable
// is dropped (none inherits a stale number).
func takeLaunchLock() {
	v, ok := os.LookupEnv(launchLockEnv)
	if !ok {
		return
	}
	os.Unsetenv(launchLockEnv)
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return
	}
	// Only the lock under the launcher's cache dir, never another file.
	if target, err := os.Readlink("/proc/self/fd/" + v); err != nil || !strings.HasSuffix(target, "/lock") || !strings.Contains(target, "/unetes/bin/") {
		return
	}
	unix.CloseOnExec(fd)
	launchLock = os.NewFile(uintptr(fd), "launch lock")
}

// releaseLaunchLock lets waiting launchers go on: `unetes run` calls it
// once its instance's lock and pid file are in place, every other command
// at once.
func releaseLaunchLock() {
	releaseOnce.Do(func() {
		if launchLock != nil {
			launchLock.Close()
		}
	})
}
