package hostfwd

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/rootless-containers/rootlesskit/v3/pkg/port"
)

// storeFile is the name of the saved forwards in the data dir.
const storeFile = "forwards.json"

// load returns the saved forwards; none when the file does not exist.
func load(path string) ([]Spec, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read saved forwards: %w", err)
	}
	var raw []record
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("saved forwards %s are corrupt (%v): fix or remove the file", path, err)
	}
	out := make([]Spec, 0, len(raw))
	for _, r := range raw {
		s, err := r.spec()
		if err != nil {
			return nil, fmt.Errorf("saved forwards %s: %w: fix or remove the file", path, err)
		}
		out = append(out, s)
	}
	return out, nil
}

// record is one saved forward: RootlessKit's spec (so older files still
// read) and, for a forward to a Service, its "namespace/name".
type record struct {
	port.Spec
	Service string `json:"service,omitempty"`
}

func (r record) spec() (Spec, error) {
	s, err := FromRK(r.Spec)
	if err == nil && r.Service != "" {
		s.Service, err = ParseService("svc/" + serviceRef(r.Service))
	}
	return s, err
}

// record is s as saved and as the API socket carries it. A forward to a
// Service keeps the Service, not its address: that is looked up at every
// start.
func (s Spec) record() record {
	r := record{Spec: s.rkSpec(), Service: s.Service}
	if s.Service != "" {
		r.ChildIP = ""
	}
	return r
}

// MarshalJSON writes s as RootlessKit's spec plus "service".
func (s Spec) MarshalJSON() ([]byte, error) {
	return json.Marshal(s.record())
}

// UnmarshalJSON reads what MarshalJSON writes, checking it.
func (s *Spec) UnmarshalJSON(b []byte) error {
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return fmt.Errorf("%w: %v", ErrSpecSyntax, err)
	}
	v, err := r.spec()
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// serviceRef turns "namespace/name" into ParseService's "name.namespace".
func serviceRef(nsName string) string {
	ns, name, _ := strings.Cut(nsName, "/")
	return name + "." + ns
}

// save writes the forwards atomically (temp file and rename), mode 0600.
func save(path string, specs []Spec) error {
	if specs == nil {
		specs = []Spec{}
	}
	b, err := json.MarshalIndent(specs, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".forwards-*.json")
	if err != nil {
		return fmt.Errorf("save forwards: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("save forwards: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save forwards: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("save forwards: %w", err)
	}
	return nil
}
