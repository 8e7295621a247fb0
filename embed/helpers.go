package embed

import (
	"archive/tar"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/klauspost/compress/zstd"
	"github.com/unetes/unetes/embed/pagecache"
)

// payloadFS holds what `make` packs into embed/payload: the helper binaries
// as one zstd-compressed tar (helpers.tar.zst) and their SHA-256 sums
// (helpers.sum, sha256sum's format). The sums alone say whether an
// installed helper is current, so a start never reads the archive's pages
// (~29 MB compressed, ~131 MB raw with dockerd) unless it has to unpack.
//
//go:embed payload
var payloadFS embed.FS

const (
	helpersArchive = "payload/helpers.tar.zst"
	helpersSums    = "payload/helpers.sum"
	// The archive is made with `zstd --long` (a 128 MiB window).
	helpersMaxWindow = 1 << 27
)

// Helper binaries unetes writes to <data>/bin/<hash>/ and runs from there.
var helperNames = []string{"runc", "runc-wrapper", "containerd-shim-runc-v2", "bridge", "host-local", "loopback", "portmap", "tuning", "pause", DockerdHelper}

// ErrNoHelpers means the binary was built without `make helpers`.
var ErrNoHelpers = errors.New("this unetes binary has no embedded runc/shim/CNI plugins/pause: build it with `make build`, not plain `go build`")

// parseSums reads sha256sum output into name → hex digest and checks that
// it names exactly the helpers unetes runs.
func parseSums(b []byte) (map[string]string, error) {
	sums := map[string]string{}
	for i, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 || len(f[0]) != sha256.Size*2 {
			return nil, fmt.Errorf("%w (line %d of helpers.sum is %q)", ErrNoHelpers, i+1, line)
		}
		if _, err := hex.DecodeString(f[0]); err != nil {
			return nil, fmt.Errorf("%w (line %d of helpers.sum: %v)", ErrNoHelpers, i+1, err)
		}
		sums[strings.TrimPrefix(f[1], "*")] = f[0]
	}
	for _, n := range helperNames {
		if sums[n] == "" {
			return nil, fmt.Errorf("%w (missing %s)", ErrNoHelpers, n)
		}
	}
	return sums, nil
}

// embeddedSums returns the helpers' digests and the directory name they
// give: a new unetes with other helpers uses a new directory.
func embeddedSums() (map[string]string, string, error) {
	b, err := payloadFS.ReadFile(helpersSums)
	if err != nil {
		return nil, "", fmt.Errorf("%w (no helpers.sum)", ErrNoHelpers)
	}
	sums, err := parseSums(b)
	if err != nil {
		return nil, "", err
	}
	h := sha256.Sum256(b)
	return sums, hex.EncodeToString(h[:])[:16], nil
}

// InstallHelpers makes sure <data>/bin/<hash>/ holds every embedded helper,
// byte for byte (checked by digest, or by its file's record of the last
// check: a changed or truncated file is unpacked again), and returns the dir.
func InstallHelpers(dataDir string) (string, error) {
	sums, hash, err := embeddedSums()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(dataDir, "bin", hash)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("helper dir: %w", err)
	}
	rec := readVerified(dir)
	var hashed, stale []string
	for _, n := range helperNames {
		p := filepath.Join(dir, n)
		pagecache.Refill(p) // before any read of it: hashing would read ahead
		if k, err := statKey(p); err == nil && rec[n] == sums[n]+" "+k {
			continue // as it was when its digest was last right
		}
		hashed = append(hashed, n)
		if got, _ := fileSum(p); got != sums[n] {
			stale = append(stale, n)
		}
	}
	if len(stale) > 0 {
		if err := unpackHelpers(dir, stale, sums); err != nil {
			return "", err
		}
	}
	if len(hashed) > 0 { // a start that found every record right writes nothing
		writeVerified(dir, sums)
	}
	removeOldHelpers(filepath.Join(dataDir, "bin"), hash)
	return dir, nil
}

// verifiedName is a helper dir's record of its helpers as they were when
// their digests were last found right: digest, size, mtime and inode. A
// helper whose file still matches it is not hashed again (dockerd's 88 MB
// take ~0.1 s at every start); one changed, truncated or replaced is.
const verifiedName = ".verified"

func statKey(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	ino := uint64(0)
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		ino = st.Ino
	}
	return fmt.Sprintf("%d %d %d", fi.Size(), fi.ModTime().UnixNano(), ino), nil
}

// readVerified returns name → "digest size mtime inode".
func readVerified(dir string) map[string]string {
	rec := map[string]string{}
	b, _ := os.ReadFile(filepath.Join(dir, verifiedName))
	for _, line := range strings.Split(string(b), "\n") {
		if name, rest, ok := strings.Cut(line, " "); ok {
			rec[name] = rest
		}
	}
	return rec
}

// writeVerified records every helper of dir, all just checked or written.
func writeVerified(dir string, sums map[string]string) {
	var b strings.Builder
	for _, n := range helperNames {
		k, err := statKey(filepath.Join(dir, n))
		if err != nil {
			return
		}
		fmt.Fprintf(&b, "%s %s %s\n", n, sums[n], k)
	}
	writeFileAtomic(filepath.Join(dir, verifiedName), []byte(b.String()), 0o600)
}

// unpackHelpers writes the named helpers from the embedded archive to dir,
// each through a temporary file renamed once its digest is right.
func unpackHelpers(dir string, names []string, sums map[string]string) error {
	f, err := payloadFS.Open(helpersArchive)
	if err != nil {
		return fmt.Errorf("%w (no helpers.tar.zst)", ErrNoHelpers)
	}
	defer f.Close()
	zr, err := zstd.NewReader(f, zstd.WithDecoderMaxWindow(helpersMaxWindow), zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
	if err != nil {
		return fmt.Errorf("unpack helpers: %w", err)
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	left := slices.Clone(names)
	for len(left) > 0 {
		hdr, err := tr.Next()
		if err == io.EOF {
			return fmt.Errorf("%w (the archive lacks %s)", ErrNoHelpers, strings.Join(left, ", "))
		}
		if err != nil {
			return fmt.Errorf("unpack helpers: %w", err)
		}
		i := slices.Index(left, hdr.Name)
		if i < 0 {
			continue
		}
		left = slices.Delete(left, i, i+1)
		if err := writeHelper(filepath.Join(dir, hdr.Name), tr, sums[hdr.Name]); err != nil {
			return err
		}
	}
	return nil
}

func writeHelper(path string, r io.Reader, want string) error {
	tmp := path + ".tmp"
	w, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o700)
	if err != nil {
		return fmt.Errorf("write helper %s: %w", filepath.Base(path), err)
	}
	h := sha256.New()
	// Base-page writes: dockerd written 1 MiB at a time mapped 99 MB of its
	// 88 MB after start (see pagecache).
	_, err = io.CopyBuffer(io.MultiWriter(pagecache.NewWriter(w), h), r, make([]byte, 64<<10))
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err == nil && hex.EncodeToString(h.Sum(nil)) != want {
		err = errors.New("its digest differs from helpers.sum: the binary is damaged; rebuild it with `make build`")
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("install helper %s: %w", filepath.Base(path), err)
	}
	return nil
}

// fileSum is the hex SHA-256 of the file at path.
func fileSum(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
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
