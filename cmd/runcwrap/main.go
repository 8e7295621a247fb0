// Command runcwrap is what containerd's shim runs as runc on a host without
// delegated cgroups. runc refuses to create a container whose limits it
// cannot apply, and the kubelet asks for limits (at least cpu shares) for
// every container; so for create and run it drops linux.resources (except
// the device rules) from the bundle, and it answers update with success.
// Then it execs the real runc, the file "runc" beside it.
//
// It is a program of its own, embedded in unetes like runc, because runc is
// run several times for every container: unetes itself would spend ~0.3 s
// of CPU on its packages' initialisers at each call.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(os.Stderr, "runc wrapper: %v\n", err)
		return 1
	}
	real := filepath.Join(filepath.Dir(self), "runc")
	switch cmd, bundle := runcCommand(args); cmd {
	case "create", "run":
		if err := dropLimits(filepath.Join(bundle, "config.json")); err != nil {
			fmt.Fprintf(os.Stderr, "runc wrapper: %v\n", err)
			return 1
		}
	case "update":
		return 0
	}
	err = syscall.Exec(real, append([]string{"runc"}, args...), os.Environ())
	fmt.Fprintf(os.Stderr, "runc wrapper: exec %s: %v\n", real, err)
	return 1
}

// runcCommand finds runc's subcommand in args and, for create and run, the
// bundle (--bundle/-b, default the working directory). Pure.
func runcCommand(args []string) (cmd, bundle string) {
	withValue := map[string]bool{"--root": true, "--log": true, "--log-format": true, "--criu": true, "--rootless": true}
	i := 0
	for ; i < len(args); i++ {
		a := args[i]
		if len(a) == 0 || a[0] != '-' {
			break
		}
		if withValue[a] {
			i++
		}
	}
	if i >= len(args) {
		return "", ""
	}
	cmd, bundle = args[i], "."
	for j := i + 1; j < len(args); j++ {
		switch a := args[j]; {
		case (a == "--bundle" || a == "-b") && j+1 < len(args):
			bundle = args[j+1]
		case len(a) > 9 && a[:9] == "--bundle=":
			bundle = a[9:]
		}
	}
	return cmd, bundle
}

// dropLimits rewrites an OCI config without resource limits and cgroup
// path, keeping the device rules.
func dropLimits(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var spec map[string]any
	if err := json.Unmarshal(b, &spec); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	linux, _ := spec["linux"].(map[string]any)
	if linux == nil {
		return nil
	}
	delete(linux, "cgroupsPath")
	if res, _ := linux["resources"].(map[string]any); len(res) > 0 {
		kept := map[string]any{}
		if d, ok := res["devices"]; ok {
			kept["devices"] = d
		}
		linux["resources"] = kept
	}
	out, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	return os.WriteFile(path, out, 0o600)
}
