package e2e

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/unetes/unetes/testing/internal/testimage"
)

// dockerSaveImage writes a `docker save` tarball of the busybox image (with
// nettool) tagged ref where every test user can read it, and returns its path.
func dockerSaveImage(t *testing.T, ref string) string {
	t.Helper()
	tool, err := os.ReadFile(work.nettool)
	if err != nil {
		t.Fatal(err)
	}
	img, err := testimage.New(testimage.File{Path: "bin/nettool", Data: tool})
	if err != nil {
		t.Fatal(err)
	}
	tarball, err := img.DockerSave(ref)
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp(work.dir, "image-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	t.Cleanup(func() { os.RemoveAll(dir) })
	p := filepath.Join(dir, "busybox.tar")
	if err := os.WriteFile(p, tarball, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
