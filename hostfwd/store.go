package hostfwd

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

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
	var raw []port.Spec
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("saved forwards %s are corrupt (%v): fix or remove the file", path, err)
	}
	out := make([]Spec, 0, len(raw))
	for _, r := range raw {
		s, err := FromRK(r)
		if err != nil {
			return nil, fmt.Errorf("saved forwards %s: %w: fix or remove the file", path, err)
		}
		out = append(out, s)
	}
	return out, nil
}

// save writes the forwards atomically (temp file and rename), mode 0600.
func save(path string, specs []Spec) error {
	raw := make([]port.Spec, 0, len(specs))
	for _, s := range specs {
		raw = append(raw, s.rkSpec())
	}
	b, err := json.MarshalIndent(raw, "", "  ")
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
