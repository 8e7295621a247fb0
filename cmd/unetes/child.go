package main

import (
	"fmt"
	"io"

	"github.com/unetes/unetes/hostfwd"
	"github.com/unetes/unetes/netstack"
	"github.com/unetes/unetes/nsinit"
)

// runChild is the first process in the new namespaces (hidden role `_child`).
func runChild(args []string, stdout, stderr io.Writer) int {
	var stateDir, dataDir string
	var kube bool
	fs := newFlagSet("_child", "_child --state-dir DIR [--kubernetes --data-dir DIR]", stderr)
	fs.StringVar(&stateDir, "state-dir", "", "state dir of the instance")
	fs.StringVar(&dataDir, "data-dir", "", "data dir of the instance")
	fs.BoolVar(&kube, "kubernetes", false, "host the control plane")
	if err := fs.Parse(args); err != nil || stateDir == "" {
		return 2
	}
	target := []string{"/proc/self/exe", "_sandbox", "--state-dir", stateDir}
	if kube {
		target = append(target, "--kubernetes", "--data-dir", dataDir)
	}
	err := nsinit.RunChild(nsinit.ChildConfig{
		TargetCmd: target,
		Network:   netstack.ChildDriver{},
		Ports:     hostfwd.ChildDriver(stderr),
	})
	if err != nil {
		fmt.Fprintf(stderr, "unetes child: %v\n", err)
		return 1
	}
	return 0
}
