package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/rootless-containers/rootlesskit/v3/pkg/port"
	"github.com/unetes/unetes/embed"
	"github.com/unetes/unetes/embed/addons"
	"github.com/unetes/unetes/hostfwd"
	"github.com/unetes/unetes/netstack"
	"github.com/unetes/unetes/nsinit"
)

// session is one `unetes run`, from start to stop, in named steps.
type session struct {
	cfg            runConfig
	stdout, stderr io.Writer
	log            *slog.Logger
	start          time.Time

	driver *netstack.ParentDriver
	fwd    *hostfwd.Manager
	pki    *embed.PKI
	inst   *nsinit.Instance
	// stopFollow ends the watch that keeps forwards on their Services.
	stopFollow func()
	// phases are run's start-up phases so far, for `run -v`.
	phases []phase
}

func startAndServe(cfg runConfig, stdout, stderr io.Writer, debug bool) error {
	sig, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer cancel()
	// life ends with a signal or `unetes stop`, during start-up too.
	life, stop := context.WithCancel(sig)
	defer stop()
	s := &session{cfg: cfg, stdout: stdout, stderr: stderr, log: newLogger(stderr, "parent", debug), start: time.Now()}
	fmt.Fprintf(stdout, "unetes: starting instance %q (state %s)\n", cfg.name, cfg.paths.StateDir)
	if err := s.startSandbox(life); err != nil {
		if life.Err() != nil {
			return s.stoppedDuringStartUp()
		}
		return err
	}
	defer s.fwd.Close()
	api, kubeconfig, err := s.bringUp(life, stop)
	if err != nil {
		if life.Err() != nil {
			return s.stoppedDuringStartUp()
		}
		s.inst.Stop(15 * time.Second)
		return err
	}
	defer api.Close()
	s.printReady(kubeconfig)
	settleMemory(smallGCPercent)
	return s.serveUntilStopped(life)
}

// stoppedDuringStartUp stops what has started after a stop was asked for
// during start-up: not a failure.
func (s *session) stoppedDuringStartUp() error {
	if s.inst != nil {
		if err := s.inst.Stop(15 * time.Second); err != nil {
			return err
		}
	}
	fmt.Fprintf(s.stdout, "unetes: instance %q stopped during start-up\n", s.cfg.name)
	return nil
}

// prepareCgroup decides whether pods get limits (a delegated cgroup v2
// whose leaf can be made; a failure leaves limits off, said plainly) and
// returns the sandbox's flags for it; nsinit.Start does the rest (cgroup
// namespace, processes into the leaf). s.cfg.cgroup is what status reports.
func (s *session) prepareCgroup() []string {
	var args []string
	if s.cfg.cgroup.Enforced() {
		leaf := filepath.Join("/sys/fs/cgroup", s.cfg.cgroup.Path, nsinit.CgroupInit)
		if err := os.Mkdir(leaf, 0o755); err != nil && !os.IsExist(err) {
			fmt.Fprintf(s.stdout, "unetes: warning: cgroup %s is delegated but could not be prepared for pods (%v)\n", s.cfg.cgroup.Path, err)
			s.cfg.cgroup.Delegated = false
		} else {
			// The cgroup namespace's root: the delegated cgroup.
			args = []string{"--limits-enforced", "--cgroup-root", "/"}
		}
	}
	if s.cfg.cgroup.Enforced() {
		fmt.Fprintf(s.stdout, "unetes: resource limits are enforced (%s)\n", cgroupWhy(s.cfg.cgroup))
	} else {
		fmt.Fprintf(s.stdout, "unetes: resource limits are NOT enforced on this host (%s); pods with limits run without them, and `kubectl top pod` has no figures (nothing measures a pod on its own). `unetes doctor` says how to delegate cgroups.\n", cgroupWhy(s.cfg.cgroup))
	}
	if s.cfg.docker {
		fmt.Fprintln(s.stdout, dockerLimitsNote)
	}
	for _, n := range s.cfg.proxy.Notes {
		fmt.Fprintln(s.stdout, "unetes: "+n)
	}
	return args
}

// dockerLimitsNote says what becomes of `docker run --memory/--cpus`:
// rootless dockerd applies cgroup limits only through systemd's cgroup
// driver, and unetes runs without systemd; unetes' authorization plugin
// refuses them (embed/dockerlimits.go) rather than let dockerd drop them.
const dockerLimitsNote = "unetes: docker containers' resource limits (--memory, --cpus, --pids-limit, ...) are NOT enforced (a rootless dockerd applies them only through systemd, which unetes does not use): docker refuses containers that ask for them, with a message that says so"

func (s *session) progress(name string, took time.Duration) {
	s.phases = append(s.phases, phase{who: "run", what: name, end: time.Now(), took: took})
	fmt.Fprintf(s.stdout, "unetes:   %-18s %6.0f ms\n", name, took.Seconds()*1000)
}

// childLog is the sandbox's log, which has its phases.
func (s *session) childLog() string { return filepath.Join(s.cfg.paths.StateDir, "logs", "child.log") }

// startSandbox prepares certificates when Kubernetes runs, then creates the
// namespaces with the NAT and the port driver.
func (s *session) startSandbox(ctx context.Context) error {
	cfg := s.cfg
	s.driver = netstack.NewParentDriver(cfg.net, s.log.With("component", "netstack"))
	childArgs := []string{"_child", "--", "--name", cfg.name, "--state-dir", cfg.paths.StateDir, "--data-dir", cfg.paths.DataDir,
		"--node-ip", cfg.net.Guest.String(), "--upstream-dns", cfg.net.DNS.String()}
	// What can refuse the start comes before anything is written: the
	// instance already running, the host's prerequisites, the API port.
	// nsinit.Start checks the first two again under the instance's lock.
	if pid, err := nsinit.RunningPID(cfg.paths.StateDir); err == nil {
		return &nsinit.RunningError{Name: cfg.name, PID: pid}
	}
	if failed := nsinit.Failed(nsinit.Doctor(nsinit.LiveHost{}, cfg.user)); len(failed) > 0 {
		return &nsinit.PrereqError{Checks: failed}
	}
	if cfg.kubernetes {
		if err := checkAPIPort(cfg.apiAddress, cfg.apiPort); err != nil {
			return err
		}
		var err error
		if s.pki, err = prepareCerts(cfg); err != nil {
			return err
		}
		s.progress("certs", time.Since(s.start))
		childArgs = append(childArgs, "--kubernetes", "--disable", strings.Join(cfg.disabled, ","), "--lb-ingress", cfg.lbIngress.String(),
			"--eviction-disk-free", cfg.diskFree.String(), "--api-endpoint", cfg.apiEndpoint())
	}
	if j := cfg.join; j != nil {
		childArgs = append(childArgs, "--join-server", j.Server, "--node-address", j.Address, "--node-name", j.Node,
			"--eviction-disk-free", cfg.diskFree.String())
	}
	childArgs = append(childArgs, "--lb-address", cfg.lbAddress.String())
	// The host's TCP default, which the pods' namespaces start with: the
	// sandbox cannot read it from inside.
	hostCC, ccErr := netstack.Congestion()
	if ccErr == nil {
		childArgs = append(childArgs, "--host-tcp-congestion", hostCC)
	}
	if cfg.docker {
		childArgs = append(childArgs, "--docker")
	}
	childArgs = append(childArgs, s.prepareCgroup()...)
	var cg *nsinit.CgroupMode
	if s.cfg.cgroup.Enforced() {
		cg = &s.cfg.cgroup
	}
	newPorts := func(stateDir string) (port.ParentDriver, error) {
		m, err := hostfwd.New(hostfwd.Config{StateDir: stateDir, DataDir: cfg.paths.DataDir, PreserveSourceIP: true,
			UnpaceLoopback: netstack.Paces(hostCC)}, s.log.With("component", "hostfwd"))
		s.fwd = m
		return m, err
	}
	inst, err := nsinit.Start(ctx, nsinit.Config{
		Name:      cfg.name,
		Paths:     cfg.paths,
		User:      cfg.user,
		ChildArgs: childArgs,
		Env:       cfg.proxy.Env,
		Network:   s.driver,
		Ports:     newPorts,
		Ready:     func(ctx context.Context) error { return waitSandbox(ctx, s.driver, cfg.paths.StateDir) },
		Progress:  s.progress,
		Locked:    releaseLaunchLock,
		Log:       s.log,
		Cgroup:    cg,
	})
	s.inst = inst
	return err
}

// bringUp restores the forwards, opens the API socket and, with Kubernetes,
// waits for the control plane and writes the kubeconfig.
func (s *session) bringUp(ctx context.Context, stop func()) (io.Closer, string, error) {
	if s.cfg.kubernetes {
		if err := forwardAPI(ctx, s.cfg, s.fwd); err != nil {
			return nil, "", err
		}
	}
	if s.cfg.join != nil {
		if err := forwardKubelet(ctx, *s.cfg.join, s.fwd); err != nil {
			return nil, "", err
		}
	}
	warnings, err := s.fwd.Restore(ctx, s.cfg.publish)
	for _, w := range warnings {
		fmt.Fprintf(s.stderr, "unetes: warning: %v\n", w)
	}
	if err != nil {
		return nil, "", err
	}
	api, err := serveAPI(s.cfg, s.inst, s.driver, s.fwd, stop)
	if err != nil {
		return nil, "", err
	}
	if d := describeForwards(s.fwd.List(ctx)); d != "" {
		fmt.Fprintf(s.stdout, "unetes: forwarding %s\n", d)
	}
	if s.cfg.join != nil {
		if err := s.waitJoined(ctx); err != nil {
			api.Close()
			return nil, "", err
		}
		return api, "", nil
	}
	if !s.cfg.kubernetes {
		s.fwd.NoServices("this instance runs without Kubernetes (--no-kubernetes)")
		t := time.Now()
		if err := poll(ctx, s.inst, 3*time.Minute, "containerd", func(ctx context.Context) error {
			return componentsReady(ctx, s.cfg.paths.StateDir, embed.Containerd)
		}); err != nil {
			api.Close()
			return nil, "", fmt.Errorf("%w (see `unetes logs --name %s containerd`)", err, s.cfg.name)
		}
		s.progress("containerd", time.Since(t))
		if err := s.waitDocker(ctx); err != nil {
			api.Close()
			return nil, "", err
		}
		return api, "", nil
	}
	kubeconfig, err := bringUpKubernetes(ctx, s.cfg, s.inst, s.pki, s.progress)
	if err == nil {
		err = s.followServices(ctx)
	}
	if err != nil {
		api.Close()
		return nil, "", fmt.Errorf("%w (see `unetes logs --name %s child` and `... kubernetes`)", err, s.cfg.name)
	}
	if err := s.waitDocker(ctx); err != nil {
		api.Close()
		return nil, "", err
	}
	return api, kubeconfig, nil
}

// waitDocker waits for dockerd, which starts beside the rest once
// containerd runs.
func (s *session) waitDocker(ctx context.Context) error {
	if !s.cfg.docker {
		return nil
	}
	t := time.Now()
	if err := poll(ctx, s.inst, 3*time.Minute, "docker", func(ctx context.Context) error {
		return componentsReady(ctx, s.cfg.paths.StateDir, embed.Docker)
	}); err != nil {
		return fmt.Errorf("%w (see `unetes logs --name %s docker`; `unetes run --disable docker` runs without it)", err, s.cfg.name)
	}
	s.progress("docker", time.Since(t))
	return nil
}

// followServices starts the saved forwards to Services and keeps them on
// their Services until ctx ends.
func (s *session) followServices(ctx context.Context) error {
	client, err := embed.AdminClient(s.pki)
	if err != nil {
		return err
	}
	warn := func(err error) { fmt.Fprintf(s.stderr, "unetes: warning: %v\n", err) }
	warnings, stop, err := followServices(ctx, s.fwd, client, s.cfg.apiServer(), warn)
	s.stopFollow = stop
	for _, w := range warnings {
		fmt.Fprintf(s.stderr, "unetes: warning: saved forward not restored: %v\n", w)
	}
	return err
}

func (s *session) printReady(kubeconfig string) {
	cfg := s.cfg
	loop := "closed"
	if cfg.net.AllowHostLoopback {
		loop = "open (--allow-host-loopback)"
	}
	v6 := ""
	if cfg.net.Guest6.IsValid() {
		v6 = fmt.Sprintf(" and %s/%d via %s", cfg.net.Guest6, cfg.net.Subnet6.Bits(), cfg.net.Gateway6)
	}
	fmt.Fprintf(s.stdout, "unetes: instance %q ready in %.2fs: %s/%d via %s%s, DNS %s, MTU %d, host loopback %s\n",
		cfg.name, time.Since(s.start).Seconds(), cfg.net.Guest, cfg.net.Subnet.Bits(), cfg.net.Gateway, v6, cfg.net.DNS, cfg.net.MTU, loop)
	if cfg.verbose {
		s.printPhaseTable()
	}
	if snap, _ := os.ReadFile(filepath.Join(cfg.paths.StateDir, snapshotterFileName)); string(snap) == "native" {
		fmt.Fprintln(s.stdout, "unetes: warning: overlayfs is not allowed in this user namespace (kernel < 5.11?): containerd uses the native snapshotter, which copies every layer (slower, more disk)")
	}
	if j := cfg.join; j != nil {
		fmt.Fprintf(s.stdout, "unetes: node %s joined the cluster at %s; `unetes kubectl get nodes` on the server lists it\n", j.Node, j.Server)
	}
	if kubeconfig != "" {
		fmt.Fprintf(s.stdout, "unetes: Kubernetes API at %s; use it with\n  export KUBECONFIG=%s\nor\n  unetes kubectl --name %s get namespaces\n", cfg.apiServer(), kubeconfig, cfg.name)
	}
	if kubeconfig != "" && !cfg.apiAdvertise.IsLoopback() && slices.Contains(cfg.addons(), addons.Join) {
		// As kubeadm init does: the command, token included, for the
		// user who started the cluster (`unetes token` reprints it).
		if tok, hash, _, err := joinCredentials(cfg.name, cfg.paths.DataDir); err == nil {
			fmt.Fprintf(s.stdout, "unetes: nodes on other hosts join with\n  %s\n", joinCommand(cfg.apiEndpoint(), tok, hash))
		}
	}
	if cfg.docker {
		fmt.Fprintf(s.stdout, "unetes: Docker API at unix://%s; use it with\n  eval \"$(unetes docker-env --name %s)\"\n", filepath.Join(cfg.paths.StateDir, dockerSocketName), cfg.name)
	}
	fmt.Fprintf(s.stdout, "unetes: try `unetes exec --name %s -- ip addr`; stop with Ctrl-C or `unetes stop --name %s`\n", cfg.name, cfg.name)
}

// serveUntilStopped waits for a signal, `unetes stop`, or the instance's end.
func (s *session) serveUntilStopped(life context.Context) error {
	select {
	case <-life.Done():
	case <-s.inst.Done():
		return fmt.Errorf("instance exited unexpectedly: %v (see %s)", s.inst.Wait(), s.childLog())
	}
	fmt.Fprintf(s.stdout, "unetes: stopping instance %q\n", s.cfg.name)
	if s.stopFollow != nil {
		s.stopFollow()
	}
	err := s.inst.Stop(15 * time.Second)
	fmt.Fprintf(s.stdout, "unetes: instance %q stopped\n", s.cfg.name)
	return err
}
