package nsinit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rootless-containers/rootlesskit/v3/pkg/messages"
	"github.com/rootless-containers/rootlesskit/v3/pkg/network"
	"github.com/rootless-containers/rootlesskit/v3/pkg/port"
)

// Config is what Start needs; cmd builds it.
type Config struct {
	Name      string
	Paths     Paths
	User      User
	ChildArgs []string // arguments of the hidden child role, run from /proc/self/exe
	// Env is NAME=value the processes inside get in place of what they
	// would inherit of this process's environment.
	Env     []string
	Network network.ParentDriver // the NAT
	// Ports creates the port driver once the state dir is clean (it puts its
	// sockets there); nil for none.
	Ports func(stateDir string) (port.ParentDriver, error)
	// Ready reports when the instance is usable (the in-namespace process
	// answers); Start returns once it does.
	Ready    func(ctx context.Context) error
	Progress func(phase string, took time.Duration) // optional
	// Locked, when set, is called once the instance's lock is held and its
	// pid file written: from then on `unetes stop` finds the instance.
	Locked func()
	Log    *slog.Logger
	// Cgroup, when set, is the delegated cgroup v2 pods get their limits
	// in: the namespaces get a cgroup namespace rooted at it (made while
	// this process is still in it), and once the child exists Start moves
	// the cgroup's processes into its CgroupInit leaf (DelegateCgroup).
	Cgroup *CgroupMode
}

// Instance is a running sandbox. Stop it with Stop; Done is closed when the
// child has exited and everything is cleaned up.
type Instance struct {
	cfg        Config
	cmd        *exec.Cmd
	lock       *stateLock
	cleanupNet func() error
	ports      port.ParentDriver
	portQuit   chan struct{}
	portErr    chan error
	portReady  chan struct{}
	started    time.Time
	done       chan struct{}
	err        error
}

// ChildPID is the host pid of the namespaces' first process.
func (i *Instance) ChildPID() int { return i.cmd.Process.Pid }

// Started is when Start began.
func (i *Instance) Started() time.Time { return i.started }

// Done is closed when the instance has exited.
func (i *Instance) Done() <-chan struct{} { return i.done }

// Wait blocks until the instance exits and returns why.
func (i *Instance) Wait() error {
	<-i.done
	return i.err
}

// Stop asks the processes inside to exit (SIGTERM, forwarded by the child to
// its target), kills them after grace, and waits for the cleanup.
func (i *Instance) Stop(grace time.Duration) error {
	select {
	case <-i.done:
		return i.err
	default:
	}
	i.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-i.done:
	case <-time.After(grace):
		i.cfg.Log.Warn("instance did not stop in time, killing it", "grace", grace)
		i.cmd.Process.Kill()
		<-i.done
	}
	return i.err
}

// Start checks the host, takes the instance's lock, creates the namespaces
// and waits until cfg.Ready succeeds.
func Start(ctx context.Context, cfg Config) (*Instance, error) {
	if failed := Failed(Doctor(LiveHost{}, cfg.User)); len(failed) > 0 {
		return nil, &PrereqError{Checks: failed}
	}
	if err := prepareStateDir(cfg.Paths.StateDir, cfg.User.UID); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Paths.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	lock, err := lockState(cfg.Paths.StateDir)
	if errors.Is(err, errLocked) {
		pid, _ := RunningPID(cfg.Paths.StateDir)
		return nil, &RunningError{Name: cfg.Name, PID: pid}
	}
	if err != nil {
		return nil, err
	}
	// The pid file at once: a stop from now on must find this process, not
	// the pid an earlier run left.
	if err := os.WriteFile(filepath.Join(cfg.Paths.StateDir, parentPIDFile), []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
		lock.unlock()
		return nil, fmt.Errorf("write pid file: %w", err)
	}
	if cfg.Locked != nil {
		cfg.Locked()
	}
	i := &Instance{cfg: cfg, lock: lock, started: time.Now(), done: make(chan struct{}),
		portQuit: make(chan struct{}), portErr: make(chan error, 1), portReady: make(chan struct{}, 1)}
	if err := i.launch(ctx); err != nil {
		i.abort()
		return nil, err
	}
	return i, nil
}

func (i *Instance) phase(name string, since time.Time) time.Time {
	if i.cfg.Progress != nil {
		i.cfg.Progress(name, time.Since(since))
	}
	return time.Now()
}

func (i *Instance) launch(ctx context.Context) error {
	sd := i.cfg.Paths.StateDir
	if err := clearStale(sd); err != nil {
		return err
	}
	subuid, subgid, err := i.subIDs()
	if err != nil {
		return err
	}
	if i.cfg.Ports != nil {
		if i.ports, err = i.cfg.Ports(sd); err != nil {
			return err
		}
	}
	t := time.Now()
	pipes, err := i.startChild()
	if err != nil {
		return err
	}
	defer pipes.close()
	if err := i.handshake(pipes, subuid, subgid); err != nil {
		return err
	}
	t = i.phase("namespaces", t)
	if err := i.waitReady(ctx); err != nil {
		return err
	}
	i.phase("network and init", t)
	return nil
}

func (i *Instance) subIDs() (uid, gid []IDRange, err error) { return subIDsOf(i.cfg.User) }

// subIDsOf reads u's sub-ID ranges (none for root, which maps everything).
func subIDsOf(u User) (uid, gid []IDRange, err error) {
	if u.UID == 0 {
		return nil, nil, nil
	}
	for _, f := range []struct {
		path string
		id   int
		out  *[]IDRange
	}{{"/etc/subuid", u.UID, &uid}, {"/etc/subgid", u.GID, &gid}} {
		b, err := os.ReadFile(f.path)
		if err != nil {
			return nil, nil, fmt.Errorf("read %s: %w", f.path, err)
		}
		if *f.out, err = ParseSubIDs(b, u.Name, f.id); err != nil {
			return nil, nil, fmt.Errorf("parse %s: %w", f.path, err)
		}
	}
	return uid, gid, nil
}

type childPipes struct {
	toChild, fromChild *os.File
}

func (p childPipes) close() {
	p.toChild.Close()
	p.fromChild.Close()
}

func (i *Instance) startChild() (childPipes, error) {
	r1, w1, err := os.Pipe()
	if err != nil {
		return childPipes{}, err
	}
	r2, w2, err := os.Pipe()
	if err != nil {
		r1.Close()
		w1.Close()
		return childPipes{}, err
	}
	logDir := filepath.Join(i.cfg.Paths.StateDir, "logs")
	if err := os.MkdirAll(logDir, 0o700); err != nil {
		return childPipes{}, fmt.Errorf("create log dir: %w", err)
	}
	logf, err := os.OpenFile(filepath.Join(logDir, "child.log"), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return childPipes{}, fmt.Errorf("open child log: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command("/proc/self/exe", i.cfg.ChildArgs...)
	cmd.Args[0] = os.Args[0]
	cmd.Env = childEnv(os.Environ(), i.cfg.Env, i.cfg.Paths.StateDir)
	cmd.ExtraFiles = []*os.File{r1, w2}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Pdeathsig:    syscall.SIGKILL,
		Cloneflags:   syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS | syscall.CLONE_NEWPID,
		Unshareflags: syscall.CLONE_NEWNET | syscall.CLONE_NEWUTS | syscall.CLONE_NEWIPC,
	}
	if i.cfg.Cgroup != nil {
		cmd.SysProcAttr.Unshareflags |= syscall.CLONE_NEWCGROUP
		cmd.Env = append(cmd.Env, envCgroupNS+"=1")
	}
	// PDEATHSIG follows the thread that started the child, and Go ends
	// threads (one whose locked goroutine returned, say): start and wait on
	// one locked thread, which then lives as long as the child.
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		i.cmd = cmd
		started <- nil
		i.finish(cmd.Wait())
	}()
	err = <-started
	r1.Close()
	w2.Close()
	if err != nil {
		w1.Close()
		r2.Close()
		return childPipes{}, fmt.Errorf("create namespaces: %w%s", err, hintCloneErr(err))
	}
	return childPipes{toChild: w1, fromChild: r2}, nil
}

func hintCloneErr(err error) string {
	if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EACCES) {
		return " (user namespaces are restricted on this host: run `unetes doctor`)"
	}
	return ""
}

func send(w *os.File, u messages.U) error {
	return messages.Send(w, &messages.Message{U: u})
}

func (i *Instance) handshake(p childPipes, subuid, subgid []IDRange) error {
	if err := send(p.toChild, messages.U{ParentHello: &messages.ParentHello{}}); err != nil {
		return i.childErr(err)
	}
	if _, err := messages.WaitFor(p.fromChild, messages.Name(messages.ChildHello{})); err != nil {
		return i.childErr(err)
	}
	if err := setIDMaps(i.cmd.Process.Pid, i.cfg.User, subuid, subgid); err != nil {
		return fmt.Errorf("map IDs into the user namespace: %w", err)
	}
	if err := send(p.toChild, messages.U{ParentInitIdmapCompleted: &messages.ParentInitIdmapCompleted{}}); err != nil {
		return i.childErr(err)
	}
	if _, err := messages.WaitFor(p.fromChild, messages.Name(messages.ChildInitUserNSCompleted{})); err != nil {
		return i.childErr(err)
	}
	if i.cfg.Cgroup != nil {
		if err := DelegateCgroup("/sys/fs/cgroup", *i.cfg.Cgroup); err != nil {
			return fmt.Errorf("prepare the delegated cgroup %s for pods: %w (run unetes in a cgroup of its own: `unetes doctor` says how)", i.cfg.Cgroup.Path, err)
		}
	}
	pidPath := filepath.Join(i.cfg.Paths.StateDir, childPIDFile)
	if err := os.WriteFile(pidPath, []byte(strconv.Itoa(i.cmd.Process.Pid)), 0o600); err != nil {
		return fmt.Errorf("write child pid: %w", err)
	}
	netMsg, cleanup, err := i.cfg.Network.ConfigureNetwork(i.cmd.Process.Pid, i.cfg.Paths.StateDir, "")
	i.cleanupNet = cleanup
	if err != nil {
		return fmt.Errorf("set up the network: %w", err)
	}
	if err := send(p.toChild, messages.U{ParentInitNetworkDriverCompleted: netMsg}); err != nil {
		return i.childErr(err)
	}
	portMsg := &messages.ParentInitPortDriverCompleted{}
	if i.ports != nil {
		portMsg.PortDriverOpaque = i.ports.OpaqueForChild()
		go func() {
			i.portErr <- i.ports.RunParentDriver(i.portReady, i.portQuit, &port.ChildContext{})
		}()
	}
	if err := send(p.toChild, messages.U{ParentInitPortDriverCompleted: portMsg}); err != nil {
		return i.childErr(err)
	}
	return nil
}

// childErr explains a handshake failure with the tail of the child's log.
func (i *Instance) childErr(err error) error {
	select {
	case <-i.done:
	case <-time.After(2 * time.Second):
	}
	b, _ := os.ReadFile(filepath.Join(i.cfg.Paths.StateDir, "logs", "child.log"))
	tail := strings.TrimSpace(string(b))
	if len(tail) > 2000 {
		tail = tail[len(tail)-2000:]
	}
	if tail != "" {
		return fmt.Errorf("set up namespaces: %w; the child said:\n%s", err, tail)
	}
	return fmt.Errorf("set up namespaces: %w", err)
}

func (i *Instance) waitReady(ctx context.Context) error {
	rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	go func() {
		select {
		case <-i.done:
			cancel()
		case <-rctx.Done():
		}
	}()
	if i.ports != nil {
		select {
		case <-i.portReady:
		case err := <-i.portErr:
			return fmt.Errorf("start the port driver: %w", err)
		case <-rctx.Done():
			return i.childErr(fmt.Errorf("the port driver did not start: %w", rctx.Err()))
		}
	}
	if err := i.cfg.Ready(rctx); err != nil {
		select {
		case <-i.done:
			return i.childErr(fmt.Errorf("the child exited during start: %v", i.err))
		default:
		}
		return fmt.Errorf("wait for the instance to become ready: %w", err)
	}
	return nil
}

// abort undoes a failed start.
func (i *Instance) abort() {
	if i.cmd != nil && i.cmd.Process != nil {
		i.cmd.Process.Kill()
		<-i.done
		return
	}
	i.finish(nil)
}

// finish runs once, when the child has exited.
func (i *Instance) finish(err error) {
	close(i.portQuit)
	if i.cleanupNet != nil {
		i.cleanupNet()
	}
	sd := i.cfg.Paths.StateDir
	for _, f := range []string{parentPIDFile, childPIDFile} {
		os.Remove(filepath.Join(sd, f))
	}
	clearStale(sd)
	if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGTERM {
			err = nil
		}
	}
	i.err = err
	i.lock.unlock()
	close(i.done)
}

// prepareStateDir creates the state dir; under /tmp it refuses a parent
// directory that another user could have planted.
func prepareStateDir(dir string, uid int) error {
	base := filepath.Dir(dir)
	if strings.HasPrefix(base, "/tmp/unetes-") {
		if err := os.Mkdir(base, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("create %s: %w", base, err)
		}
		fi, err := os.Lstat(base)
		if err != nil {
			return err
		}
		if !fi.IsDir() || ownerUID(fi) != uid || fi.Mode().Perm()&0o022 != 0 {
			return fmt.Errorf("%s is not a directory owned by uid %d with mode 0700: remove it and retry", base, uid)
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create state dir: %w", err)
	}
	return nil
}

// clearStale removes what a crashed run left in the state dir, keeping the
// lock and the logs.
func clearStale(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	for _, e := range ents {
		switch e.Name() {
		case lockFile, "logs", parentPIDFile:
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("remove stale %s: %w", e.Name(), err)
		}
	}
	return nil
}

// ChildError returns the last error line the processes inside logged
// ("unetes …:" or "panic: …"), prefixed for appending to an error, or "".
func (i *Instance) ChildError() string {
	b, _ := os.ReadFile(filepath.Join(i.cfg.Paths.StateDir, "logs", "child.log"))
	last := ""
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "unetes sandbox: ") || strings.HasPrefix(l, "panic: ") {
			last = l
		}
	}
	if last == "" {
		return ""
	}
	return "\n  " + last
}
