package nsinit

// This file is the only place that speaks RootlessKit's environment-variable
// protocol between parent and child. Everything else passes explicit values.

import (
	"fmt"
	"os"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/rootless-containers/rootlesskit/v3/pkg/child"
	"github.com/rootless-containers/rootlesskit/v3/pkg/copyup/tmpfssymlink"
	"github.com/rootless-containers/rootlesskit/v3/pkg/network"
	"github.com/rootless-containers/rootlesskit/v3/pkg/port"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

const (
	envPipeFD           = "_UNETES_RK_PIPEFD"
	envStateDir         = "_UNETES_RK_STATE_DIR"
	envUseActivation    = "_UNETES_RK_CHILD_USE_ACTIVATION"
	envCgroupNS         = "_UNETES_RK_CGROUPNS" // "1": the child is in a cgroup namespace of its own
	envActivationHelper = "_UNETES_RK_ACTIVATION_HELPER"
)

// childEnv is the child's environment: the caller's, plus the pipe fds (3 and
// 4, the first two ExtraFiles) and the state dir as RootlessKit's child reads them.
func childEnv(base, set []string, stateDir string) []string {
	env := make([]string, 0, len(base)+len(set)+3)
	replaced := func(kv string) bool {
		name, _, _ := strings.Cut(kv, "=")
		return slices.ContainsFunc(set, func(s string) bool { return strings.HasPrefix(s, name+"=") })
	}
	for _, kv := range base {
		if !strings.HasPrefix(kv, "_UNETES_RK_") && !strings.HasPrefix(kv, "LISTEN_") && !replaced(kv) {
			env = append(env, kv)
		}
	}
	env = append(env, set...)
	return append(env, envPipeFD+"=3,4", envStateDir+"="+stateDir, envUseActivation+"=false")
}

// DefaultCopyUpDirs are the directories made writable (tmpfs with symlinks to
// the originals) inside the mount namespace: what Kubernetes and containerd write.
var DefaultCopyUpDirs = []string{"/etc", "/run", "/var/lib", "/var/log"}

// ChildConfig configures the in-namespace side.
type ChildConfig struct {
	TargetCmd  []string            // the process to run inside, absolute path first
	CopyUpDirs []string            // DefaultCopyUpDirs when nil
	Network    network.ChildDriver // configures the namespace's interface
	Ports      port.ChildDriver    // dials forward targets inside; nil for none
}

// RunChild is the body of the hidden child role: it completes the handshake
// with the parent, sets up mounts and the network, then runs and reaps
// TargetCmd as PID 2 of the new pid namespace. It returns when TargetCmd exits.
func RunChild(cfg ChildConfig) error {
	// Die with the parent. Set on every (re-)exec because an exec that gains
	// capabilities clears it.
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0); err != nil {
		return fmt.Errorf("set parent death signal: %w", err)
	}
	logrus.SetOutput(os.Stderr)
	logrus.SetLevel(logrus.InfoLevel)
	if !hasEffectiveCaps() {
		// Not yet capable, RootlessKit's child wraps the handshake pipes
		// (fds 3 and 4) in *os.File, and re-executes itself once the parent
		// wrote the ID maps. A GC between a wrapper's last use and that exec
		// runs its finalizer, which closes the fd the next process needs:
		// "write: bad file descriptor" at its first message (seen in a test
		// run). This process ends in that exec: it runs without GC.
		debug.SetGCPercent(-1)
	}
	ensureSbinPath()
	dirs := cfg.CopyUpDirs
	if dirs == nil {
		dirs = DefaultCopyUpDirs
	}
	return child.Child(child.Opt{
		PipeFDEnvKey:              envPipeFD,
		RunActivationHelperEnvKey: envActivationHelper,
		ChildUseActivationEnvKey:  envUseActivation,
		StateDirEnvKey:            envStateDir,
		TargetCmd:                 cfg.TargetCmd,
		NetworkDriver:             cfg.Network,
		CopyUpDriver:              tmpfssymlink.NewChildDriver(),
		CopyUpDirs:                dirs,
		PortDriver:                cfg.Ports,
		MountProcfs:               true,
		// In a cgroup namespace of its own: cgroup2 mounted anew on
		// /sys/fs/cgroup shows the delegated subtree as the root.
		EvacuateCgroup2: os.Getenv(envCgroupNS) == "1",
		Propagation:     "rslave",
		Reaper:          true,
	})
}

// hasEffectiveCaps tells whether this process has any effective capability
// (in its user namespace).
func hasEffectiveCaps() bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return true // unknown: leave the GC alone
	}
	return data[0].Effective != 0 || data[1].Effective != 0
}

// ensureSbinPath lets RootlessKit find `ip` when the user's PATH lacks sbin.
func ensureSbinPath() {
	p := os.Getenv("PATH")
	for _, d := range []string{"/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/local/bin", "/usr/bin", "/bin"} {
		if !strings.Contains(":"+p+":", ":"+d+":") {
			p += ":" + d
		}
	}
	os.Setenv("PATH", strings.TrimPrefix(p, ":"))
}
