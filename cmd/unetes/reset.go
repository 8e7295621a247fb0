package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/unetes/unetes/nsinit"
)

// runReset is Usernetes' cleanup.sh: stop the instance and delete its state,
// data and configuration, after a confirmation.
func runReset(args []string, stdout, stderr io.Writer) int {
	var inst instanceFlags
	var force bool
	fs := newFlagSet("reset", "reset [--name N] [--force]", stderr)
	inst.register(fs)
	fs.BoolVar(&force, "force", false, "do not ask for confirmation")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	paths, err := inst.paths()
	if err != nil {
		return fail(stderr, err)
	}
	dirs := []string{paths.StateDir, paths.DataDir, paths.ConfigDir}
	if !force {
		fmt.Fprintf(stdout, "This stops instance %q and deletes, with everything in them:\n  %s\nType yes to continue: ", inst.name, strings.Join(dirs, "\n  "))
		line, _ := bufio.NewReader(os.Stdin).ReadString('\n')
		if strings.TrimSpace(line) != "yes" {
			fmt.Fprintln(stderr, "unetes reset: not confirmed, nothing deleted (use --force to skip the question)")
			return 1
		}
	}
	if _, err := nsinit.RunningPID(paths.StateDir); !errors.Is(err, nsinit.ErrNotRunning) {
		if code := runStop([]string{"--name", inst.name}, stdout, stderr); code != 0 {
			return fail(stderr, fmt.Errorf("instance %q could not be stopped: nothing deleted", inst.name))
		}
	}
	u, _ := currentUser()
	self, err := os.Executable()
	if err != nil {
		return fail(stderr, err)
	}
	if err := nsinit.RemoveAllMapped(u, self, "_rmtree", dirs); err != nil {
		return fail(stderr, fmt.Errorf("%w (files that containers made belong to your sub-IDs: delete them with `unetes reset` once the error is fixed, or as root)", err))
	}
	fmt.Fprintf(stdout, "unetes: instance %q reset\n", inst.name)
	return 0
}

// runRemoveTrees is the hidden role `_rmtree DIR…` that reset runs in a user
// namespace with the sub-IDs mapped.
func runRemoveTrees(args []string, stdout, stderr io.Writer) int {
	if err := nsinit.RemoveTrees(args); err != nil {
		fmt.Fprintf(stderr, "unetes reset: %v\n", err)
		return 1
	}
	return 0
}
