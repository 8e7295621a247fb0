package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/unetes/unetes/nsinit"
)

// runSandbox is the long-lived process inside the namespaces (hidden role
// `_sandbox`): it serves `unetes exec` and, later, hosts the components.
func runSandbox(args []string, stdout, stderr io.Writer) int {
	var stateDir string
	var debug bool
	fs := newFlagSet("_sandbox", "_sandbox --state-dir DIR", stderr)
	fs.StringVar(&stateDir, "state-dir", "", "state dir of the instance")
	fs.BoolVar(&debug, "debug", false, "debug logging")
	if err := fs.Parse(args); err != nil || stateDir == "" {
		return 2
	}
	log := newLogger(stderr, "sandbox", debug)
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer cancel()
	sock := filepath.Join(stateDir, nsinit.ExecSocketName)
	os.Remove(sock)
	old := syscall.Umask(0o177)
	l, err := net.Listen("unix", sock)
	syscall.Umask(old)
	if err != nil {
		fmt.Fprintf(stderr, "unetes sandbox: listen on %s: %v\n", sock, err)
		return 1
	}
	srv := nsinit.NewExecServer(log)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	log.Info("sandbox ready", "exec", sock)
	select {
	case <-ctx.Done():
	case err := <-errc:
		log.Error("exec server failed", "err", err)
	}
	srv.Close()
	log.Info("sandbox stopped")
	return 0
}
