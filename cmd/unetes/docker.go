package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"github.com/unetes/unetes/nsinit"
)

// dockerHost is the DOCKER_HOST of a running instance's Docker API, or an
// error that says why there is none.
func dockerHost(inst instanceFlags) (string, error) {
	paths, err := inst.paths()
	if err != nil {
		return "", err
	}
	if _, err := nsinit.RunningPID(paths.StateDir); err != nil {
		return "", fmt.Errorf("instance %q is not running: start it with `unetes run --name %s`", inst.name, inst.name)
	}
	sock := filepath.Join(paths.StateDir, dockerSocketName)
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Type() != os.ModeSocket {
		return "", fmt.Errorf("instance %q has no Docker API (%s): it runs with --disable docker, or dockerd is not up yet (`unetes status --name %s`)", inst.name, sock, inst.name)
	}
	return "unix://" + sock, nil
}

// runDockerEnv prints the shell lines that point docker clients at the
// instance: eval "$(unetes docker-env)". Where the docker CLI on PATH can
// build only with the legacy builder, they say so and set DOCKER_BUILDKIT=0.
func runDockerEnv(args []string, stdout, stderr io.Writer) int {
	var inst instanceFlags
	fs := newFlagSet("docker-env", "docker-env [--name N]", stderr)
	inst.register(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "unetes docker-env: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	host, err := dockerHost(inst)
	if err != nil {
		return fail(stderr, err)
	}
	fmt.Fprintf(stdout, "export DOCKER_HOST=%s\n", host)
	if cli, choice, err := hostBuilder(); err == nil {
		switch {
		case choice.Err != nil:
			fmt.Fprintf(stderr, "unetes: warning: docker build will fail: %v\n", choice.Err)
		case choice.SetEnv != "":
			fmt.Fprintf(stdout, "# %s %s builds with dockerd's legacy builder: it has no buildx plugin, which it needs for BuildKit; for BuildKit, %s\nexport %s\n", cli.Path, cli.Version, buildxFix, choice.SetEnv)
		}
	}
	return 0
}

// runDocker runs the host's docker CLI against the instance: unetes links
// no Docker client of its own (the docker CLI is a 40 MB program); this
// spares users the DOCKER_HOST line, and picks the builder the CLI can use
// (dockerbuild.go).
func runDocker(args []string, stdout, stderr io.Writer) int {
	inst, rest := leadingName(args)
	host, err := dockerHost(inst)
	if err != nil {
		return fail(stderr, err)
	}
	cli, choice, err := hostBuilder()
	if err != nil {
		return fail(stderr, err)
	}
	if choice.Err != nil && isBuild(rest) {
		return fail(stderr, choice.Err)
	}
	env := setEnv(os.Environ(), "DOCKER_HOST="+host)
	if choice.SetEnv != "" {
		env = setEnv(env, choice.SetEnv)
	}
	if err := syscall.Exec(cli.Path, append([]string{"docker"}, rest...), env); err != nil {
		return fail(stderr, fmt.Errorf("run %s: %w", cli.Path, err))
	}
	return 0
}
