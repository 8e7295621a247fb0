package hostfwd

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"

	"github.com/rootless-containers/rootlesskit/v3/pkg/api"
	"github.com/rootless-containers/rootlesskit/v3/pkg/port"
	builtinchild "github.com/rootless-containers/rootlesskit/v3/pkg/port/builtin/child"
	builtinparent "github.com/rootless-containers/rootlesskit/v3/pkg/port/builtin/parent"
)

// Config configures a Manager.
type Config struct {
	StateDir string // the child's dial socket lives here
	DataDir  string // forwards.json lives here
	// PreserveSourceIP makes TCP targets see the real client address (for
	// non-loopback clients) through IP_TRANSPARENT and policy routing inside
	// the namespace; where that cannot be set up, they see 127.0.0.1.
	PreserveSourceIP bool
}

// Manager owns the forwards of one instance. It is a RootlessKit
// port.ParentDriver, so RootlessKit's API (and rootlessctl) drive it too.
type Manager struct {
	drv  port.ParentDriver
	path string
	log  *slog.Logger

	mu    sync.Mutex
	saved []Spec // forwards.json: active ones and ones that failed to restore
}

var _ port.ParentDriver = (*Manager)(nil)

// New creates a Manager and reads the saved forwards.
func New(cfg Config, log *slog.Logger) (*Manager, error) {
	drv, err := builtinparent.NewDriver(logWriter{log}, cfg.StateDir, cfg.PreserveSourceIP, "auto")
	if err != nil {
		return nil, fmt.Errorf("create port driver: %w", err)
	}
	path := filepath.Join(cfg.DataDir, storeFile)
	saved, err := load(path)
	if err != nil {
		return nil, err
	}
	return &Manager{drv: drv, path: path, log: log, saved: saved}, nil
}

// ChildDriver is the in-namespace side: it dials targets and passes the fds back.
func ChildDriver(log io.Writer) port.ChildDriver { return builtinchild.NewDriver(log) }

// Info implements port.ParentDriver.
func (m *Manager) Info(ctx context.Context) (*api.PortDriverInfo, error) { return m.drv.Info(ctx) }

// OpaqueForChild implements port.ParentDriver.
func (m *Manager) OpaqueForChild() map[string]string { return m.drv.OpaqueForChild() }

// RunParentDriver implements port.ParentDriver.
func (m *Manager) RunParentDriver(initComplete chan struct{}, quit <-chan struct{}, cctx *port.ChildContext) error {
	return m.drv.RunParentDriver(initComplete, quit, cctx)
}

// ListPorts implements port.Manager: the active forwards.
func (m *Manager) ListPorts(ctx context.Context) ([]port.Status, error) { return m.drv.ListPorts(ctx) }

// AddPort implements port.Manager for RootlessKit's API.
func (m *Manager) AddPort(ctx context.Context, p port.Spec) (*port.Status, error) {
	s, err := FromRK(p)
	if err != nil {
		return nil, err
	}
	return m.Add(ctx, s)
}

// Add starts a forward and saves it. On any error nothing has changed.
func (m *Manager) Add(ctx context.Context, s Spec) (*port.Status, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st, err := m.startLocked(ctx, s)
	if err != nil {
		return nil, err
	}
	next := withSpec(m.saved, s)
	if err := save(m.path, next); err != nil {
		m.drv.RemovePort(ctx, st.ID)
		return nil, err
	}
	m.saved = next
	m.log.Info("forward added", "forward", s.String())
	return st, nil
}

// RemovePort implements port.Manager for RootlessKit's API.
func (m *Manager) RemovePort(ctx context.Context, id int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	sts, _ := m.drv.ListPorts(ctx)
	for _, st := range sts {
		if st.ID == id {
			s, err := FromRK(st.Spec)
			if err != nil {
				return err
			}
			return m.removeLocked(ctx, s.Key(), id)
		}
	}
	return fmt.Errorf("%w with id %d", ErrNotFound, id)
}

// Remove stops and forgets the forward with host side k.
func (m *Manager) Remove(ctx context.Context, k Key) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if st, ok := m.active(ctx, k); ok {
		return m.removeLocked(ctx, k, st.ID)
	}
	for _, s := range m.saved {
		if s.Key() == k { // saved but not restored: just forget it
			return m.removeLocked(ctx, k, -1)
		}
	}
	return fmt.Errorf("%w %s: see `unetes forward --list`", ErrNotFound, k)
}

func (m *Manager) removeLocked(ctx context.Context, k Key, id int) error {
	next := withoutKey(m.saved, k)
	if err := save(m.path, next); err != nil {
		return err
	}
	if id >= 0 {
		if err := m.drv.RemovePort(ctx, id); err != nil {
			save(m.path, m.saved)
			return fmt.Errorf("remove forward %s: %w", k, err)
		}
	}
	m.saved = next
	m.log.Info("forward removed", "forward", k.String())
	return nil
}

// Restore starts the saved forwards and then the ones given at start (-p).
// A saved forward that cannot start is reported and kept for the next start;
// a -p forward that cannot start is an error.
func (m *Manager) Restore(ctx context.Context, publish []Spec) (warnings []error, err error) {
	m.mu.Lock()
	saved := append([]Spec(nil), m.saved...)
	m.mu.Unlock()
	for _, s := range saved {
		if _, err := m.drv.AddPort(ctx, s.rkSpec()); err != nil {
			warnings = append(warnings, fmt.Errorf("saved forward %s not restored: %w", s, explainListen(s, err)))
		}
	}
	for _, s := range publish {
		if st, ok := m.active(ctx, s.Key()); ok && st.Spec.ChildPort == int(s.Port) {
			continue // already restored from the saved list
		}
		if _, err := m.Add(ctx, s); err != nil {
			return warnings, fmt.Errorf("publish %s: %w", s, err)
		}
	}
	return warnings, nil
}

// active finds the running forward with host side k.
func (m *Manager) active(ctx context.Context, k Key) (port.Status, bool) {
	sts, _ := m.drv.ListPorts(ctx)
	for _, st := range sts {
		if s, err := FromRK(st.Spec); err == nil && s.Key() == k {
			return st, true
		}
	}
	return port.Status{}, false
}

func withSpec(specs []Spec, s Spec) []Spec {
	return append(withoutKey(specs, s.Key()), s)
}

func withoutKey(specs []Spec, k Key) []Spec {
	out := make([]Spec, 0, len(specs))
	for _, s := range specs {
		if s.Key() != k {
			out = append(out, s)
		}
	}
	return out
}

// logWriter feeds RootlessKit's line-oriented log output into slog.
type logWriter struct{ log *slog.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	w.log.Debug(strings.TrimSpace(string(p)))
	return len(p), nil
}

// Close stops every active forward; the saved list is kept for the next start.
func (m *Manager) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	sts, _ := m.drv.ListPorts(context.Background())
	for _, st := range sts {
		m.drv.RemovePort(context.Background(), st.ID)
	}
	return nil
}

// Expose starts a forward that is not saved: one the instance sets up itself
// at every start (the API port).
func (m *Manager) Expose(ctx context.Context, s Spec) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, err := m.startLocked(ctx, s)
	return err
}

// startLocked starts s unless its host side is taken by another forward.
func (m *Manager) startLocked(ctx context.Context, s Spec) (*port.Status, error) {
	if cur, ok := m.active(ctx, s.Key()); ok {
		return nil, fmt.Errorf("%w: %s already forwards to port %d: remove it first (unetes forward --remove %s)", ErrDuplicate, s.Key(), cur.Spec.ChildPort, s.Key())
	}
	st, err := m.drv.AddPort(ctx, s.rkSpec())
	if err != nil {
		return nil, explainListen(s, err)
	}
	return st, nil
}
