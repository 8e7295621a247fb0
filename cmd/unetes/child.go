package main

import (
	"fmt"
	"io"

	"github.com/unetes/unetes/hostfwd"
	"github.com/unetes/unetes/netstack"
	"github.com/unetes/unetes/nsinit"
)

// runChild is the first process in the new namespaces (hidden role
// `_child`): PID 1 and reaper; it runs `_sandbox SANDBOX-ARGS…`.
func runChild(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("_child", "_child [--] SANDBOX-ARGS...", stderr)
	if err := fs.Parse(args); err != nil || fs.NArg() == 0 {
		return 2
	}
	settleMemoryLater()
	target := append([]string{"/proc/self/exe", "_sandbox"}, fs.Args()...)
	err := nsinit.RunChild(nsinit.ChildConfig{
		TargetCmd: target,
		Network:   netstack.ChildDriver{Log: stderr},
		Ports:     hostfwd.ChildDriver(stderr),
	})
	if err != nil {
		fmt.Fprintf(stderr, "unetes child: %v\n", err)
		return 1
	}
	return 0
}
