package embed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// Dockerd runs dockerd as a supervised child: started after containerd,
// restarted with backoff when it dies, stopped with SIGTERM then SIGKILL.
// It is the one child besides the kubelet (and runc): dockerd rewires
// process-wide logging, umask, tracing and signals, and its swarmkit
// cannot be linked beside this Kubernetes.
type Dockerd struct {
	cfg DockerConfig
	log *slog.Logger

	mu      sync.Mutex
	st      ComponentStatus
	proc    *childProc
	started bool               // Start ran: done will be closed
	quit    context.Context    // done once Stop is called
	stop    context.CancelFunc // (under mu)
	done    chan struct{}      // closed when Start failed or the supervisor returned
}

// dockerdReadyTimeout bounds a start: the first one over an empty data
// root takes ~1 s, one with many containers to restore longer.
const dockerdReadyTimeout = 60 * time.Second

// dockerdStopGrace is dockerd's time to stop after SIGTERM: its own
// containers' shutdown timeout and a little more.
const dockerdStopGrace = (dockerShutdownTimeout + 3) * time.Second

// Restart backoff: 1 s doubling to 30 s; a daemon that ran a minute starts
// from 1 s again.
const (
	dockerdBackoffMin = time.Second
	dockerdBackoffMax = 30 * time.Second
	dockerdHealthyRun = time.Minute
)

// NewDockerd returns dockerd's supervisor, not started: its status says
// "starting" until Start has its answer.
func NewDockerd(cfg DockerConfig, log *slog.Logger) *Dockerd {
	d := &Dockerd{cfg: cfg, log: log, done: make(chan struct{})}
	d.quit, d.stop = context.WithCancel(context.Background())
	d.set("starting", nil)
	return d
}

// Start writes dockerd's configuration, starts it (the helper at path, on
// containerd's snapshotter) and waits until it answers on its socket (made
// 0600); then it supervises dockerd until Stop.
func (d *Dockerd) Start(ctx context.Context, path, snapshotter string) error {
	d.mu.Lock()
	d.cfg.Dockerd, d.cfg.Snapshotter = path, snapshotter
	d.started = true
	d.mu.Unlock()
	fail := func(p *childProc, err error) error {
		d.set("failed", err)
		if p != nil {
			p.Stop(time.Second)
		}
		close(d.done)
		return err
	}
	if err := d.prepare(); err != nil {
		return fail(nil, err)
	}
	// The limits plugin serves until dockerd has stopped for good: dockerd
	// asks it about every API request, unetes' own at the stop too.
	plugin, endPlugin := context.WithCancel(context.Background())
	go func() { <-d.done; endPlugin() }()
	if err := serveDockerLimits(plugin, d.cfg); err != nil {
		return fail(nil, err)
	}
	p, err := d.start(ctx)
	if err != nil {
		return fail(nil, err)
	}
	if err := d.waitReady(ctx, p); err != nil {
		return fail(p, err)
	}
	d.set("ready", nil)
	go d.supervise(p)
	return nil
}

func (d *Dockerd) prepare() error {
	for _, dir := range []string{d.cfg.DataRoot, d.cfg.ExecRoot} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("docker: %w", err)
		}
	}
	if err := writeFileAtomic(d.configPath(), dockerDaemonJSON(d.cfg, true), 0o600); err != nil {
		return fmt.Errorf("docker: daemon.json: %w", err)
	}
	return nil
}

// configPath is dockerd's daemon.json, beside its socket in the state dir
// (its command line then names the instance).
func (d *Dockerd) configPath() string {
	return filepath.Join(filepath.Dir(d.cfg.Socket), "dockerd.json")
}

func (d *Dockerd) start(ctx context.Context) (*childProc, error) {
	if d.cfg.BeforeStart != nil {
		if err := d.cfg.BeforeStart(ctx); err != nil {
			return nil, fmt.Errorf("docker: %w", err)
		}
	}
	// A socket left by a dockerd that died: dockerd refuses to listen
	// over it.
	os.Remove(d.cfg.Socket)
	cmd := exec.Command(d.cfg.Dockerd, "--config-file", d.configPath())
	cmd.Env = append(os.Environ(), dockerdEnv(d.cfg)...)
	p, err := startProcess(DockerdHelper, cmd, d.cfg.LogPath)
	if err != nil {
		return nil, err
	}
	// Stop takes d.proc under the lock: a dockerd started after it did
	// is stopped here.
	d.mu.Lock()
	stopping := d.quit.Err() != nil
	if !stopping {
		d.proc = p
	}
	d.mu.Unlock()
	if stopping {
		p.Stop(dockerdStopGrace)
		return nil, errors.New("docker: stopping")
	}
	return p, nil
}

// waitReady polls GET /_ping on the socket until dockerd answers OK, it
// exits, ctx ends or dockerdReadyTimeout passes; then makes the socket 0600.
func (d *Dockerd) waitReady(ctx context.Context, p *childProc) error {
	ctx, cancel := context.WithTimeout(ctx, dockerdReadyTimeout)
	defer cancel()
	c := UnixClient(d.cfg.Socket, 5*time.Second)
	defer c.CloseIdleConnections()
	for {
		if err := GetOK(ctx, c, "http://docker/_ping"); err == nil {
			if err := os.Chmod(d.cfg.Socket, 0o600); err != nil {
				return fmt.Errorf("docker: %w", err)
			}
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("dockerd exited: %v (see %s)", p.err, d.cfg.LogPath)
		case <-ctx.Done():
			return fmt.Errorf("dockerd did not answer on %s: %w (see %s)", d.cfg.Socket, ctx.Err(), d.cfg.LogPath)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// supervise restarts dockerd whenever it exits, until Stop.
func (d *Dockerd) supervise(p *childProc) {
	defer close(d.done)
	backoff := dockerdBackoffMin
	for {
		began := time.Now()
		select {
		case <-d.quit.Done():
			return
		case <-p.done:
		}
		if d.quit.Err() != nil {
			return
		}
		if time.Since(began) >= dockerdHealthyRun {
			backoff = dockerdBackoffMin
		}
		err := fmt.Errorf("dockerd exited: %v (see %s)", p.err, d.cfg.LogPath)
		for p = nil; p == nil; {
			d.set("restarting", err)
			d.log.Warn("dockerd is not running; restarting", "err", err, "in", backoff)
			select {
			case <-d.quit.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, dockerdBackoffMax)
			p, err = d.start(d.quit)
		}
		if err := d.waitReady(d.quit, p); err != nil {
			d.log.Warn("dockerd did not come back", "err", err)
		} else {
			d.set("ready", nil)
			d.log.Info("dockerd is back")
		}
	}
}

// Stop stops dockerd (SIGTERM; SIGKILL after dockerdStopGrace) and its
// supervisor. Its containers get dockerShutdownTimeout to stop.
func (d *Dockerd) Stop() {
	d.mu.Lock()
	if d.quit.Err() != nil {
		d.mu.Unlock()
		<-d.done
		return
	}
	p, started := d.proc, d.started
	d.stop()
	d.mu.Unlock()
	if p != nil {
		d.endLiveRestore(p)
		p.Stop(dockerdStopGrace)
	}
	if started {
		<-d.done
	}
	d.set("stopped", nil)
}

// dockerdReloadTimeout bounds the wait for dockerd to take live-restore
// off before it is stopped.
const dockerdReloadTimeout = 2 * time.Second

// endLiveRestore turns live-restore off in the running dockerd p (daemon.json
// again, SIGHUP, and GET /info until it says so), so that the SIGTERM that
// follows stops its containers. A dockerd that does not answer in time is
// stopped anyway: its containers then die with the namespace.
func (d *Dockerd) endLiveRestore(p *childProc) {
	err := writeFileAtomic(d.configPath(), dockerDaemonJSON(d.cfg, false), 0o600)
	if err == nil {
		err = p.cmd.Process.Signal(syscall.SIGHUP)
	}
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), dockerdReloadTimeout)
		defer cancel()
		err = waitLiveRestoreOff(ctx, UnixClient(d.cfg.Socket, dockerdReloadTimeout))
	}
	if err != nil {
		d.log.Warn("dockerd keeps live-restore on: its running containers will be killed with the instance, not stopped", "err", err)
	}
}

// waitLiveRestoreOff polls dockerd's GET /info until LiveRestoreEnabled is
// false.
func waitLiveRestoreOff(ctx context.Context, c *http.Client) error {
	defer c.CloseIdleConnections()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://docker/info", nil)
		resp, err := c.Do(req)
		if err == nil {
			var info struct{ LiveRestoreEnabled bool }
			err = json.NewDecoder(resp.Body).Decode(&info)
			resp.Body.Close()
			if err == nil && !info.LiveRestoreEnabled {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("dockerd did not reload daemon.json: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (d *Dockerd) set(state string, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.st = ComponentStatus{Name: Docker, State: state, Since: time.Now(), Note: "unix://" + d.cfg.Socket}
	if err != nil {
		d.st.Error = err.Error()
	}
}

// Status reports dockerd's state.
func (d *Dockerd) Status() ComponentStatus {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.st
}
