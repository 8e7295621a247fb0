package embed

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"
)

// Component names, as `unetes logs` and `unetes status` show them.
const (
	Etcd              = "etcd"
	APIServer         = "apiserver"
	ControllerManager = "controller-manager"
	Scheduler         = "scheduler"
)

// ComponentStatus is one component's state.
type ComponentStatus struct {
	Name  string    `json:"name"`
	State string    `json:"state"` // starting, ready, failed, stopped
	Since time.Time `json:"since"`
	Error string    `json:"error,omitempty"`
	Note  string    `json:"note,omitempty"` // how it runs on this host, when that matters
}

// ControlPlane is etcd, kube-apiserver, kube-controller-manager and
// kube-scheduler in this process, and the node beside them: containerd and
// kube-proxy in this process, the kubelet as a child. Start, StartContainerd
// and StartNode bring them up in dependency order, each behind a readiness
// gate; Stop takes them down in reverse.
type ControlPlane struct {
	cfg  Config
	pki  *PKI
	etcd *etcdServer
	errc chan error
	// warm: an earlier run bootstrapped the apiserver over this etcd data.
	warm bool

	// The node: containerd, the kubelet child and kube-proxy (a runner).
	node        NodeConfig
	snapshotter string
	helpers     string // the embedded helpers' directory
	ctrd        *containerdServer
	kubelet     *childProc
	holds       []<-chan struct{} // containerd's stop waits for these (HoldContainerd)

	mu    sync.Mutex
	comps []*runner
	state map[string]ComponentStatus
}

// runner is one Kubernetes component's goroutine.
type runner struct {
	name   string
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// New returns a control plane that is not started; Status works at once.
func New(cfg Config) *ControlPlane {
	return &ControlPlane{cfg: cfg, errc: make(chan error, 8), state: map[string]ComponentStatus{}}
}

// Start runs the control plane; it returns once every component is ready,
// or the first failure (after stopping what had started). Failures after
// that arrive on Err.
func (cp *ControlPlane) Start(ctx context.Context) error {
	if err := cp.start(ctx); err != nil {
		cp.Abort()
		return err
	}
	return nil
}

func (cp *ControlPlane) phase(name string, t time.Time) time.Time {
	if cp.cfg.Progress != nil {
		cp.cfg.Progress(name, time.Since(t))
	}
	return time.Now()
}

func (cp *ControlPlane) start(ctx context.Context) error {
	t := time.Now()
	if err := setupKlog(cp.cfg.LogDir()); err != nil {
		return fmt.Errorf("set up component logs: %w", err)
	}
	pc, err := cp.cfg.PKIConfig()
	if err != nil {
		return err
	}
	if cp.pki, err = EnsurePKI(pc); err != nil {
		return err
	}
	cmKC, err := cp.WriteKubeconfig(ControllerManager)
	if err != nil {
		return err
	}
	schedKC, err := cp.WriteKubeconfig(Scheduler)
	if err != nil {
		return err
	}
	t = cp.phase("certs", t)

	cp.set(Etcd, "starting", nil)
	cp.warm = bootstrapped(cp.cfg.DataDir)
	if cp.etcd, err = startEtcd(ctx, cp.cfg, cp.pki.Dir); err != nil {
		cp.set(Etcd, "failed", err)
		return err
	}
	cp.set(Etcd, "ready", nil)
	etcdErr := cp.etcd.Err()
	go func() {
		if err, ok := <-etcdErr; ok && err != nil {
			cp.set(Etcd, "failed", err)
			cp.errc <- fmt.Errorf("etcd: %w", err)
		}
	}()
	t = cp.phase("etcd", t)

	useLocalEtcd(cp.etcd.e.Server, etcdClientURL)
	api := cp.run(APIServer, runAPIServer, FlagList(apiserverFlags(cp.cfg, cp.pki.Dir), nil))
	if err := cp.waitReady(ctx, APIServer, api.exits(cp.cfg.LogDir()), cp.apiReady); err != nil {
		return err
	}
	if !cp.warm {
		// That was the full /readyz: record it for the next runs.
		if err := markBootstrapped(cp.cfg.DataDir); err != nil {
			return err
		}
	}
	t = cp.phase("apiserver ready", t)

	cm := cp.run(ControllerManager, runControllerManager, FlagList(controllerManagerFlags(cp.cfg, cp.pki.Dir, cmKC), nil))
	sched := cp.run(Scheduler, runScheduler, FlagList(schedulerFlags(cp.pki.Dir, schedKC), nil))
	if err := cp.waitReady(ctx, ControllerManager, cm.exits(cp.cfg.LogDir()), healthz(cmPort)); err != nil {
		return err
	}
	if err := cp.waitReady(ctx, Scheduler, sched.exits(cp.cfg.LogDir()), healthz(schedPort)); err != nil {
		return err
	}
	cp.phase("controllers", t)
	return nil
}

// run starts one component in its own goroutine with its own context.
func (cp *ControlPlane) run(name string, fn func(context.Context, []string) error, args []string) *runner {
	ctx, cancel := context.WithCancel(context.Background())
	r := &runner{name: name, cancel: cancel, done: make(chan struct{})}
	ctx, logf, err := ComponentLogger(ctx, cp.cfg.LogDir(), name)
	if err != nil && cp.cfg.Log != nil {
		cp.cfg.Log.Warn("component logs to kubernetes.log only", "component", name, "err", err)
	}
	cp.mu.Lock()
	cp.comps = append(cp.comps, r)
	cp.mu.Unlock()
	cp.set(name, "starting", nil)
	if cp.cfg.Log != nil {
		cp.cfg.Log.Info("starting component", "component", name, "args", args)
	}
	go func() {
		defer close(r.done)
		if logf != nil {
			defer logf.Close()
		}
		r.err = fn(ctx, args)
		if ctx.Err() == nil { // not asked to stop
			if r.err == nil {
				r.err = errors.New("exited")
			}
			cp.set(name, "failed", r.err)
			cp.errc <- fmt.Errorf("%s: %w", name, r.err)
			return
		}
		cp.set(name, "stopped", nil)
	}()
	return r
}

// exitWatch is how waitReady sees a component end during start: a channel
// closed when it exits, its error then, and the log that says more.
type exitWatch struct {
	done <-chan struct{}
	err  func() error
	log  string
}

func (r *runner) exits(logDir string) exitWatch {
	return exitWatch{r.done, func() error { return r.err }, filepath.Join(logDir, "kubernetes.log")}
}

// waitReady polls ready until it succeeds, the component exits, or 2 minutes pass.
func (cp *ControlPlane) waitReady(ctx context.Context, name string, x exitWatch, ready func(context.Context) error) error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		last := ready(pctx)
		cancel()
		if last == nil {
			cp.set(name, "ready", nil)
			return nil
		}
		select {
		case <-x.done:
			return fmt.Errorf("%s exited during start: %v (see %s)", name, x.err(), x.log)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			err := fmt.Errorf("%s not ready after 2 minutes: %w (see %s)", name, last, x.log)
			cp.set(name, "failed", err)
			return err
		}
	}
}

func (cp *ControlPlane) set(name, state string, err error) {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	st := ComponentStatus{Name: name, State: state, Since: time.Now()}
	if err != nil {
		st.Error = err.Error()
	}
	cp.state[name] = st
}

// setStatus replaces a component's status whole (its note too).
func (cp *ControlPlane) setStatus(st ComponentStatus) {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	cp.state[st.Name] = st
}

// Status reports every component, in start order.
func (cp *ControlPlane) Status() []ComponentStatus {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	var out []ComponentStatus
	for _, n := range []string{Containerd, Etcd, APIServer, ControllerManager, Scheduler, Kubelet, KubeProxy, Overlay, Disk} {
		if st, ok := cp.state[n]; ok {
			out = append(out, st)
		}
	}
	return out
}

// MappedFiles are the data files the control plane reads through a shared
// mapping of its own: etcd's database.
func (cp *ControlPlane) MappedFiles() []string {
	return []string{etcdDB(filepath.Join(cp.cfg.DataDir, "etcd"))}
}

// Err delivers a component's failure after Start returned.
func (cp *ControlPlane) Err() <-chan error { return cp.errc }

// Stop stops the components in reverse start order: the kubelet, kube-proxy
// and the control plane, then etcd, then containerd.
func (cp *ControlPlane) Stop() { cp.stop(false) }

// Abort is Stop for a stop during the instance's start-up: every component
// is still starting, whatever its health check said (the controller-manager
// answers it while it builds its controllers for seconds more, without
// looking at its context), and is left to the process's exit after 1 s.
func (cp *ControlPlane) Abort() { cp.stop(true) }

func (cp *ControlPlane) stop(starting bool) {
	cp.stopKubelet()
	cp.mu.Lock()
	comps, etcd := cp.comps, cp.etcd
	cp.comps, cp.etcd = nil, nil // a second Stop (after a failed Start) has nothing to wait for
	cp.mu.Unlock()
	abandoned := false
	for i := len(comps) - 1; i >= 0; i-- {
		r := comps[i]
		t := time.Now()
		r.cancel()
		// One stopped while it still starts (the apiserver builds its
		// config and storage for seconds without looking at its context)
		// is left to the process's exit after a short wait.
		grace := 20 * time.Second
		cp.mu.Lock()
		if starting || cp.state[r.name].State != "ready" {
			grace = time.Second
		}
		cp.mu.Unlock()
		if !cp.awaitStop(r.name, r.done, t, grace) {
			abandoned = true
		}
	}
	if etcd != nil {
		// etcd waits for its clients to go, up to its request timeout
		// (5.4 s): with a component left running (above) it cannot close
		// sooner, so it is not waited for. Its write-ahead log makes the
		// process's exit safe.
		t, closed := time.Now(), make(chan struct{})
		go func() { etcd.Close(); close(closed) }()
		if abandoned {
			if cp.cfg.Log != nil {
				cp.cfg.Log.Warn("component left to the process's exit", "component", Etcd, "reason", "a client of it did not stop")
			}
		} else if cp.awaitStop(Etcd, closed, t, 20*time.Second) {
			cp.set(Etcd, "stopped", nil)
		}
	}
	cp.stopContainerd()
}

// awaitStop waits up to grace for done, and logs how the stop of
// component name (asked at since) went; false if it did not end in time.
func (cp *ControlPlane) awaitStop(name string, done <-chan struct{}, since time.Time, grace time.Duration) bool {
	select {
	case <-done:
		cp.logStopped(name, since)
		return true
	case <-time.After(grace):
		if cp.cfg.Log != nil {
			cp.cfg.Log.Warn("component did not stop in time", "component", name, "waited", grace)
		}
		return false
	}
}

func (cp *ControlPlane) logStopped(name string, since time.Time) {
	if cp.cfg.Log != nil {
		cp.cfg.Log.Info("component stopped", "component", name, "took", time.Since(since))
	}
}
