package embed

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
)

// Docker is the Docker Engine API component, as `unetes status`, `unetes
// logs` and `run --disable` name it.
const Docker = "docker"

// DockerdHelper is the embedded helper that serves it: moby's dockerd, built
// from moby's own module (its swarmkit cannot be linked beside this
// Kubernetes; see DESIGN notes in the README).
const DockerdHelper = "dockerd"

// dockerNamespace is the containerd namespace dockerd keeps its images and
// containers in: the CRI's own, so an image built or pulled with docker is
// an image of the node's, and `unetes image load` images are docker's. The
// two sides' containers stay apart: the CRI lists and recovers only
// containers with its labels, dockerd only those in its own store.
const dockerNamespace = "k8s.io"

// DockerConfig is what dockerd is started with.
type DockerConfig struct {
	Dockerd        string // the helper binary
	Socket         string // <state>/docker.sock: the Docker Engine API
	DataRoot       string // <data>/docker: containers, volumes, networks, build cache
	ExecRoot       string // per-run state, in the namespace's /run
	ContainerdSock string // the instance's containerd
	Snapshotter    string // the snapshotter containerd uses (overlayfs or native)
	PortsDir       string // holds dockerd's RootlessKit API socket (api.sock), how it publishes ports
	LogPath        string
	PortIP         string // the host address `-p PORT:PORT` publishes on: 127.0.0.1
	// NoBrNetfilter: the kernel has no br_netfilter loaded (Debian's and
	// Ubuntu's kernels build it as a module, which nobody loads on a host
	// without a Docker of its own; a user namespace cannot load it).
	NoBrNetfilter bool
	// PodLimits: pods' limits are enforced (cgroups delegated), as the
	// refusal of docker's limits says.
	PodLimits bool
	// BeforeStart runs before each start of dockerd: it withdraws the ports
	// a dockerd that died had published, and waits for the port API.
	BeforeStart func(context.Context) error
}

// dockerAPIMinVersion admits the stock clients of Debian 12: docker 20.10
// speaks API 1.41 and docker-compose 1.29 asks for 1.38 (dockerd's own
// default minimum is 1.40).
const dockerAPIMinVersion = "1.24"

// dockerShutdownTimeout is how long dockerd gives running containers to
// stop at `unetes stop` before it kills them: the whole instance has 15 s.
const dockerShutdownTimeout = 5

// dockerDaemonJSON is dockerd's daemon.json. Pure. liveRestore is on while
// the instance runs: a dockerd that dies and is started again leaves its
// running containers running (and publishes their ports again); it is
// turned off just before `unetes stop` ends dockerd, so that its containers
// are stopped as on any host's shutdown (SIGTERM, then shutdown-timeout)
// rather than killed with the namespace.
func dockerDaemonJSON(c DockerConfig, liveRestore bool) []byte {
	conf := map[string]any{
		"hosts":                        []string{"unix://" + c.Socket},
		"data-root":                    c.DataRoot,
		"exec-root":                    c.ExecRoot,
		"pidfile":                      filepath.Join(c.ExecRoot, "dockerd.pid"),
		"containerd":                   c.ContainerdSock,
		"containerd-namespace":         dockerNamespace,
		"containerd-plugins-namespace": "plugins.moby",
		"storage-driver":               c.Snapshotter,
		// `-p 8080:80` publishes on 127.0.0.1 like `unetes forward`;
		// `-p 0.0.0.0:8080:80` asks for every address.
		"ip": c.PortIP,
		// Published ports reach containers by DNAT in the namespace; the
		// host side is RootlessKit's port API (api.sock), which unetes serves.
		"userland-proxy": false,
		// Pods are forwarded too: dockerd must not set FORWARD's policy to DROP.
		"ip-forward-no-drop": true,
		"shutdown-timeout":   dockerShutdownTimeout,
		"live-restore":       liveRestore,
		"min-api-version":    dockerAPIMinVersion,
		// The socket's group: root inside is the user outside.
		"group": "root",
		// On a systemd host with cgroup v2 dockerd would choose systemd's
		// cgroup driver, which a rootless dockerd reaches over the user's
		// D-Bus, not there in the namespace: every container would fail
		// ("$ROOTLESSKIT_PARENT_EUID is not set"). With cgroupfs a
		// rootless dockerd applies no limits (its "none" driver), as run
		// says.
		"exec-opts": []string{"native.cgroupdriver=cgroupfs"},
		// Which unetes' plugin uses to refuse limits instead (dockerlimits.go).
		"authorization-plugins": []string{dockerLimitsPlugin},
	}
	b, _ := json.MarshalIndent(conf, "", "  ")
	return append(b, '\n')
}

// dockerdEnv is dockerd's environment beside the sandbox's own. Pure.
func dockerdEnv(c DockerConfig) []string {
	env := []string{
		// Rootless mode, and where RootlessKit's API is: dockerd publishes
		// ports through it.
		"ROOTLESSKIT_STATE_DIR=" + c.PortsDir,
		"XDG_RUNTIME_DIR=" + filepath.Dir(c.ExecRoot),
	}
	if c.NoBrNetfilter {
		// Without it dockerd refuses to start ("cannot ... run without the
		// userland proxy"). What it costs: a container reaching another
		// container on the same bridge through a port published on the
		// node's address gets no answer; by the container's name or
		// address it works, and so does every published port from the host.
		env = append(env, "DOCKER_IGNORE_BR_NETFILTER_ERROR=1")
	}
	return env
}

// BrNetfilterLoaded says whether the kernel filters bridged traffic with
// iptables (br_netfilter): its sysctls exist in every network namespace
// once it is loaded or built in.
func BrNetfilterLoaded() bool {
	_, err := os.Stat("/proc/sys/net/bridge/bridge-nf-call-iptables")
	return err == nil
}
