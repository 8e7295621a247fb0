package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/unetes/unetes/embed/pagecache"
)

// program is the embedded unetes: its compressed bytes and what the
// unpacked file must be.
type program struct {
	open   func() (io.ReadCloser, error) // the zstd stream
	digest string                        // hex SHA-256 of the unpacked file
	size   int64
}

// errNoPayload: a launcher built without the program (`go build` of this
// package alone).
var errNoPayload = errors.New("this unetes carries no program (its payload was not built): build it with `make build`")

// loadProgram reads the payload's sum file; the stream is opened when
// needed.
func loadProgram(fsys fs.FS) (program, error) {
	sum, err := fs.ReadFile(fsys, "payload/unetes.sum")
	if err != nil {
		return program{}, errNoPayload
	}
	fields := strings.Fields(string(sum))
	if len(fields) != 2 || len(fields[0]) != sha256.Size*2 {
		return program{}, fmt.Errorf("payload/unetes.sum %q is not \"DIGEST SIZE\": rebuild with `make build`", sum)
	}
	size, err := strconv.ParseInt(fields[1], 10, 64)
	if err != nil {
		return program{}, fmt.Errorf("payload/unetes.sum: %w: rebuild with `make build`", err)
	}
	return program{
		open:   func() (io.ReadCloser, error) { return fsys.Open("payload/unetes.zst") },
		digest: fields[0],
		size:   size,
	}, nil
}

// dirName is the program's directory under the cache: a build per digest.
func (p program) dirName() string { return p.digest[:20] }

// ensure returns the unpacked program under binDir, unpacking it first
// where it is missing (the first run of this build for this user) and then
// removing earlier builds that no process runs. A file of the right size
// is taken as unpacked: it only gets there complete, by rename after its
// digest was checked. After an unpack, held is the build's lock, still
// held (lockBuild); otherwise nil.
func (p program) ensure(binDir string, log io.Writer) (path string, held *os.File, err error) {
	dir := filepath.Join(binDir, p.dirName())
	path = filepath.Join(dir, "unetes")
	if p.present(path) {
		pagecache.Refill(path)
		return path, nil, nil
	}
	mkdir := func() error {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("unpack unetes: %w: set XDG_CACHE_HOME to a directory of yours with ~%d MB free", err, p.size>>20)
		}
		return nil
	}
	if err := mkdir(); err != nil {
		return "", nil, err
	}
	lock, err := lockBuild(dir, log)
	if err != nil {
		return "", nil, err
	}
	if p.present(path) { // another launcher unpacked it meanwhile
		lock.Close()
		return path, nil, nil
	}
	start := time.Now()
	if err := mkdir(); err != nil { // removeUnused of another build may have raced
		lock.Close()
		return "", nil, err
	}
	if err := p.unpack(path); err != nil {
		lock.Close()
		return "", nil, err
	}
	fmt.Fprintf(log, "unetes: first run of this build: unpacked into %s in %.1fs (once)\n", dir, time.Since(start).Seconds())
	removeUnused(binDir, p.dirName())
	return path, lock, nil
}

func (p program) present(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Size() == p.size
}

// unpack writes the program to path through a temporary file beside it,
// checking its digest before the rename.
func (p program) unpack(path string) error {
	src, err := p.open()
	if err != nil {
		return errNoPayload
	}
	defer src.Close()
	// The payload is made with `zstd --long` (a 128 MiB window).
	zr, err := zstd.NewReader(src, zstd.WithDecoderMaxWindow(1<<30), zstd.WithDecoderConcurrency(1))
	if err != nil {
		return fmt.Errorf("unpack unetes: %w", err)
	}
	defer zr.Close()
	tmp, err := os.CreateTemp(filepath.Dir(path), ".unetes-*")
	if err != nil {
		return fmt.Errorf("unpack unetes: %w", err)
	}
	defer os.Remove(tmp.Name()) // after the rename, nothing
	h := sha256.New()
	// Base-page writes, so that the processes map only the pages they use
	// (see pagecache).
	n, err := copyDecodingAhead(io.MultiWriter(pagecache.NewWriter(tmp), h), zr)
	if err == nil {
		err = tmp.Chmod(0o755)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("unpack unetes into %s: %w (is the disk full?)", filepath.Dir(path), err)
	}
	if n != p.size || hex.EncodeToString(h.Sum(nil)) != p.digest {
		return errors.New("unpack unetes: the unpacked program differs from its sum: this download is damaged; download or build it again (`make build`)")
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("unpack unetes: %w", err)
	}
	return nil
}

// copyDecodingAhead copies r to w with r read in a goroutine of its own, a
// few chunks ahead: decoding (~1 s for the program here) overlaps writing
// and hashing (~0.5 s), on another core.
func copyDecodingAhead(w io.Writer, r io.Reader) (int64, error) {
	const chunks, size = 4, 1 << 20
	free, full := make(chan []byte, chunks), make(chan []byte, chunks)
	for range chunks {
		free <- make([]byte, size)
	}
	var readErr error
	go func() {
		defer close(full)
		for buf := range free {
			k, err := io.ReadFull(r, buf)
			if k > 0 {
				full <- buf[:k]
			}
			if err != nil {
				if err != io.EOF && err != io.ErrUnexpectedEOF {
					readErr = err
				}
				return
			}
		}
	}()
	var n int64
	var writeErr error
	for buf := range full {
		if writeErr == nil {
			var k int
			k, writeErr = w.Write(buf)
			n += int64(k)
		}
		free <- buf[:cap(buf)]
	}
	if readErr != nil {
		return n, readErr
	}
	return n, writeErr
}

// removeUnused deletes the builds under binDir other than keep that no
// process of this user runs (an instance started by an earlier build keeps
// its program: it re-executes it for the kubelet and for exec).
func removeUnused(binDir, keep string) {
	ents, err := os.ReadDir(binDir)
	if err != nil {
		return
	}
	inUse := runningExecutables()
	for _, e := range ents {
		if !e.IsDir() || e.Name() == keep {
			continue
		}
		dir := filepath.Join(binDir, e.Name())
		if !inUse[filepath.Join(dir, "unetes")] {
			os.RemoveAll(dir)
		}
	}
}

// runningExecutables is the set of executables of the processes this user
// may inspect.
func runningExecutables() map[string]bool {
	out := map[string]bool{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		if exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe")); err == nil {
			out[strings.TrimSuffix(exe, " (deleted)")] = true
		}
	}
	return out
}
