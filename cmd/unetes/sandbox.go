package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/unetes/unetes/embed"
	"github.com/unetes/unetes/nsinit"
)

// sandboxSocketName serves the in-namespace components' status.
const sandboxSocketName = "sandbox.sock"

type sandboxArgs struct {
	stateDir, dataDir string
	kubernetes        bool
	nodeIP            string
	debug             bool
}

// runSandbox is the long-lived process inside the namespaces (hidden role
// `_sandbox`): it serves `unetes exec` and hosts the control plane.
func runSandbox(args []string, stdout, stderr io.Writer) int {
	var a sandboxArgs
	fs := newFlagSet("_sandbox", "_sandbox --state-dir DIR [--kubernetes --data-dir DIR]", stderr)
	fs.StringVar(&a.stateDir, "state-dir", "", "state dir of the instance")
	fs.StringVar(&a.dataDir, "data-dir", "", "data dir of the instance")
	fs.BoolVar(&a.kubernetes, "kubernetes", false, "run the control plane")
	fs.StringVar(&a.nodeIP, "node-ip", "10.0.2.100", "the namespace's address")
	fs.BoolVar(&a.debug, "debug", false, "debug logging")
	if err := fs.Parse(args); err != nil || a.stateDir == "" || (a.kubernetes && a.dataDir == "") {
		return 2
	}
	log := newLogger(stderr, "sandbox", a.debug)
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer cancel()

	execSrv, err := serveExec(a.stateDir, log)
	if err != nil {
		fmt.Fprintf(stderr, "unetes sandbox: %v\n", err)
		return 1
	}
	defer execSrv.Close()
	log.Info("sandbox ready", "exec", filepath.Join(a.stateDir, nsinit.ExecSocketName))

	var cp *embed.ControlPlane
	var cpErr <-chan error
	if a.kubernetes {
		cfg := embed.DefaultConfig(a.dataDir, a.stateDir, net.ParseIP(a.nodeIP), log.With("component", "controlplane"))
		cfg.Progress = func(phase string, took time.Duration) { log.Info("control plane phase", "phase", phase, "took", took) }
		cp = embed.New(cfg)
		status := serveStatus(a.stateDir, func() any { return cp.Status() })
		defer status.Close()
		if err = cp.Start(ctx); err != nil {
			log.Error("control plane failed to start", "err", err)
			fmt.Fprintf(stderr, "unetes sandbox: control plane: %v\n", err)
			return 1
		}
		cpErr = cp.Err()
		log.Info("control plane ready")
	}
	code := 0
	select {
	case <-ctx.Done():
	case err := <-cpErr:
		log.Error("component failed", "err", err)
		code = 1
	}
	if cp != nil {
		cp.Stop()
	}
	log.Info("sandbox stopped")
	return code
}

func serveExec(stateDir string, log *slog.Logger) (*nsinit.ExecServer, error) {
	sock := filepath.Join(stateDir, nsinit.ExecSocketName)
	l, err := listenPrivate(sock)
	if err != nil {
		return nil, err
	}
	srv := nsinit.NewExecServer(log)
	go srv.Serve(l)
	return srv, nil
}

// serveStatus answers GET /components on <state>/sandbox.sock with report().
func serveStatus(stateDir string, report func() any) io.Closer {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /components", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(report())
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	if l, err := listenPrivate(filepath.Join(stateDir, sandboxSocketName)); err == nil {
		go srv.Serve(l)
	}
	return srv
}
