package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	"github.com/klauspost/compress/zstd"
)

// testPayload is a payload FS holding content, with the sum of want.
func testPayload(t *testing.T, content, want []byte) fstest.MapFS {
	t.Helper()
	var z bytes.Buffer
	zw, err := zstd.NewWriter(&z)
	if err != nil {
		t.Fatal(err)
	}
	zw.Write(content)
	zw.Close()
	sum := sha256.Sum256(want)
	return fstest.MapFS{
		"payload/unetes.zst": {Data: z.Bytes()},
		"payload/unetes.sum": {Data: []byte(fmt.Sprintf("%s %d\n", hex.EncodeToString(sum[:]), len(want)))},
	}
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

func TestEnsureUnpacksOnce(t *testing.T) {
	content := bytes.Repeat([]byte("unetes program "), 300000) // several chunks
	p, err := loadProgram(testPayload(t, content, content))
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	var log bytes.Buffer
	path, held, err := p.ensure(bin, &log)
	if err != nil {
		t.Fatal(err)
	}
	if held == nil {
		t.Fatal("the unpacking launcher holds no lock to hand on")
	}
	held.Close()
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, content) {
		t.Fatalf("unpacked %d bytes (%v), want %d", len(got), err, len(content))
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o755 {
		t.Fatalf("mode %v", fi.Mode())
	}
	if !strings.Contains(log.String(), "unpacked into") {
		t.Fatalf("first run says nothing: %q", log.String())
	}
	before := inode(t, path)
	log.Reset()
	if again, held, err := p.ensure(bin, &log); err != nil || again != path || held != nil || inode(t, path) != before || log.Len() != 0 {
		t.Fatalf("second run: %q %v, holds %v, unpacked again: %v, said %q", again, err, held, inode(t, path) != before, log.String())
	}
}

func TestEnsureRefusesADamagedPayload(t *testing.T) {
	p, err := loadProgram(testPayload(t, []byte("damaged"), []byte("the real program")))
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	if _, held, err := p.ensure(bin, io.Discard); err == nil || held != nil || !strings.Contains(err.Error(), "damaged") {
		t.Fatalf("err %v, holds %v", err, held)
	}
	left, _ := os.ReadDir(filepath.Join(bin, p.dirName()))
	for _, e := range left {
		if e.Name() != "lock" {
			t.Fatalf("a failed unpack left %s", e.Name())
		}
	}
}

// A launcher that finds the program missing while another unpacks it
// waits for that one's lock (held through its exec, until the program
// releases it), says so, and unpacks nothing itself.
func TestEnsureWaitsForTheUnpackingLauncher(t *testing.T) {
	content := bytes.Repeat([]byte("unetes program "), 300000)
	p, err := loadProgram(testPayload(t, content, content))
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	path, held, err := p.ensure(bin, io.Discard)
	if err != nil || held == nil {
		t.Fatalf("first: %v, holds %v", err, held)
	}
	before := inode(t, path)
	os.Rename(path, path+".away") // as seen by a launcher that looked before the rename
	type result struct {
		path string
		held bool
		err  error
		said string
	}
	done := make(chan result, 1)
	go func() {
		var log bytes.Buffer
		got, h, err := p.ensure(bin, &log)
		if h != nil {
			h.Close()
		}
		done <- result{got, h != nil, err, log.String()}
	}()
	select {
	case r := <-done:
		t.Fatalf("the second launcher did not wait for the lock: %+v", r)
	case <-time.After(300 * time.Millisecond):
	}
	os.Rename(path+".away", path)
	held.Close() // the program it ran released it
	r := <-done
	if r.err != nil || r.path != path || r.held || inode(t, path) != before {
		t.Fatalf("second launcher: %+v, unpacked again: %v", r, inode(t, path) != before)
	}
	if !strings.Contains(r.said, "waiting for another unetes") || strings.Contains(r.said, "unpacked into") {
		t.Fatalf("second launcher said %q", r.said)
	}
}

func TestLoadProgramErrors(t *testing.T) {
	if _, err := loadProgram(fstest.MapFS{"payload/README.md": {}}); !errors.Is(err, errNoPayload) {
		t.Fatalf("no payload: %v", err)
	}
	if _, err := loadProgram(fstest.MapFS{"payload/unetes.sum": {Data: []byte("abc 12")}}); err == nil || !strings.Contains(err.Error(), "make build") {
		t.Fatalf("bad sum: %v", err)
	}
}

func TestRemoveUnusedKeepsWhatRuns(t *testing.T) {
	bin := t.TempDir()
	sleep, err := os.ReadFile("/bin/sleep")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"old", "busy", "new"} {
		os.MkdirAll(filepath.Join(bin, d), 0o700)
		if err := os.WriteFile(filepath.Join(bin, d, "unetes"), sleep, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// An instance of an earlier build still runs its program.
	busy := exec.Command(filepath.Join(bin, "busy", "unetes"), "60")
	if err := busy.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { busy.Process.Kill(); busy.Wait() })
	removeUnused(bin, "new")
	if _, err := os.Stat(filepath.Join(bin, "old")); !os.IsNotExist(err) {
		t.Fatalf("an unused build stays: %v", err)
	}
	for _, d := range []string{"busy", "new"} {
		if _, err := os.Stat(filepath.Join(bin, d, "unetes")); err != nil {
			t.Fatalf("build %s is gone: %v", d, err)
		}
	}
}
