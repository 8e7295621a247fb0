// Command unetes is Kubernetes for people without root: one binary that
// re-executes itself into user, mount and network namespaces with a usermode
// NAT. This file dispatches the subcommands, visible and hidden (process roles).
package main

import (
	"fmt"
	"io"
	"os"
	"sort"

	_ "github.com/unetes/unetes/cmd/unetes/internal/lazyi18n" // before kubectl's packages
	"github.com/unetes/unetes/embed"
)

// Set with -ldflags -X at build time.
var (
	version           = "dev"
	gvisorVersion     = "unknown"
	rkVersion         = "unknown"
	containerdVersion = "unknown"
	runcVersion       = "unknown"
	cniVersion        = "unknown"
	mobyVersion       = "unknown"
)

type command struct {
	run    func(args []string, stdout, stderr io.Writer) int
	usage  string
	hidden bool // a process role, not for users
}

var commands = map[string]command{
	"run":        {run: runRun, usage: "start an instance in the foreground"},
	"exec":       {run: runExec, usage: "run a command inside a running instance"},
	"forward":    {run: runForward, usage: "forward a host port into a running instance; --list, --remove"},
	"status":     {run: runStatus, usage: "show whether an instance runs, and how"},
	"stop":       {run: runStop, usage: "stop a running instance"},
	"doctor":     {run: runDoctor, usage: "check the host's prerequisites and print fixes"},
	"kubectl":    {run: runKubectl, usage: "kubectl, built in, for the instance (a leading --name N picks it)"},
	"logs":       {run: runLogs, usage: "print a component's log"},
	"reset":      {run: runReset, usage: "stop an instance and delete all its state and data"},
	"ctr":        {run: runCtr, usage: "containerd's ctr, built in, for the instance (a leading --name N picks it)"},
	"image":      {run: runImage, usage: "image load FILE...: import docker-save or OCI tarballs for pods"},
	"docker":     {run: runDocker, usage: "the host's docker CLI, pointed at the instance (a leading --name N picks it)"},
	"docker-env": {run: runDockerEnv, usage: "print export DOCKER_HOST=… for the instance's Docker API"},
	"token":      {run: runToken, usage: "print the bootstrap token and CA pin nodes join with"},
	"join":       {run: runJoin, usage: "start a node that joins another instance's cluster (HOST:PORT --token T --ca-cert-hash H)"},
	"version":    {run: runVersion, usage: "print versions"},
	// Process roles of the one binary.
	"_child":   {run: runChild, hidden: true},
	"_sandbox": {run: runSandbox, hidden: true},
	"_kubelet": {run: runKubelet, hidden: true},
	"_ctr":     {run: runCtrInside, hidden: true},
	"_rmtree":  {run: runRemoveTrees, hidden: true},
}

// runKubelet is the kubelet, a child of the sandbox (hidden role `_kubelet`).
func runKubelet(args []string, _, _ io.Writer) int {
	settleMemoryLater()
	return embed.RunKubelet(args)
}

func main() {
	takeLaunchLock()
	os.Exit(dispatch(os.Args[1:], os.Stdout, os.Stderr))
}

func dispatch(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "unetes: unknown command %q\n", args[0])
		usage(stderr)
		return 2
	}
	if args[0] != "run" && args[0] != "join" {
		releaseLaunchLock()
	}
	return c.run(args[1:], stdout, stderr)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: unetes COMMAND [flags]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n, c := range commands {
		if !c.hidden {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].usage)
	}
	fmt.Fprintln(w, "\nRun `unetes COMMAND -h` for the flags of a command.")
}

func runVersion(args []string, stdout, stderr io.Writer) int {
	fmt.Fprintf(stdout, "unetes %s\ngvisor %s\nrootlesskit %s\ncontainerd %s\nrunc %s\ncni-plugins %s\nmoby (dockerd) %s\n",
		version, gvisorVersion, rkVersion, containerdVersion, runcVersion, cniVersion, mobyVersion)
	return 0
}
