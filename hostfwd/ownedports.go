package hostfwd

import (
	"context"
	"fmt"

	"github.com/rootless-containers/rootlesskit/v3/pkg/api"
	"github.com/rootless-containers/rootlesskit/v3/pkg/port"
)

// OwnedPorts is RootlessKit's port API (port.Manager) for one owner, such
// as dockerd publishing `docker run -p`: what it adds is listed as that
// owner's and not saved (the owner adds it again at every start), and it
// lists and removes only its own.
func (m *Manager) OwnedPorts(owner string) (*OwnedPorts, error) {
	if !ValidOwner(owner) {
		return nil, fmt.Errorf("bad owner %q", owner)
	}
	return &OwnedPorts{m: m, owner: owner}, nil
}

// OwnedPorts is one owner's view of the forwards (see Manager.OwnedPorts).
type OwnedPorts struct {
	m     *Manager
	owner string
}

var _ port.Manager = (*OwnedPorts)(nil)

// Info is the port driver's, as RootlessKit's API reports it.
func (o *OwnedPorts) Info(ctx context.Context) (*api.PortDriverInfo, error) { return o.m.Info(ctx) }

func (o *OwnedPorts) AddPort(ctx context.Context, p port.Spec) (*port.Status, error) {
	s, err := FromRK(p)
	if err != nil {
		return nil, err
	}
	m := o.m
	m.mu.Lock()
	defer m.mu.Unlock()
	st, err := m.startLocked(ctx, s)
	if err != nil {
		return nil, err
	}
	m.owned[s.Key()] = o.owner
	m.log.Info("forward published", "owner", o.owner, "forward", s.String(), "to", s.Target())
	return st, nil
}

func (o *OwnedPorts) RemovePort(ctx context.Context, id int) error {
	m := o.m
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, st := range m.ownedLocked(ctx, o.owner) {
		if st.ID != id {
			continue
		}
		if err := m.drv.RemovePort(ctx, id); err != nil {
			return fmt.Errorf("remove forward %s: %w", st.key, err)
		}
		delete(m.owned, st.key)
		m.log.Info("forward withdrawn", "owner", o.owner, "forward", st.key.String())
		return nil
	}
	return fmt.Errorf("%w with id %d of %s", ErrNotFound, id, o.owner)
}

func (o *OwnedPorts) ListPorts(ctx context.Context) ([]port.Status, error) {
	o.m.mu.Lock()
	defer o.m.mu.Unlock()
	var out []port.Status
	for _, st := range o.m.ownedLocked(ctx, o.owner) {
		out = append(out, st.Status)
	}
	return out, nil
}
