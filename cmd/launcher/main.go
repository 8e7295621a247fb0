// Command launcher is the unetes users download (bin/unetes): a small
// program carrying the real one (cmd/unetes, ~220 MB) compressed with zstd.
// Its first run for a user unpacks that program once into the user's cache
// directory ($XDG_CACHE_HOME/unetes/bin/<digest>/unetes, by default under
// ~/.cache); every run then execs it with the same arguments and
// environment, so `unetes run` and every process it starts from its own
// executable (the child, the sandbox, the kubelet) run the unpacked file,
// mapped from the page cache and shared like any program. (Never UPX: each
// of those processes would decompress its own copy into memory.)
package main

import (
	"embed"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
)

//go:embed payload
var payload embed.FS

func main() {
	os.Exit(launch(os.Args, os.Stderr))
}

func launch(args []string, stderr io.Writer) int {
	prog, err := loadProgram(payload)
	if err != nil {
		fmt.Fprintf(stderr, "unetes: %v\n", err)
		return 1
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		fmt.Fprintf(stderr, "unetes: %v: set XDG_CACHE_HOME (or HOME) to a directory of yours where unetes may unpack itself\n", err)
		return 1
	}
	path, held, err := prog.ensure(filepath.Join(cache, "unetes", "bin"), stderr)
	if err != nil {
		fmt.Fprintf(stderr, "unetes: %v\n", err)
		return 1
	}
	env := withoutLaunchLock(os.Environ())
	if held != nil {
		if env, err = handOn(held, env); err != nil {
			fmt.Fprintf(stderr, "unetes: %v\n", err)
			return 1
		}
	}
	err = syscall.Exec(path, args, env)
	runtime.KeepAlive(held) // open until the exec: its finalizer would close it
	hint := ""
	if errors.Is(err, syscall.EACCES) {
		hint = ": is " + cache + " on a noexec mount? Set XDG_CACHE_HOME to a directory where programs may run"
	}
	fmt.Fprintf(stderr, "unetes: run %s: %v%s\n", path, err, hint)
	return 1
}
