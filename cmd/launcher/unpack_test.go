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
	path, err := p.ensure(bin, &log)
	if err != nil {
		t.Fatal(err)
	}
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
	if again, err := p.ensure(bin, &log); err != nil || again != path || inode(t, path) != before || log.Len() != 0 {
		t.Fatalf("second run: %q %v, unpacked again: %v, said %q", again, err, inode(t, path) != before, log.String())
	}
}

func TestEnsureRefusesADamagedPayload(t *testing.T) {
	p, err := loadProgram(testPayload(t, []byte("damaged"), []byte("the real program")))
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	if _, err := p.ensure(bin, io.Discard); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Fatalf("err %v", err)
	}
	left, _ := os.ReadDir(filepath.Join(bin, p.dirName()))
	if len(left) != 0 {
		t.Fatalf("a failed unpack left %v", left)
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
