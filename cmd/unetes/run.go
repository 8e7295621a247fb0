package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/rootless-containers/rootlesskit/v3/pkg/port"
	"github.com/unetes/unetes/embed"
	"github.com/unetes/unetes/hostfwd"
	"github.com/unetes/unetes/netstack"
	"github.com/unetes/unetes/nsinit"
)

type runArgs struct {
	inst              instanceFlags
	noKubernetes      bool
	allowHostLoopback bool
	mtu               int
	resolvConf        string
	apiPort           int
	debug             bool
	cpuProfile        string
	publish           stringList
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

type runConfig struct {
	name       string
	paths      nsinit.Paths
	user       nsinit.User
	net        netstack.Config
	publish    []hostfwd.Spec
	kubernetes bool
	apiPort    int
}

// resolveRun is the pure part of `unetes run`: flags and the host's
// resolv.conf content in, configuration out.
func resolveRun(a runArgs, paths nsinit.Paths, u nsinit.User, resolvConf []byte) (runConfig, error) {
	if a.apiPort < 1 || a.apiPort > 65535 {
		return runConfig{}, fmt.Errorf("--api-port %d is not a port from 1 to 65535", a.apiPort)
	}
	nc, err := netstack.Resolve(netstack.Args{MTU: a.mtu, AllowHostLoopback: a.allowHostLoopback}, resolvConf)
	if err != nil {
		if errors.Is(err, netstack.ErrNoResolvers) {
			return runConfig{}, fmt.Errorf("%w %s: add a nameserver line, or pass --resolv-conf FILE", err, a.resolvConf)
		}
		return runConfig{}, err
	}
	var pub []hostfwd.Spec
	for _, p := range a.publish {
		spec, err := hostfwd.ParseSpec(p)
		if err != nil {
			return runConfig{}, fmt.Errorf("--publish: %w", err)
		}
		pub = append(pub, spec)
	}
	return runConfig{name: a.inst.name, paths: paths, user: u, net: nc, publish: pub, kubernetes: !a.noKubernetes, apiPort: a.apiPort}, nil
}

func runRun(args []string, stdout, stderr io.Writer) int {
	var a runArgs
	fs := newFlagSet("run", "run [--name N] [--no-kubernetes] [--api-port N] [--allow-host-loopback] [--mtu N] [-p [IP:]HOSTPORT:PORT[/PROTO]]...", stderr)
	a.inst.register(fs)
	fs.BoolVar(&a.noKubernetes, "no-kubernetes", false, "run only the rootless sandbox, its NAT and forwards")
	fs.IntVar(&a.apiPort, "api-port", 6443, "host port (on 127.0.0.1) of the Kubernetes API")
	fs.BoolVar(&a.allowHostLoopback, "allow-host-loopback", false, "let connections to the gateway 10.0.2.2 reach the host's 127.0.0.1")
	fs.IntVar(&a.mtu, "mtu", netstack.DefaultMTU, "MTU of the namespace's interface")
	fs.StringVar(&a.resolvConf, "resolv-conf", "/etc/resolv.conf", "resolv.conf whose nameservers the DNS relay at 10.0.2.3 forwards to")
	fs.BoolVar(&a.debug, "debug", false, "log every NAT decision")
	fs.Var(&a.publish, "publish", "forward a host port at start, [IP:]HOSTPORT:PORT[/tcp|/udp] (repeatable; saved like `unetes forward`)")
	fs.Var(&a.publish, "p", "short for --publish")
	fs.StringVar(&a.cpuProfile, "cpuprofile", "", "write a CPU profile of the run process (NAT included) to FILE")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "unetes run: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	paths, err := a.inst.paths()
	if err != nil {
		return fail(stderr, err)
	}
	u, _ := currentUser()
	rc, err := os.ReadFile(a.resolvConf)
	if err != nil {
		return fail(stderr, fmt.Errorf("read %s: %w (pass --resolv-conf FILE)", a.resolvConf, err))
	}
	cfg, err := resolveRun(a, paths, u, rc)
	if err != nil {
		return fail(stderr, err)
	}
	if a.cpuProfile != "" {
		stopProfile, err := startCPUProfile(a.cpuProfile)
		if err != nil {
			return fail(stderr, err)
		}
		defer stopProfile()
	}
	if err := startAndServe(cfg, stdout, stderr, a.debug); err != nil {
		return fail(stderr, err)
	}
	return 0
}

func startAndServe(cfg runConfig, stdout, stderr io.Writer, debug bool) error {
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer cancel()
	log := newLogger(stderr, "parent", debug)
	driver := netstack.NewParentDriver(cfg.net, log.With("component", "netstack"))
	var fwd *hostfwd.Manager
	newPorts := func(stateDir string) (port.ParentDriver, error) {
		m, err := hostfwd.New(hostfwd.Config{StateDir: stateDir, DataDir: cfg.paths.DataDir, PreserveSourceIP: true}, log.With("component", "hostfwd"))
		fwd = m
		return m, err
	}
	fmt.Fprintf(stdout, "unetes: starting instance %q (state %s)\n", cfg.name, cfg.paths.StateDir)
	start := time.Now()
	progress := func(phase string, took time.Duration) {
		fmt.Fprintf(stdout, "unetes:   %-18s %6.0f ms\n", phase, took.Seconds()*1000)
	}
	childArgs := []string{"_child", "--state-dir", cfg.paths.StateDir}
	var pki *embed.PKI
	if cfg.kubernetes {
		if err := checkAPIPort(cfg.apiPort); err != nil {
			return err
		}
		var err error
		if pki, err = prepareCerts(cfg); err != nil {
			return err
		}
		progress("certs", time.Since(start))
		childArgs = append(childArgs, "--kubernetes", "--data-dir", cfg.paths.DataDir)
	}
	inst, err := nsinit.Start(ctx, nsinit.Config{
		Name:      cfg.name,
		Paths:     cfg.paths,
		User:      cfg.user,
		ChildArgs: childArgs,
		Network:   driver,
		Ports:     newPorts,
		Ready:     func(ctx context.Context) error { return waitSandbox(ctx, driver, cfg.paths.StateDir) },
		Progress:  progress,
		Log:       log,
	})
	if err != nil {
		return err
	}
	defer fwd.Close()
	warnings, err := fwd.Restore(ctx, cfg.publish)
	for _, w := range warnings {
		fmt.Fprintf(stderr, "unetes: warning: %v\n", w)
	}
	if err != nil {
		inst.Stop(10 * time.Second)
		return err
	}
	stopReq := make(chan struct{}, 1)
	api, err := serveAPI(cfg, inst, driver, fwd, stopReq)
	if err != nil {
		inst.Stop(10 * time.Second)
		return err
	}
	defer api.Close()
	if sts, _ := fwd.ListPorts(ctx); len(sts) > 0 {
		fmt.Fprintf(stdout, "unetes: forwarding %s\n", describeForwards(sts))
	}
	kubeconfig := ""
	if cfg.kubernetes {
		if kubeconfig, err = bringUpKubernetes(ctx, cfg, inst, fwd, pki, progress); err != nil {
			inst.Stop(15 * time.Second)
			return fmt.Errorf("%w (see `unetes logs --name %s child` and `... kubernetes`)", err, cfg.name)
		}
	}
	loop := "closed"
	if cfg.net.AllowHostLoopback {
		loop = "open (--allow-host-loopback)"
	}
	fmt.Fprintf(stdout, "unetes: instance %q ready in %.2fs: %s/%d via %s, DNS %s, MTU %d, host loopback %s\n",
		cfg.name, time.Since(start).Seconds(), cfg.net.Guest, cfg.net.Subnet.Bits(), cfg.net.Gateway, cfg.net.DNS, cfg.net.MTU, loop)
	if kubeconfig != "" {
		fmt.Fprintf(stdout, "unetes: Kubernetes API at https://127.0.0.1:%d; use it with\n  export KUBECONFIG=%s\nor\n  unetes kubectl --name %s get namespaces\n", cfg.apiPort, kubeconfig, cfg.name)
	}
	fmt.Fprintf(stdout, "unetes: try `unetes exec --name %s -- ip addr`; stop with Ctrl-C or `unetes stop --name %s`\n", cfg.name, cfg.name)
	select {
	case <-ctx.Done():
	case <-stopReq:
	case <-inst.Done():
		return fmt.Errorf("instance exited unexpectedly: %v (see %s)", inst.Wait(), filepath.Join(cfg.paths.StateDir, "logs", "child.log"))
	}
	fmt.Fprintf(stdout, "unetes: stopping instance %q\n", cfg.name)
	err = inst.Stop(15 * time.Second)
	fmt.Fprintf(stdout, "unetes: instance %q stopped\n", cfg.name)
	return err
}

// waitSandbox returns when the NAT runs and the process inside answers.
func waitSandbox(ctx context.Context, d *netstack.ParentDriver, stateDir string) error {
	select {
	case <-d.Ready():
		if err := d.Err(); err != nil {
			return err
		}
	case <-ctx.Done():
		return fmt.Errorf("no TAP device from the child: %w", ctx.Err())
	}
	sock := filepath.Join(stateDir, nsinit.ExecSocketName)
	for {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the process inside did not open %s: %w", sock, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}
