// Command dockerd is moby's Docker daemon as unetes embeds it: moby's own
// daemon runner (github.com/moby/moby/v2/daemon/command), built from this
// directory's module, apart from unetes' (moby's swarmkit needs etcd's raft
// 3.6, Kubernetes 3.7), plus one thing of unetes': once the daemon is up,
// it gives back the memory only its start-up used, as unetes' own roles do
// (see settle.go).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/moby/moby/v2/daemon/command"
	"github.com/moby/sys/reexec"
)

func main() {
	if reexec.Init() {
		return
	}
	// A closed client's pipe must not end the daemon.
	signal.Ignore(syscall.SIGPIPE)
	r, err := command.NewDaemonRunner(os.Stdout, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	settleLater()
	if err := r.Run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
