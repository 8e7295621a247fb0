package hostfwd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"path/filepath"
	"slices"
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
	// UnpaceLoopback gives TCP forwards listening on a loopback address
	// reno (see unpacedDriver); set it where the host's default
	// congestion control paces.
	UnpaceLoopback bool
}

// Resolver looks up the cluster IP of Service "namespace/name" and checks
// that it has port/proto. Its errors say what to do.
type Resolver func(ctx context.Context, service string, port uint16, proto string) (netip.Addr, error)

// Manager owns the forwards of one instance. It is a RootlessKit
// port.ParentDriver, so RootlessKit's API (and rootlessctl) drive it too.
//
// A forward is either a user's (saved in forwards.json and restored at
// start) or owned (see owner.go: not saved, removed only by its owner).
type Manager struct {
	drv    port.ParentDriver
	unpace bool // Config.UnpaceLoopback
	path   string
	log    *slog.Logger

	mu       sync.Mutex
	saved    []Spec         // the user's forwards; a Service's with To zero
	owned    map[Key]string // owner of each active owned forward
	problems map[Key]string // why a saved forward is not active
	resolve  Resolver       // nil until the Kubernetes API serves
	waiting  string         // the problem of Service forwards while resolve is nil
}

var _ port.ParentDriver = (*Manager)(nil)

// ErrNotRemovable is returned for removing a forward the user did not make.
var ErrNotRemovable = errors.New("forward cannot be removed")

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
	return &Manager{drv: drv, unpace: cfg.UnpaceLoopback, path: path, log: log, saved: saved, owned: map[Key]string{}, problems: map[Key]string{},
		waiting: "waiting for the Kubernetes API"}, nil
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

// Add starts a user's forward and saves it. On any error nothing has changed.
func (m *Manager) Add(ctx context.Context, s Spec) (*port.Status, error) {
	run := s
	if s.Service != "" {
		s.To = netip.Addr{}
		m.mu.Lock()
		resolve, waiting := m.resolve, m.waiting
		m.mu.Unlock()
		if resolve == nil {
			return nil, fmt.Errorf("forward to Service %s: %s", s.Service, waiting)
		}
		to, err := resolve(ctx, s.Service, s.Port, s.Proto)
		if err != nil {
			return nil, err
		}
		run.To = to
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	st, err := m.startLocked(ctx, run)
	if err != nil {
		return nil, err
	}
	next := withSpec(m.saved, s)
	if err := save(m.path, next); err != nil {
		m.drv.RemovePort(ctx, st.ID)
		return nil, err
	}
	m.saved = next
	delete(m.problems, s.Key())
	m.log.Info("forward added", "forward", s.String(), "to", s.Target())
	return st, nil
}

// RemovePort implements port.Manager for RootlessKit's API.
func (m *Manager) RemovePort(ctx context.Context, id int) error {
	sts, _ := m.drv.ListPorts(ctx)
	for _, st := range sts {
		if st.ID == id {
			s, err := FromRK(st.Spec)
			if err != nil {
				return err
			}
			return m.Remove(ctx, s.Key())
		}
	}
	return fmt.Errorf("%w with id %d", ErrNotFound, id)
}

// Remove stops and forgets the user's forward with host side k.
func (m *Manager) Remove(ctx context.Context, k Key) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if o, ok := m.owned[k]; ok {
		return fmt.Errorf("%w: %s %s, not a forward made with `unetes forward`", ErrNotRemovable, k, describeOwner(o))
	}
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
	delete(m.problems, k)
	m.log.Info("forward removed", "forward", k.String())
	return nil
}

// Restore starts the saved forwards and then the ones given at start (-p).
// A saved forward that cannot start is reported and kept for the next start;
// a -p forward that cannot start is an error. Forwards to a Service wait for
// SetResolver.
func (m *Manager) Restore(ctx context.Context, publish []Spec) (warnings []error, err error) {
	m.mu.Lock()
	saved := append([]Spec(nil), m.saved...)
	m.mu.Unlock()
	for _, s := range saved {
		if s.Service != "" {
			m.setProblem(s.Key(), m.waitingReason())
			continue
		}
		if _, err := m.addPort(ctx, s); err != nil {
			err = explainListen(s, err)
			m.setProblem(s.Key(), err.Error())
			warnings = append(warnings, fmt.Errorf("saved forward %s not restored: %w", s, err))
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

func (m *Manager) setProblem(k Key, why string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.problems[k] = why
}

func (m *Manager) waitingReason() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.waiting
}

// NoServices says why forwards to Services cannot start in this instance
// (it runs without Kubernetes).
func (m *Manager) NoServices(why string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.waiting = why
	for _, s := range m.saved {
		if s.Service != "" {
			m.problems[s.Key()] = why
		}
	}
}

// SetResolver is called once the Kubernetes API serves: the saved forwards
// to Services start. A Service that is missing is reported; its forward
// stays saved and starts when Refresh sees the Service.
func (m *Manager) SetResolver(ctx context.Context, r Resolver) (warnings []error) {
	m.mu.Lock()
	m.resolve = r
	var services []string
	for _, s := range m.saved {
		if s.Service != "" && !slices.Contains(services, s.Service) {
			services = append(services, s.Service)
		}
	}
	m.mu.Unlock()
	for _, svc := range services {
		warnings = append(warnings, m.Refresh(ctx, svc, nil)...)
	}
	return warnings
}

// Refresh looks Service "namespace/name" up again and moves the user's
// forwards to it along: started when it appears, moved when its cluster IP
// changes, stopped (but kept) when it goes away. resolve answers from what
// the caller already knows of the Service (a watch event); nil asks the
// resolver SetResolver gave. Before SetResolver, Refresh does nothing.
func (m *Manager) Refresh(ctx context.Context, service string, resolve Resolver) (problems []error) {
	m.mu.Lock()
	if resolve == nil || m.resolve == nil {
		resolve = m.resolve
	}
	var specs []Spec
	for _, s := range m.saved {
		if s.Service == service {
			specs = append(specs, s)
		}
	}
	m.mu.Unlock()
	if resolve == nil {
		return nil
	}
	for _, s := range specs {
		to, rerr := resolve(ctx, s.Service, s.Port, s.Proto)
		if err := m.retarget(ctx, s, to, rerr); err != nil {
			problems = append(problems, fmt.Errorf("forward %s to %s: %w", s.Key(), s.Target(), err))
		}
	}
	return problems
}

// retarget makes the saved forward s lead to to, or stops it when the
// lookup failed (rerr).
func (m *Manager) retarget(ctx context.Context, s Spec, to netip.Addr, rerr error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !slices.Contains(m.saved, s) {
		return nil // removed meanwhile
	}
	st, active := m.active(ctx, s.Key())
	if active && rerr == nil && st.Spec.ChildIP == to.String() {
		return nil
	}
	if active {
		m.drv.RemovePort(ctx, st.ID)
	}
	if rerr != nil {
		m.problems[s.Key()] = rerr.Error()
		return rerr
	}
	run := s
	run.To = to
	if _, err := m.startLocked(ctx, run); err != nil {
		m.problems[s.Key()] = err.Error()
		return err
	}
	delete(m.problems, s.Key())
	m.log.Info("forward to Service started", "forward", s.String(), "service", s.Service, "clusterIP", to)
	return nil
}

// Publish makes the forwards of owner exactly specs, none saved. It is all
// or nothing: when one cannot start, the owner holds no forward at all and
// the error says why, for each spec that failed.
func (m *Manager) Publish(ctx context.Context, owner string, specs []Spec) error {
	if !ValidOwner(owner) {
		return fmt.Errorf("bad owner %q", owner)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	want := map[Key]Spec{}
	for _, s := range specs {
		want[s.Key()] = s
	}
	sts, _ := m.drv.ListPorts(ctx)
	for _, st := range sts { // stop what owner no longer wants, keep the rest as it is
		s, err := FromRK(st.Spec)
		if err != nil || m.owned[s.Key()] != owner {
			continue
		}
		if w, ok := want[s.Key()]; ok && w.Port == s.Port && w.To == s.To {
			delete(want, s.Key())
			continue
		}
		m.drv.RemovePort(ctx, st.ID)
		delete(m.owned, s.Key())
		m.log.Info("forward withdrawn", "owner", owner, "forward", s.String())
	}
	var errs []error
	for _, s := range specs {
		if _, ok := want[s.Key()]; !ok {
			continue
		}
		if _, err := m.startLocked(ctx, s); err != nil {
			errs = append(errs, err)
			continue
		}
		m.owned[s.Key()] = owner
		level := slog.LevelInfo
		if owner == OwnerAPI {
			level = slog.LevelDebug // said in run's own words
		}
		m.log.Log(ctx, level, "forward published", "owner", owner, "forward", s.String(), "to", s.Target())
	}
	if len(errs) > 0 {
		m.withdrawLocked(ctx, owner)
		return errors.Join(errs...)
	}
	return nil
}

// withdrawLocked stops every forward of owner.
func (m *Manager) withdrawLocked(ctx context.Context, owner string) {
	for _, st := range m.ownedLocked(ctx, owner) {
		m.drv.RemovePort(ctx, st.ID)
		delete(m.owned, st.key)
	}
}

// ownedStatus is an active forward with its host side.
type ownedStatus struct {
	port.Status
	key Key
}

// ownedLocked lists the active forwards of owner.
func (m *Manager) ownedLocked(ctx context.Context, owner string) []ownedStatus {
	sts, _ := m.drv.ListPorts(ctx)
	var out []ownedStatus
	for _, st := range sts {
		if s, err := FromRK(st.Spec); err == nil && m.owned[s.Key()] == owner {
			out = append(out, ownedStatus{st, s.Key()})
		}
	}
	return out
}

// Forward is one forward as `unetes forward --list` shows it.
type Forward struct {
	Spec    Spec   `json:"spec"`
	Owner   string `json:"owner,omitempty"` // "" for the user's
	Active  bool   `json:"active"`
	Problem string `json:"problem,omitempty"` // why a saved forward is not active
}

// List returns the active forwards and the saved ones that are not, with
// where each came from.
func (m *Manager) List(ctx context.Context) []Forward {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Forward
	seen := map[Key]bool{}
	sts, _ := m.drv.ListPorts(ctx)
	for _, st := range sts {
		s, err := FromRK(st.Spec)
		if err != nil {
			continue
		}
		for _, sv := range m.saved {
			if sv.Key() == s.Key() && sv.Service != "" {
				s.Service = sv.Service
			}
		}
		seen[s.Key()] = true
		out = append(out, Forward{Spec: s, Owner: m.owned[s.Key()], Active: true})
	}
	for _, s := range m.saved {
		if !seen[s.Key()] {
			out = append(out, Forward{Spec: s, Problem: m.problems[s.Key()]})
		}
	}
	return out
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
	m.owned = map[Key]string{}
	return nil
}

// startLocked starts s unless its host side is taken by another forward.
func (m *Manager) startLocked(ctx context.Context, s Spec) (*port.Status, error) {
	if cur, ok := m.active(ctx, s.Key()); ok {
		if o, owned := m.owned[s.Key()]; owned {
			return nil, fmt.Errorf("%w: %s %s: pick another host port", ErrDuplicate, s.Key(), describeOwner(o))
		}
		return nil, fmt.Errorf("%w: %s already forwards to port %d (a forward made with `unetes forward`): pick another host port, or remove that one first (unetes forward --remove %s)", ErrDuplicate, s.Key(), cur.Spec.ChildPort, s.Key())
	}
	st, err := m.addPort(ctx, s)
	if err != nil {
		return nil, explainListen(s, err)
	}
	return st, nil
}
