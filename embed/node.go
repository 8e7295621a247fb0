package embed

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Node component names, as `unetes logs` and `unetes status` show them.
const (
	Containerd = "containerd"
	Kubelet    = "kubelet"
	KubeProxy  = "kube-proxy"
)

// RegistryDirName is the data dir's directory of per-registry settings:
// certs.d/HOST[:PORT]/hosts.toml, as containerd reads them (plain HTTP,
// mirrors, CAs).
const RegistryDirName = "certs.d"

// StartContainerd installs the helper binaries, writes the CNI network,
// starts containerd in this process, and imports the pause image and the
// tarballs in <data>/images. It runs with or without Kubernetes.
func (cp *ControlPlane) StartContainerd(ctx context.Context, nc NodeConfig) error {
	cp.node = nc
	t := time.Now()
	cp.set(Containerd, "starting", nil)
	err := cp.startContainerd(ctx)
	if err != nil {
		cp.set(Containerd, "failed", err)
		return err
	}
	cp.set(Containerd, "ready", nil)
	cp.phase("containerd", t)
	return nil
}

func (cp *ControlPlane) startContainerd(ctx context.Context) error {
	nc := cp.node
	for _, d := range ownRunDirs {
		if err := ownRunDir(d); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(cp.cfg.LogDir(), 0o700); err != nil {
		return err
	}
	bin, err := InstallHelpers(nc.DataDir)
	if err != nil {
		return err
	}
	cp.helpers = bin
	root := filepath.Join(nc.DataDir, "containerd")
	snap, why := ProbeSnapshotter(root)
	if snap == "" {
		return why
	}
	if snap == "native" && cp.cfg.Log != nil {
		cp.cfg.Log.Warn("overlayfs is not allowed in this user namespace; containerd uses the native snapshotter (slower, more disk)", "probe", why)
	}
	cp.snapshotter = snap
	confDir := nc.cniConfDir()
	if err := os.MkdirAll(confDir, 0o700); err != nil {
		return err
	}
	// A joined node's pod range is the one the cluster gives its Node:
	// StartJoinedNode writes the network once it is known (containerd
	// picks the file up when it appears).
	if nc.Join == nil {
		if err := writePodNetwork(ctx, nc); err != nil {
			return err
		}
	}
	runc, err := linkRuntime(nc, bin)
	if err != nil {
		return err
	}
	cc := ContainerdConfig{
		Root: root, State: "/run/containerd", Address: nc.ContainerdSock, Snapshotter: snap,
		ShimPath: filepath.Join(bin, "containerd-shim-runc-v2"), RuncPath: runc, CNIBinDir: bin, CNIConfDir: confDir, PauseImage: PauseImage,
		RegistryDir: filepath.Join(nc.DataDir, RegistryDirName),
	}
	if cp.ctrd, err = startContainerd(ctx, cc, nc.StateDir, filepath.Join(cp.cfg.LogDir(), "containerd.log")); err != nil {
		return err
	}
	store, err := OpenImageStore(nc.ContainerdSock, snap)
	if err != nil {
		return err
	}
	defer store.Close()
	if err := store.ImportPause(ctx, filepath.Join(bin, "pause")); err != nil {
		return fmt.Errorf("import the pause image: %w", err)
	}
	names, errs := store.ImportDir(ctx, filepath.Join(nc.DataDir, "images"))
	if cp.cfg.Log != nil {
		for _, e := range errs {
			cp.cfg.Log.Warn("image tarball not imported", "err", e)
		}
		if len(names) > 0 {
			cp.cfg.Log.Info("imported images", "images", names)
		}
	}
	return nil
}

// linkRuntime makes <state>/bin, first on PATH, with containerd-shim-runc-v2
// (containerd's own, an embedded helper: one runs per pod) and runc: the real
// one where limits are enforced, else the runc wrapper (cmd/runcwrap, also a
// helper: runc fails a container whose limits it cannot apply). ctr finds
// both by name; the CRI is given the paths.
func linkRuntime(nc NodeConfig, helpers string) (string, error) {
	dir := filepath.Join(nc.StateDir, "bin")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	runcTarget := filepath.Join(helpers, "runc")
	if !nc.LimitsEnforced {
		runcTarget = filepath.Join(helpers, "runc-wrapper")
	}
	for name, target := range map[string]string{"runc": runcTarget, "containerd-shim-runc-v2": filepath.Join(helpers, "containerd-shim-runc-v2")} {
		p := filepath.Join(dir, name)
		os.Remove(p)
		if err := os.Symlink(target, p); err != nil {
			return "", fmt.Errorf("link %s: %w", p, err)
		}
	}
	os.Setenv("PATH", dir+string(filepath.ListSeparator)+os.Getenv("PATH"))
	return filepath.Join(dir, "runc"), nil
}

// Snapshotter is the snapshotter containerd uses (after StartContainerd).
func (cp *ControlPlane) Snapshotter() string { return cp.snapshotter }

// Helper is the path of an embedded helper program (after StartContainerd).
func (cp *ControlPlane) Helper(name string) string { return filepath.Join(cp.helpers, name) }

// StartNode starts the kubelet (a child process: `self _kubelet`) and
// kube-proxy (in this process) once the control plane and containerd run.
func (cp *ControlPlane) StartNode(ctx context.Context, self string) error {
	t := time.Now()
	nc := cp.node
	kc, err := cp.WriteKubeconfig("kubelet-client")
	if err != nil {
		return err
	}
	if err := mountKubeletRoot(filepath.Join(nc.DataDir, "kubelet")); err != nil {
		return err
	}
	node, err := cp.nodeClient()
	if err != nil {
		return err
	}
	registered, err := node.markStarting(ctx)
	if err != nil {
		return err
	}
	confPath := filepath.Join(nc.StateDir, "kubelet.yaml")
	if err := os.WriteFile(confPath, []byte(kubeletConfig(nc)), 0o600); err != nil {
		return fmt.Errorf("kubelet config: %w", err)
	}
	cp.set(Kubelet, "starting", nil)
	if cp.kubelet, err = startChild(self, "_kubelet", FlagList(kubeletFlags(nc, confPath, kc), nil), filepath.Join(cp.cfg.LogDir(), "kubelet.log")); err != nil {
		cp.set(Kubelet, "failed", err)
		return err
	}
	cp.superviseKubelet()
	// kube-proxy needs the apiserver and its node: it starts while the
	// kubelet does, or as soon as the kubelet has registered the node.
	relay, err := newRelay("127.0.0.1:" + strconv.Itoa(nc.APIPort))
	if err != nil {
		return fmt.Errorf("kube-proxy relay: %w", err)
	}
	pkc, err := cp.writeKubeconfigTo("kube-proxy", relay.Addr())
	if err != nil {
		relay.Close()
		return err
	}
	pconf := filepath.Join(nc.StateDir, "kube-proxy.yaml")
	if err := os.WriteFile(pconf, []byte(kubeProxyConfig(nc, pkc)), 0o600); err != nil {
		return fmt.Errorf("kube-proxy config: %w", err)
	}
	proxy := cp.run(KubeProxy, func(ctx context.Context, args []string) error {
		defer relay.Close()
		if !registered {
			if err := node.waitExists(ctx); err != nil {
				return err
			}
		}
		return runKubeProxy(ctx, args)
	}, []string{"--config=" + pconf})
	if err := cp.nodeStarted(ctx, proxy, node, "kubelet and kube-proxy", t); err != nil {
		return err
	}
	cp.startOverlay(kc)
	return nil
}

// nodeStarted waits for the kubelet and kube-proxy to be ready, records
// the phase that began at t, and starts the disk watch, which reports
// through node.
func (cp *ControlPlane) nodeStarted(ctx context.Context, proxy *runner, node *nodeClient, phase string, t time.Time) error {
	if err := cp.waitReady(ctx, Kubelet, cp.kubelet.exits(), httpHealthz(kubeletHealthzPort)); err != nil {
		return err
	}
	if err := cp.waitReady(ctx, KubeProxy, proxy.exits(cp.cfg.LogDir()), func(ctx context.Context) error {
		// /livez answers once the proxy runs; /healthz waits for the node.
		return GetOK(ctx, http.DefaultClient, "http://127.0.0.1:"+strconv.Itoa(proxyHealthzPort)+"/livez")
	}); err != nil {
		return err
	}
	cp.phase(phase, t)
	cp.node.DiskFree = cp.node.diskFree()
	cp.run(Disk, func(ctx context.Context, _ []string) error { return cp.watchDisk(ctx, node) }, nil)
	return nil
}

// ownRunDirs are the directories under /run that the node's components
// write: containerd's state and pod network namespaces (/run/netns, where
// the CRI bind-mounts each pod's), dockerd's exec root.
var ownRunDirs = []string{"/run/netns", "/run/containerd", "/run/docker"}

// ownRunDir makes dir a directory of the namespace's own /run. The copy-up
// of /run (a tmpfs, RootlessKit's tmpfssymlink) links each of the host's
// entries into it: where the host has one (/run/netns once anyone ran `ip
// netns add`, /run/containerd), the link leads to a root-owned directory
// that nothing inside may write, and every pod's sandbox fails with
// "open /var/run/netns/cni-…: permission denied".
func ownRunDir(dir string) error {
	if fi, err := os.Lstat(dir); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		if err := os.Remove(dir); err != nil {
			return fmt.Errorf("unlink the host's %s from the namespace's /run: %w", dir, err)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("make %s in the namespace's /run: %w", dir, err)
	}
	return nil
}

// superviseKubelet reports the kubelet's end, unless it was asked to stop.
func (cp *ControlPlane) superviseKubelet() {
	go func() {
		<-cp.kubelet.done
		if !cp.kubelet.stopping.Load() {
			err := fmt.Errorf("kubelet exited: %v (see %s)", cp.kubelet.err, cp.kubelet.logPath)
			cp.set(Kubelet, "failed", err)
			cp.errc <- err
		}
	}()
}

// writePodNetwork writes the CNI network for the node's pod range and
// masquerades the range's traffic out of the node.
func writePodNetwork(ctx context.Context, nc NodeConfig) error {
	cni, err := cniConfig(nc)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(nc.cniConfDir(), "10-unetes.conflist"), []byte(cni), 0o600); err != nil {
		return fmt.Errorf("CNI config: %w", err)
	}
	podCIDR, err := nc.podRange()
	if err != nil {
		return err
	}
	if nc.OverlayIP != nil {
		if err := podBridge(ctx, podCIDR); err != nil {
			return err
		}
	}
	return setupMasquerade(ctx, nc.ProxyMode, podCIDR, nc.ClusterCIDR)
}

// mountKubeletRoot bind-mounts dir (persistent) on kubeletRoot. This process
// is root in its own user and mount namespaces, and /var/lib is a tmpfs
// copy-up there, so the mount point can be made and nothing outside sees it.
func mountKubeletRoot(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("kubelet dir: %w", err)
	}
	if err := os.MkdirAll(kubeletRoot, 0o700); err != nil {
		return fmt.Errorf("kubelet mount point: %w", err)
	}
	if err := unix.Mount(dir, kubeletRoot, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind %s on %s: %w", dir, kubeletRoot, err)
	}
	return nil
}

func httpHealthz(port int) func(context.Context) error {
	return func(ctx context.Context) error {
		return GetOK(ctx, http.DefaultClient, "http://127.0.0.1:"+strconv.Itoa(port)+"/healthz")
	}
}

func (p *childProc) exits() exitWatch {
	return exitWatch{p.done, func() error { return p.err }, p.logPath}
}

// stopKubelet stops the kubelet; kube-proxy stops with the other runners.
func (cp *ControlPlane) stopKubelet() {
	if cp.kubelet == nil {
		return
	}
	t := time.Now()
	cp.kubelet.Stop(15 * time.Second)
	cp.set(Kubelet, "stopped", nil)
	cp.logStopped(Kubelet, t)
}

// HoldContainerd makes containerd's stop wait for done: a client that
// stops its own containers first (dockerd) and does so while the rest of
// the instance stops.
func (cp *ControlPlane) HoldContainerd(done <-chan struct{}) {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	cp.holds = append(cp.holds, done)
}

func (cp *ControlPlane) stopContainerd() {
	cp.mu.Lock()
	holds := cp.holds
	cp.mu.Unlock()
	for _, h := range holds {
		<-h
	}
	if cp.ctrd == nil {
		return
	}
	t := time.Now()
	cp.ctrd.Stop()
	cp.set(Containerd, "stopped", nil)
	cp.logStopped(Containerd, t)
}

// childProc is a component run as a child process of this one.
type childProc struct {
	cmd      *exec.Cmd
	logPath  string
	done     chan struct{}
	err      error
	stopping atomic.Bool
}

// startChild runs `self role args…` with its output in logPath. It dies
// with this process (PDEATHSIG).
func startChild(self, role string, args []string, logPath string) (*childProc, error) {
	return startProcess(role, exec.Command(self, append([]string{role}, args...)...), logPath)
}

// startProcess starts cmd (what names it in errors) with its output in
// logPath, as its own process group; it dies with this process (PDEATHSIG).
func startProcess(what string, cmd *exec.Cmd, logPath string) (*childProc, error) {
	lf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("%s log: %w", what, err)
	}
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	p := &childProc{cmd: cmd, logPath: logPath, done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		// PDEATHSIG follows the thread that started the child, and Go ends
		// threads (one whose locked goroutine returned, say): start and wait
		// on one locked thread, which then lives as long as the child.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		p.err = cmd.Wait()
		lf.Close()
		close(p.done)
	}()
	if err := <-started; err != nil {
		lf.Close()
		return nil, fmt.Errorf("start %s: %w", what, err)
	}
	return p, nil
}

// Stop sends SIGTERM, then SIGKILL after grace.
func (p *childProc) Stop(grace time.Duration) {
	p.stopping.Store(true)
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		p.cmd.Process.Kill()
		<-p.done
	}
}
