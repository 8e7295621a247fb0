package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/unetes/unetes/nsinit"
)

func runExec(args []string, stdout, stderr io.Writer) int {
	var inst instanceFlags
	fs := newFlagSet("exec", "exec [--name N] [--] CMD [ARGS...]", stderr)
	inst.register(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	argv := fs.Args()
	if len(argv) == 0 {
		fmt.Fprintln(stderr, "unetes exec: no command given: try `unetes exec -- sh`")
		return 2
	}
	paths, err := inst.paths()
	if err != nil {
		return fail(stderr, err)
	}
	return execInside(inst.name, paths.StateDir, "exec", argv, os.Environ(), stderr)
}

// execInside runs argv with env inside the instance with this process's
// stdio, and returns its exit status (125 when it could not run there).
func execInside(name, stateDir, cmd string, argv, env []string, stderr io.Writer) int {
	dir, _ := os.Getwd()
	code, err := nsinit.Exec(stateDir, nsinit.ExecRequest{Argv: argv, Env: env, Dir: dir}, os.Stdin, os.Stdout, os.Stderr)
	if errors.Is(err, nsinit.ErrNotRunning) {
		fail(stderr, notRunningError(name))
		return 125
	}
	if err != nil {
		fmt.Fprintf(stderr, "unetes %s: %v\n", cmd, err)
		if code == 0 {
			code = 125
		}
	}
	return code
}
