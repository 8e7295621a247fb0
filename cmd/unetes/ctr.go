package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	ctrapp "github.com/containerd/containerd/v2/cmd/ctr/app"

	"github.com/unetes/unetes/embed"
)

// runCtr is `unetes ctr [--name N] ARGS…`: containerd's ctr, run inside the
// instance (so the FIFOs and mounts it makes are where the shim sees them)
// against the instance's containerd.
func runCtr(args []string, stdout, stderr io.Writer) int {
	inst, args := leadingName(args)
	paths, err := inst.paths()
	if err != nil {
		return fail(stderr, err)
	}
	env := append(os.Environ(), "CONTAINERD_ADDRESS="+filepath.Join(paths.StateDir, containerdSocketName))
	if b, err := os.ReadFile(filepath.Join(paths.StateDir, snapshotterFileName)); err == nil {
		env = append(env, "CONTAINERD_SNAPSHOTTER="+string(b))
	}
	return execInside(inst.name, paths.StateDir, "ctr", append([]string{"/proc/self/exe", "_ctr"}, args...), env, stderr)
}

// runCtrInside is the hidden role `_ctr`: ctr itself.
func runCtrInside(args []string, stdout, stderr io.Writer) int {
	if err := ctrapp.New().Run(context.Background(), append([]string{"unetes ctr"}, args...)); err != nil {
		fmt.Fprintln(stderr, "unetes ctr:", err)
		return 1
	}
	return 0
}

// runImage is `unetes image load [--name N] FILE…`.
func runImage(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "load" {
		fmt.Fprintln(stderr, "usage: unetes image load [--name N] FILE...  (docker-save or OCI tarballs; - reads stdin)")
		return 2
	}
	var inst instanceFlags
	fs := newFlagSet("image load", "image load [--name N] FILE...", stderr)
	inst.register(fs)
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "unetes image load: no file given: pass docker-save or OCI tarballs, or - for stdin")
		return 2
	}
	paths, err := inst.paths()
	if err != nil {
		return fail(stderr, err)
	}
	snap, err := os.ReadFile(filepath.Join(paths.StateDir, snapshotterFileName))
	if err != nil {
		return fail(stderr, notRunningError(inst.name))
	}
	store, err := embed.OpenImageStore(filepath.Join(paths.StateDir, containerdSocketName), string(snap))
	if err != nil {
		return fail(stderr, fmt.Errorf("%w; is instance %q running? (`unetes status --name %s`)", err, inst.name, inst.name))
	}
	defer store.Close()
	ctx := context.Background()
	code := 0
	for _, f := range fs.Args() {
		var names []string
		if f == "-" {
			names, err = store.Import(ctx, os.Stdin, false)
		} else {
			names, err = store.ImportFile(ctx, f)
		}
		if err != nil {
			fmt.Fprintf(stderr, "unetes image load: %v\n", err)
			code = 1
			continue
		}
		for _, n := range names {
			fmt.Fprintf(stdout, "loaded %s\n", n)
		}
	}
	return code
}
