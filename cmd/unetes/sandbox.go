package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"syscall"
	"time"

	"github.com/unetes/unetes/embed"
	"github.com/unetes/unetes/embed/addons"
	"github.com/unetes/unetes/hostfwd"
	"github.com/unetes/unetes/netstack"
	"github.com/unetes/unetes/nsinit"
	"k8s.io/klog/v2"
)

// Files in the state dir: the in-namespace components' status, containerd's
// socket (for ctr, crictl, nerdctl), and the snapshotter containerd chose.
const (
	sandboxSocketName    = "sandbox.sock"
	containerdSocketName = "containerd.sock"
	snapshotterFileName  = "containerd.snapshotter"
	dockerSocketName     = "docker.sock"
)

type sandboxArgs struct {
	name              string
	stateDir, dataDir string
	kubernetes        bool
	docker            bool
	limitsEnforced    bool
	cgroupRoot        string
	nodeIP            string
	upstreamDNS       string
	disable           string
	lbAddress         string
	lbIngress         string
	apiEndpoint       string
	hostTCPCongestion string
	diskFree          string
	joinServer        string
	nodeAddress       string
	nodeName          string
	debug             bool
}

// runSandbox is the long-lived process inside the namespaces (hidden role
// `_sandbox`): it serves `unetes exec`, runs containerd and, with
// Kubernetes, the control plane, the kubelet (a child) and kube-proxy.
func runSandbox(args []string, stdout, stderr io.Writer) int {
	var a sandboxArgs
	fs := newFlagSet("_sandbox", "_sandbox --name N --state-dir DIR --data-dir DIR [--kubernetes] [--limits-enforced]", stderr)
	fs.StringVar(&a.name, "name", nsinit.DefaultName, "instance name")
	fs.StringVar(&a.stateDir, "state-dir", "", "state dir of the instance")
	fs.StringVar(&a.dataDir, "data-dir", "", "data dir of the instance")
	fs.BoolVar(&a.kubernetes, "kubernetes", false, "run the control plane and the node")
	fs.BoolVar(&a.docker, "docker", false, "run dockerd (the Docker Engine API) on the instance's containerd")
	fs.BoolVar(&a.limitsEnforced, "limits-enforced", false, "cgroups are delegated: enforce pod limits")
	fs.StringVar(&a.cgroupRoot, "cgroup-root", "", "with --limits-enforced: the delegated cgroup for the kubelet's pods")
	fs.StringVar(&a.nodeIP, "node-ip", "10.0.2.100", "the namespace's address")
	fs.StringVar(&a.upstreamDNS, "upstream-dns", "10.0.2.3", "the NAT's DNS relay, where cluster DNS forwards other names")
	fs.StringVar(&a.disable, "disable", "", "add-ons not to run (comma-separated)")
	fs.StringVar(&a.lbAddress, "lb-address", "127.0.0.1", "host address LoadBalancer Services and hostPorts are published on")
	fs.StringVar(&a.lbIngress, "lb-ingress", "127.0.0.1", "the address LoadBalancer Services' status gives")
	fs.StringVar(&a.apiEndpoint, "api-endpoint", "127.0.0.1:6443", "HOST:PORT where the host publishes the Kubernetes API (cluster-info gives it to joining nodes)")
	fs.StringVar(&a.hostTCPCongestion, "host-tcp-congestion", "", "the host's default TCP congestion control, which pods' namespaces start with")
	fs.StringVar(&a.diskFree, "eviction-disk-free", embed.DefaultDiskFree.String(), "free space below which the kubelet evicts pods")
	fs.StringVar(&a.joinServer, "join-server", "", "a joined node: the cluster's API URL (the control plane runs there)")
	fs.StringVar(&a.nodeAddress, "node-address", "", "with --join-server: the node's address, its host's")
	fs.StringVar(&a.nodeName, "node-name", "", "with --join-server: the node's name")
	fs.BoolVar(&a.debug, "debug", false, "debug logging")
	if err := fs.Parse(args); err != nil || a.stateDir == "" || a.dataDir == "" {
		return 2
	}
	diskFree, err := embed.ParseDiskFree(a.diskFree)
	if err != nil {
		fmt.Fprintf(stderr, "unetes sandbox: --eviction-disk-free %v\n", err)
		return 2
	}
	log := newLogger(stderr, "sandbox", a.debug)
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer cancel()
	// Stopped during start-up, the apiserver's post-start hooks fail and
	// call klog.Fatal: while stopping, that ends their goroutine, not the
	// sandbox, which is on its way out anyway.
	klog.OsExit = func(code int) {
		if ctx.Err() != nil {
			runtime.Goexit()
		}
		os.Exit(code)
	}
	// iptables, nft and ip live in sbin, which a user's PATH often lacks.
	os.Setenv("PATH", withSbin(os.Getenv("PATH")))

	execSrv, err := serveExec(a.stateDir, log)
	if err != nil {
		fmt.Fprintf(stderr, "unetes sandbox: %v\n", err)
		return 1
	}
	defer execSrv.Close()
	log.Info("sandbox ready", "exec", filepath.Join(a.stateDir, nsinit.ExecSocketName))

	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "unetes sandbox: %v\n", err)
		return 1
	}
	cfg := embed.DefaultConfig(a.name, a.dataDir, a.stateDir, net.ParseIP(a.nodeIP), log.With("component", "controlplane"))
	cfg.Progress = func(phase string, took time.Duration) { log.Info("phase", "phase", phase, "took", took) }
	var join *embed.JoinConfig
	if a.joinServer != "" {
		join = &embed.JoinConfig{Server: a.joinServer, Dir: filepath.Join(a.dataDir, embed.JoinDirName)}
		cfg.NodeIP, cfg.NodeName = net.ParseIP(a.nodeAddress), a.nodeName
		if cfg.NodeIP == nil || cfg.NodeName == "" {
			fmt.Fprintf(stderr, "unetes sandbox: --join-server needs --node-address IP and --node-name NAME\n")
			return 2
		}
	}
	disabled, err := addons.ParseDisable(a.disable)
	if err != nil {
		fmt.Fprintf(stderr, "unetes sandbox: %v\n", err)
		return 2
	}
	nc := embed.NodeConfig{Config: cfg, LimitsEnforced: a.limitsEnforced, CgroupRoot: a.cgroupRoot, ProxyMode: embed.DetectProxyMode(),
		ContainerdSock: filepath.Join(a.stateDir, containerdSocketName)}
	nc.PodTCPCongestion = podCongestion(a.hostTCPCongestion, log)
	nc.DiskFree = diskFree
	nc.Join = join
	if ov, err := overlayAddr(a, join != nil); err != nil {
		fmt.Fprintf(stderr, "unetes sandbox: %v\n", err)
		return 2
	} else if ov != nil {
		nc.Overlay = &embed.OverlayConfig{HostAddr: ov, Link: netstack.TAPName}
		link, err := net.InterfaceByName(netstack.TAPName)
		if err != nil {
			fmt.Fprintf(stderr, "unetes sandbox: the namespace's interface %s: %v\n", netstack.TAPName, err)
			return 1
		}
		nc.PodMTU = link.MTU - embed.VXLANOverhead
		if join == nil {
			// Nodes join this server: their pods reach its apiserver and
			// DNS at its pod gateway, across the overlay.
			podCIDR, err := cfg.PodCIDR()
			if err == nil {
				cfg.OverlayIP, err = embed.PodGateway(podCIDR)
			}
			if err != nil {
				fmt.Fprintf(stderr, "unetes sandbox: %v\n", err)
				return 1
			}
			nc.Config = cfg
		}
	}
	if !slices.Contains(disabled, addons.DNS) {
		ip, err := cfg.DNSServiceIP()
		if err != nil {
			fmt.Fprintf(stderr, "unetes sandbox: %v\n", err)
			return 1
		}
		nc.ClusterDNS = ip.String()
	}
	cp := embed.New(cfg)
	var adds *addons.Set
	if a.kubernetes {
		adds = addons.New(disabled, log.With("component", "addons"))
	}
	var docker *embed.Dockerd
	if a.docker {
		docker = embed.NewDockerd(dockerConfig(cfg, a), log.With("component", "docker"))
	}
	status := serveStatus(a.stateDir, func() any { return componentStatus(cp, adds, docker) })
	defer status.Close()
	code := 0
	// Stopped during start-up, a half-started component may not end on
	// request: the process then exits anyway startupStopGrace after the stop.
	// etcd's log and containerd's database survive an exit, and the kubelet
	// dies with this process.
	unwatch := context.AfterFunc(ctx, func() {
		time.AfterFunc(startupStopGrace, func() {
			log.Warn("stopped during start-up: not every component ended in time; exiting", "waited", startupStopGrace)
			os.Exit(0)
		})
	})
	err = startComponents(ctx, cp, adds, docker, nc, a, self)
	if ctx.Err() == nil {
		unwatch() // started or failed: any later stop is the orderly one
	}
	stopCP := cp.Stop
	if err != nil && ctx.Err() != nil {
		stopCP = cp.Abort
		log.Info("stopped during start-up", "err", err)
	} else if err != nil {
		log.Error("start failed", "err", err)
		fmt.Fprintf(stderr, "unetes sandbox: %v\n", err)
		code = 1
	} else {
		log.Info("components ready")
		settleMemory(sandboxGCPercent, cp.MappedFiles()...)
		code = superviseComponents(ctx, cp, adds, log)
	}
	if docker != nil {
		// dockerd stops its containers (up to its shutdown timeout) while
		// the rest stops; containerd, which they run on, waits for it.
		stopped := make(chan struct{})
		cp.HoldContainerd(stopped)
		go func() { docker.Stop(); close(stopped) }()
	}
	if adds != nil {
		adds.Stop()
	}
	stopCP()
	log.Info("sandbox stopped")
	return code
}

// startupStopGrace bounds a stop during start-up: the parent kills the
// instance 15 s after asking it to stop.
const startupStopGrace = 8 * time.Second

// superviseComponents waits for a stop or a failure: a component's ends
// the sandbox; an add-on's is reported and the cluster runs on without it.
func superviseComponents(ctx context.Context, cp *embed.ControlPlane, adds *addons.Set, log *slog.Logger) int {
	var addonErr <-chan error
	if adds != nil {
		addonErr = adds.Err()
	}
	for {
		select {
		case <-ctx.Done():
			return 0
		case err := <-cp.Err():
			log.Error("component failed", "err", err)
			return 1
		case err := <-addonErr:
			log.Error("add-on failed; the cluster runs on without it", "err", err)
		}
	}
}

func componentStatus(cp *embed.ControlPlane, adds *addons.Set, docker *embed.Dockerd) []embed.ComponentStatus {
	sts := cp.Status()
	if docker != nil {
		sts = append(sts, docker.Status())
	} else {
		sts = append(sts, embed.ComponentStatus{Name: embed.Docker, State: "disabled"})
	}
	if adds != nil {
		sts = append(sts, adds.Status()...)
	}
	return sts
}

// dockerConfig is where dockerd keeps its files and what it serves on.
func dockerConfig(cfg embed.Config, a sandboxArgs) embed.DockerConfig {
	return embed.DockerConfig{
		Socket:         filepath.Join(a.stateDir, dockerSocketName),
		DataRoot:       filepath.Join(a.dataDir, "docker"),
		ExecRoot:       "/run/docker", // the namespace's own /run
		ContainerdSock: filepath.Join(a.stateDir, containerdSocketName),
		PortsDir:       filepath.Join(a.stateDir, dockerPortsDirName),
		LogPath:        filepath.Join(cfg.LogDir(), "docker.log"),
		PortIP:         a.lbAddress,
		NoBrNetfilter:  !embed.BrNetfilterLoaded(),
		PodLimits:      a.limitsEnforced,
		BeforeStart:    withdrawDockerPorts(a.stateDir),
	}
}

// withdrawDockerPorts asks the parent to drop the ports docker published
// (a dockerd that died leaves them), retrying while its API socket is not
// up yet: the run process opens it as the sandbox starts.
func withdrawDockerPorts(stateDir string) func(context.Context) error {
	return func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		p := apiPublisher{apiClient(stateDir)}
		for {
			err := p.Publish(ctx, hostfwd.OwnerDocker, nil)
			if err == nil {
				return nil
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("withdraw docker's ports: %w", err)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
}

// startComponents brings up containerd and, with Kubernetes, the control
// plane (at the same time: neither needs the other), then the node and the
// add-ons (again at the same time). dockerd starts once containerd runs,
// beside the rest.
func startComponents(ctx context.Context, cp *embed.ControlPlane, adds *addons.Set, docker *embed.Dockerd, nc embed.NodeConfig, a sandboxArgs, self string) error {
	ctrd := make(chan error, 1)
	dockerc := make(chan error, 1)
	go func() {
		err := cp.StartContainerd(ctx, nc)
		if err == nil {
			os.WriteFile(filepath.Join(a.stateDir, snapshotterFileName), []byte(cp.Snapshotter()), 0o600)
		}
		ctrd <- err
		if err == nil && docker != nil {
			err = docker.Start(ctx, cp.Helper(embed.DockerdHelper), cp.Snapshotter())
		}
		dockerc <- err
	}()
	// A failed dockerd is reported in its status, which fails the run's
	// start-up (it waits for docker as for the add-ons); it does not end
	// the sandbox.
	defer func() {
		if docker != nil {
			<-dockerc
		}
	}()
	if nc.Join != nil { // a joined node: no control plane, no add-ons here
		if err := <-ctrd; err != nil {
			return fmt.Errorf("containerd: %w", err)
		}
		if err := cp.StartJoinedNode(ctx, self); err != nil {
			return fmt.Errorf("node: %w", err)
		}
		return nil
	}
	var cpErr error
	if a.kubernetes {
		cpErr = cp.Start(ctx)
	}
	if err := <-ctrd; err != nil {
		return fmt.Errorf("containerd: %w", err)
	}
	if cpErr != nil {
		return fmt.Errorf("control plane: %w", cpErr)
	}
	if !a.kubernetes {
		return nil
	}
	node := make(chan error, 1)
	go func() { node <- cp.StartNode(ctx, self) }()
	env, err := addonEnv(cp, nc, a)
	if err == nil {
		err = adds.Start(ctx, env)
	}
	if err := <-node; err != nil {
		return fmt.Errorf("node: %w", err)
	}
	return err
}

// addonEnv is what the add-ons are started with, from the control plane.
func addonEnv(cp *embed.ControlPlane, nc embed.NodeConfig, a sandboxArgs) (addons.Env, error) {
	cfg := nc.Config
	rc, err := cp.AdminConfig()
	if err != nil {
		return addons.Env{}, err
	}
	pc, err := cfg.PKIConfig()
	if err != nil {
		return addons.Env{}, err
	}
	dnsIP, err := cfg.DNSServiceIP()
	if err != nil {
		return addons.Env{}, err
	}
	lbAddr, err := netip.ParseAddr(a.lbAddress)
	if err != nil {
		return addons.Env{}, fmt.Errorf("--lb-address: %w", err)
	}
	lbIngress, err := netip.ParseAddr(a.lbIngress)
	if err != nil {
		return addons.Env{}, fmt.Errorf("--lb-ingress: %w", err)
	}
	return addons.Env{Admin: rc, Kubeconfig: cp.WriteKubeconfig, PKIDir: pc.Dir, DataDir: cfg.DataDir, LogDir: cfg.LogDir(),
		NodeName: cfg.NodeName, NodeIP: cfg.NodeIP, OverlayIP: cfg.OverlayIP, ClusterDomain: cfg.ClusterDomain, DNSServiceIP: dnsIP, Upstream: a.upstreamDNS,
		PodCgroups: nc.LimitsEnforced, Publisher: apiPublisher{apiClient(a.stateDir)}, LBAddress: lbAddr, LBIngress: lbIngress,
		APIEndpoint: a.apiEndpoint}, nil
}

// withSbin appends the sbin directories missing from path.
func withSbin(path string) string {
	have := map[string]bool{}
	for _, d := range filepath.SplitList(path) {
		have[d] = true
	}
	for _, d := range nsinit.SbinDirs {
		if !have[d] {
			if path != "" {
				path += string(filepath.ListSeparator)
			}
			path += d
		}
	}
	return path
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

// overlayAddr is the host address the overlay's VXLAN packets use, nil
// for none: a joined node's (its host's), or the server's when its API is
// published beyond loopback (where nodes can join).
func overlayAddr(a sandboxArgs, joined bool) (net.IP, error) {
	if joined {
		return net.ParseIP(a.nodeAddress), nil
	}
	if !a.kubernetes {
		return nil, nil
	}
	host, _, err := net.SplitHostPort(a.apiEndpoint)
	if err != nil {
		return nil, fmt.Errorf("--api-endpoint %q: %w", a.apiEndpoint, err)
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return nil, fmt.Errorf("--api-endpoint %q: not an IP address", a.apiEndpoint)
	}
	if ip.IsLoopback() {
		return nil, nil
	}
	return ip, nil
}
