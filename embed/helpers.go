package embed

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// helperFS holds the helper binaries `make helpers` built into embed/helpers.
//
//go:embed helpers
var helperFS embed.FS

// Helper binaries unetes writes to <data>/bin/<hash>/ and runs from there.
var helperNames = []string{"runc", "runc-wrapper", "containerd-shim-runc-v2", "bridge", "host-local", "loopback", "portmap", "pause"}

// ErrNoHelpers means the binary was built without `make helpers`.
var ErrNoHelpers = errors.New("this unetes binary has no embedded runc/shim/CNI plugins/pause: build it with `make build`, not plain `go build`")

func helper(name string) ([]byte, error) {
	b, err := helperFS.ReadFile("helpers/" + name)
	if err != nil {
		return nil, fmt.Errorf("%w (missing %s)", ErrNoHelpers, name)
	}
	return b, nil
}

// helpersHash is the hex digest over every helper's name and content; it
// names the directory, so a new unetes with other helpers uses a new one.
func helpersHash() (string, error) {
	h := sha256.New()
	names := append([]string(nil), helperNames...)
	sort.Strings(names)
	for _, n := range names {
		b, err := helper(n)
		if err != nil {
			return "", err
		}
		sum := sha256.Sum256(b)
		fmt.Fprintf(h, "%s %x\n", n, sum)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// InstallHelpers writes the embedded helpers to <data>/bin/<hash>/ unless
// they are there already, and checks every file against the embedded bytes
// either way (a changed or truncated file is rewritten). It returns the dir.
func InstallHelpers(dataDir string) (string, error) {
	hash, err := helpersHash()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(dataDir, "bin", hash)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("helper dir: %w", err)
	}
	for _, n := range helperNames {
		want, _ := helper(n)
		p := filepath.Join(dir, n)
		if got, err := os.ReadFile(p); err == nil && bytes.Equal(got, want) {
			continue
		}
		tmp := p + ".tmp"
		if err := os.WriteFile(tmp, want, 0o700); err != nil {
			return "", fmt.Errorf("write helper %s: %w", n, err)
		}
		if err := os.Rename(tmp, p); err != nil {
			return "", fmt.Errorf("install helper %s: %w", n, err)
		}
	}
	removeOldHelpers(filepath.Join(dataDir, "bin"), hash)
	return dir, nil
}

// removeOldHelpers deletes helper dirs of earlier unetes builds.
func removeOldHelpers(binDir, keep string) {
	ents, err := os.ReadDir(binDir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if e.IsDir() && e.Name() != keep {
			os.RemoveAll(filepath.Join(binDir, e.Name()))
		}
	}
}
