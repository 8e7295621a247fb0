package e2e

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// busyboxApplets are linked to /bin/busybox in the test image.
var busyboxApplets = []string{"sh", "cat", "echo", "env", "hostname", "httpd", "id", "ip", "ls", "mkdir", "nc", "sleep", "wget"}

// busyboxLayer is a layer tarball with /bin/busybox (busybox-static from the
// host) and its applets.
func busyboxLayer(t *testing.T) []byte {
	t.Helper()
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatalf("the test image needs busybox-static (apt-get install busybox-static): %v", err)
	}
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, d := range []string{"bin/", "tmp/", "etc/"} {
		tw.WriteHeader(&tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: 0o1777})
	}
	tw.WriteHeader(&tar.Header{Name: "bin/busybox", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(bb))})
	tw.Write(bb)
	for _, a := range busyboxApplets {
		tw.WriteHeader(&tar.Header{Name: "bin/" + a, Typeflag: tar.TypeSymlink, Linkname: "busybox", Mode: 0o777})
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// busyboxConfig is the image config of a one-layer image with that layer.
func busyboxConfig(layer []byte) []byte {
	cfg, _ := json.Marshal(map[string]any{
		"architecture": "amd64", "os": "linux",
		"config": map[string]any{"Cmd": []string{"sh"}, "Env": []string{"PATH=/bin"}},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{digest(layer)}},
	})
	return cfg
}

func digest(b []byte) string { return fmt.Sprintf("sha256:%x", sha256.Sum256(b)) }

// dockerSaveImage writes a `docker save` tarball of the busybox image tagged
// ref where every test user can read it, and returns its path.
func dockerSaveImage(t *testing.T, ref string) string {
	t.Helper()
	dir, err := os.MkdirTemp(work.dir, "image-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	t.Cleanup(func() { os.RemoveAll(dir) })
	layer := busyboxLayer(t)
	cfg := busyboxConfig(layer)
	ld, cd := digest(layer)[7:], digest(cfg)[7:]
	manifest, _ := json.Marshal([]map[string]any{{"Config": cd + ".json", "RepoTags": []string{ref}, "Layers": []string{ld + "/layer.tar"}}})
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, f := range []struct {
		name string
		data []byte
	}{{ld + "/layer.tar", layer}, {cd + ".json", cfg}, {"manifest.json", manifest}} {
		tw.WriteHeader(&tar.Header{Name: f.name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(f.data))})
		tw.Write(f.data)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "busybox.tar")
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
