package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

func runLogs(args []string, stdout, stderr io.Writer) int {
	var inst instanceFlags
	fs := newFlagSet("logs", "logs [--name N] COMPONENT", stderr)
	inst.register(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	paths, err := inst.paths()
	if err != nil {
		return fail(stderr, err)
	}
	dir := filepath.Join(paths.StateDir, "logs")
	if fs.NArg() != 1 {
		fmt.Fprintf(stderr, "unetes logs: name one component: %s\n", strings.Join(logComponents(dir), ", "))
		return 2
	}
	f, err := os.Open(filepath.Join(dir, fs.Arg(0)+".log"))
	if errors.Is(err, os.ErrNotExist) {
		return fail(stderr, fmt.Errorf("no log %q for instance %q: known logs are %s", fs.Arg(0), inst.name, strings.Join(logComponents(dir), ", ")))
	}
	if err != nil {
		return fail(stderr, err)
	}
	defer f.Close()
	io.Copy(stdout, f)
	return 0
}

func logComponents(dir string) []string {
	ents, _ := os.ReadDir(dir)
	var out []string
	for _, e := range ents {
		if n, ok := strings.CutSuffix(e.Name(), ".log"); ok {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	if len(out) == 0 {
		return []string{"(none yet)"}
	}
	return out
}
