package addons

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/unetes/unetes/embed"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
)

// Set runs the enabled add-ons: Start brings them up at once, Stop takes
// them down in reverse order, Status reports each (a disabled one as
// "disabled").
type Set struct {
	env      Env
	disabled []string
	errc     chan error
	log      *slog.Logger

	mu      sync.Mutex
	state   map[string]embed.ComponentStatus
	running []Addon // started, in start order
}

// New returns a Set of every add-on but the disabled ones; nothing starts
// yet, and Status already reports the disabled ones.
func New(disabled []string, log *slog.Logger) *Set {
	s := &Set{disabled: disabled, log: log, errc: make(chan error, len(known)), state: map[string]embed.ComponentStatus{}}
	for _, n := range disabled {
		s.set(n, "disabled", nil)
	}
	return s
}

// Start removes the disabled add-ons' objects, then starts the enabled
// add-ons in parallel and returns when all serve, or with the first
// failure (after stopping the others). Failures after that arrive on Err.
func (s *Set) Start(ctx context.Context, env Env) error {
	s.env = env
	// client-go's default rate limit (5/s, burst 10) would queue the
	// add-ons' few dozen start-up requests for seconds.
	rc := rest.CopyConfig(env.Admin)
	rc.QPS, rc.Burst = 200, 400
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("add-ons: API client: %w", err)
	}
	type result struct {
		i   int
		a   Addon
		err error
	}
	for _, k := range known {
		if slices.Contains(s.disabled, k.name) {
			if err := s.remove(ctx, dyn, k.name, k.new()); err != nil {
				return err
			}
		}
	}
	results := make(chan result, len(known))
	n := 0
	for i, k := range known {
		if slices.Contains(s.disabled, k.name) {
			continue
		}
		n++
		a := k.new()
		go func() { results <- result{i, a, s.startOne(ctx, dyn, k.name, a)} }()
	}
	started := make([]Addon, len(known))
	var errs []error
	for ; n > 0; n-- {
		r := <-results
		if r.err != nil {
			errs = append(errs, r.err)
			continue
		}
		started[r.i] = r.a
	}
	s.mu.Lock()
	for _, a := range started {
		if a != nil {
			s.running = append(s.running, a)
		}
	}
	s.mu.Unlock()
	if len(errs) > 0 {
		s.Stop()
		return errors.Join(errs...)
	}
	return nil
}

// startOne applies an add-on's objects, starts it, then marks its
// endpoints serving and waits for whatever else it needs to be ready.
func (s *Set) startOne(ctx context.Context, dyn dynamic.Interface, name string, a Addon) error {
	t := time.Now()
	s.set(name, "starting", nil)
	kept, err := s.bringUp(ctx, dyn, name, a)
	if err != nil {
		err = fmt.Errorf("add-on %s: %w (its log: %s; `unetes run --disable %s` starts without it)", name, err, filepath.Join(s.env.LogDir, name+".log"), name)
		s.set(name, "failed", err)
		return err
	}
	s.set(name, "ready", nil)
	var notes []string
	if n, ok := a.(noter); ok && n.Note(s.env) != "" {
		notes = append(notes, n.Note(s.env))
	}
	if len(kept) > 0 {
		notes = append(notes, keptNote(kept))
		if s.log != nil {
			s.log.Warn("add-on objects edited outside unetes are kept as they are", "addon", name, "objects", kept)
		}
	}
	s.mu.Lock()
	st := s.state[name]
	st.Note = strings.Join(notes, "; ")
	s.state[name] = st
	s.mu.Unlock()
	if s.log != nil {
		s.log.Info("add-on ready", "addon", name, "took", time.Since(t))
	}
	return nil
}

// keptNote says, in `unetes status`, which of an add-on's objects keep
// someone else's edits.
func keptNote(kept []string) string {
	return "kept as edited: " + strings.Join(slices.Compact(slices.Sorted(slices.Values(kept))), "; ") +
		" (unetes no longer updates these; delete one to get unetes' own back at the next start)"
}

// bringUp applies the add-on's objects, starts it and applies them again
// (serving); it returns the objects left as someone else edited them.
func (s *Set) bringUp(ctx context.Context, dyn dynamic.Interface, name string, a Addon) ([]string, error) {
	objs, err := a.Objects(s.env, false)
	if err != nil {
		return nil, err
	}
	kept, err := apply(ctx, dyn, name, objs)
	if err != nil {
		return nil, err
	}
	failed := func(err error) {
		s.set(name, "failed", err)
		select {
		case s.errc <- fmt.Errorf("add-on %s: %w", name, err):
		default: // the supervisor has been told of a failure already
		}
	}
	if err := a.Start(ctx, s.env, failed); err != nil {
		return nil, err
	}
	if objs, err = a.Objects(s.env, true); err == nil {
		var more []string
		more, err = apply(ctx, dyn, name, objs)
		kept = append(kept, more...)
	}
	if r, ok := a.(readier); ok && err == nil {
		err = r.Ready(ctx, s.env, dyn)
	}
	if err != nil {
		a.Stop()
		return nil, err
	}
	return kept, nil
}

// remove deletes a disabled add-on's objects (only those it made).
func (s *Set) remove(ctx context.Context, dyn dynamic.Interface, name string, a Addon) error {
	objs, err := a.Objects(s.env, true)
	if err == nil {
		err = deleteOwned(ctx, dyn, name, objs)
	}
	if c, ok := a.(cleaner); ok && err == nil {
		err = c.Cleanup(ctx, s.env)
	}
	if err != nil {
		return fmt.Errorf("remove the objects of the disabled add-on %s: %w", name, err)
	}
	return nil
}

// Stop stops the running add-ons in reverse start order.
func (s *Set) Stop() {
	s.mu.Lock()
	running := s.running
	s.running = nil
	s.mu.Unlock()
	for i := len(running) - 1; i >= 0; i-- {
		running[i].Stop()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, st := range s.state {
		if st.State != "disabled" && st.State != "failed" {
			s.state[name] = embed.ComponentStatus{Name: name, State: "stopped", Since: time.Now()}
		}
	}
}

// Err delivers an add-on's failure after Start returned.
func (s *Set) Err() <-chan error { return s.errc }

// Status reports every add-on, in start order.
func (s *Set) Status() []embed.ComponentStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []embed.ComponentStatus
	for _, k := range known {
		if st, ok := s.state[k.name]; ok {
			out = append(out, st)
		}
	}
	return out
}

func (s *Set) set(name, state string, err error) {
	st := embed.ComponentStatus{Name: name, State: state, Since: time.Now()}
	if err != nil {
		st.Error = err.Error()
	}
	s.mu.Lock()
	s.state[name] = st
	s.mu.Unlock()
}
