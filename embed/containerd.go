package embed

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/containerd/containerd/v2/cmd/containerd/server"
	srvconfig "github.com/containerd/containerd/v2/cmd/containerd/server/config"
	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/containerd/v2/plugins/snapshots/overlay/overlayutils"
	clog "github.com/containerd/log"
	"github.com/sirupsen/logrus"
)

// CRINamespace is the containerd namespace of Kubernetes' containers and images.
const CRINamespace = "k8s.io"

// ContainerdConfig is everything containerd's configuration depends on.
type ContainerdConfig struct {
	Root        string // persistent: <data>/containerd
	State       string // per start: /run/containerd inside the namespace
	Address     string // <state>/containerd.sock; ttrpc at Address+".ttrpc"
	Snapshotter string // overlayfs or native
	ShimPath    string // the shim binary: containerd's, an embedded helper
	RuncPath    string // what the shim runs as runc
	CNIBinDir   string
	CNIConfDir  string
	PauseImage  string
	RegistryDir string // hosts.toml per registry (containerd's certs.d layout)
}

// containerdTOML renders c as a containerd configuration (version 3). Pure.
// The CRI brings a pod's loopback up itself (use_internal_loopback): the
// loopback CNI plugin would be one more program run at every pod sandbox's
// start and end, ~15 ms of CPU each here.
func containerdTOML(c ContainerdConfig) string {
	q := func(s string) string { return fmt.Sprintf("%q", s) }
	var b strings.Builder
	fmt.Fprintf(&b, `version = 3
root = %s
state = %s
# containerd's gRPC metrics would claim names in the process-wide Prometheus
# registry that etcd, starting at the same time, registers too (and nothing
# serves containerd's metrics here). Its gRPC images service gives way to
# unetes' (the same API, with the image policy of embed/imagepolicy.go).
disabled_plugins = ['io.containerd.metrics.v1.grpc-prometheus', %s]

[plugins]
  [plugins.'io.containerd.server.v1.grpc']
    address = %s
  [plugins.'io.containerd.server.v1.ttrpc']
    address = %s

  [plugins.'io.containerd.cri.v1.images']
    snapshotter = %s
    [plugins.'io.containerd.cri.v1.images'.pinned_images]
      sandbox = %s
    [plugins.'io.containerd.cri.v1.images'.registry]
      config_path = %s

  [plugins.'io.containerd.cri.v1.runtime']
    disable_apparmor = true
    restrict_oom_score_adj = true
    enable_unprivileged_ports = true
    enable_unprivileged_icmp = true
    [plugins.'io.containerd.cri.v1.runtime'.containerd]
      default_runtime_name = 'runc'
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
        runtime_type = 'io.containerd.runc.v2'
        runtime_path = %s
        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
          BinaryName = %s
    [plugins.'io.containerd.cri.v1.runtime'.cni]
      bin_dirs = [%s]
      conf_dir = %s
      max_conf_num = 1
      use_internal_loopback = true

  [plugins.'io.containerd.grpc.v1.cri']
    disable_tcp_service = true
    stream_server_address = '127.0.0.1'
    stream_server_port = '0'
`, q(c.Root), q(c.State), q(imagesGRPCPlugin), q(c.Address), q(c.Address+".ttrpc"), q(c.Snapshotter), q(c.PauseImage), q(c.RegistryDir),
		q(c.ShimPath), q(c.RuncPath), q(c.CNIBinDir), q(c.CNIConfDir))
	return b.String()
}

// ProbeSnapshotter returns "overlayfs" when overlay mounts work under root
// (kernel ≥ 5.11 in a user namespace), else "native" and why.
func ProbeSnapshotter(root string) (string, error) {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return "", fmt.Errorf("containerd root: %w", err)
	}
	if err := overlayutils.Supported(root); err != nil {
		return "native", err
	}
	return "overlayfs", nil
}

// containerdServer is containerd's server in this process.
type containerdServer struct {
	srv *server.Server
	log *os.File
}

// startContainerd writes the configuration to <confDir>/containerd.toml,
// starts containerd in this process, logging to logPath, and returns once
// it serves.
func startContainerd(ctx context.Context, c ContainerdConfig, confDir, logPath string) (*containerdServer, error) {
	lf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("containerd log: %w", err)
	}
	logrus.SetOutput(lf)
	logrus.SetFormatter(&logrus.TextFormatter{FullTimestamp: true, DisableColors: true})
	srv, err := serveContainerd(ctx, c, filepath.Join(confDir, "containerd.toml"), filepath.Dir(logPath))
	if err != nil {
		lf.Close()
		return nil, fmt.Errorf("%w (see %s)", err, logPath)
	}
	return &containerdServer{srv: srv, log: lf}, nil
}

func serveContainerd(ctx context.Context, c ContainerdConfig, path, logDir string) (*server.Server, error) {
	if err := clog.SetLevel("info"); err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, []byte(containerdTOML(c)), 0o600); err != nil {
		return nil, fmt.Errorf("containerd config: %w", err)
	}
	cfg := &srvconfig.Config{}
	if err := srvconfig.LoadConfig(ctx, path, cfg); err != nil {
		return nil, fmt.Errorf("containerd config %s: %w", path, err)
	}
	if err := server.CreateTopLevelDirectories(cfg); err != nil {
		return nil, fmt.Errorf("containerd dirs: %w", err)
	}
	if err := mount.SetTempMountLocation(filepath.Join(cfg.Root, "tmpmounts")); err != nil {
		return nil, fmt.Errorf("containerd temp mounts: %w", err)
	}
	mount.CleanupTempMounts(0)
	os.Remove(c.Address)
	os.Remove(c.Address + ".ttrpc")
	registerImagePolicy()
	srv, err := server.New(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("containerd: %w", err)
	}
	// The CRI plugin has just pointed the process's klog at stderr.
	if err := setupKlog(logDir); err != nil {
		srv.Stop()
		return nil, err
	}
	if err := srv.Start(ctx); err != nil {
		srv.Stop()
		return nil, fmt.Errorf("containerd serve: %w", err)
	}
	ready := make(chan struct{})
	go func() { srv.Wait(); close(ready) }()
	select {
	case <-ready:
	case <-time.After(time.Minute):
		srv.Stop()
		return nil, fmt.Errorf("containerd not ready after a minute")
	}
	// The sockets are the user's own (the state dir is 0700 too).
	os.Chmod(c.Address, 0o600)
	os.Chmod(c.Address+".ttrpc", 0o600)
	return srv, nil
}

func (s *containerdServer) Stop() {
	s.srv.Stop()
	s.log.Close()
}
