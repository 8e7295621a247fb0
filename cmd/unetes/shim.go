package main

import (
	"context"
	"flag"
	"os"
	"path/filepath"

	"github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2/manager"
	_ "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2/task/plugin"
	"github.com/containerd/containerd/v2/pkg/shim"
	"github.com/containerd/containerd/v2/plugins"
	"github.com/containerd/plugin"
	"github.com/containerd/plugin/registry"

	"github.com/unetes/unetes/embed"
)

// Names unetes answers to besides its own: containerd starts the shim by
// that name (or re-execs it with shim flags first), and the shim runs runc.
const (
	shimName = "containerd-shim-runc-v2"
	runcName = "runc"
)

// multiCall runs unetes as the shim or the runc wrapper when argv says so,
// and reports whether it did.
func multiCall(argv []string) (int, bool) {
	switch filepath.Base(argv[0]) {
	case runcName:
		return embed.RuncWrapper(argv[1:]), true
	case shimName:
		return runShim(), true
	}
	if len(argv) > 1 {
		// What containerd passes a shim first: -namespace to start or delete
		// one, -info to ask about it.
		switch argv[1] {
		case "-namespace", "-info":
			return runShim(), true
		}
	}
	return 0, false
}

// runShim is containerd-shim-runc-v2. Its flags live on the global flag set,
// which nothing else in unetes uses; a fresh one avoids clashes with flags
// other packages registered there.
//
// The shim loads every plugin in the registry, and this binary also holds
// containerd's server plugins; so the registry is cut down to the shim's
// task service first (the shim adds its publisher and shutdown itself).
func runShim() int {
	flag.CommandLine = flag.NewFlagSet(os.Args[0], flag.ExitOnError)
	all := registry.Graph(func(*plugin.Registration) bool { return false })
	registry.Reset()
	for _, r := range all {
		if r.Type == plugins.TTRPCPlugin && r.ID == "task" {
			registry.Register(&r)
		}
	}
	shim.RunShim(context.Background(), manager.NewShimManager("io.containerd.runc.v2"))
	return 0
}
