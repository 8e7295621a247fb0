// Package testimage builds the busybox image the end-to-end tests and the
// benchmark run as pods, from the host's busybox-static: no registry needed.
package testimage

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
)

// Applets are linked to /bin/busybox in the image.
var Applets = []string{"sh", "cat", "chmod", "echo", "env", "hostname", "httpd", "id", "ip", "ls", "mkdir", "nc", "nslookup", "sleep", "wget"}

// Busybox is where busybox-static installs its binary.
const Busybox = "/bin/busybox"

// Image is a one-layer image: its layer and config blobs.
type Image struct {
	Layer, Config []byte
}

// File is an extra file of the image, such as a test tool.
type File struct {
	Path string // inside the image, e.g. "bin/nettool"
	Data []byte
}

// New builds the busybox image with extra files.
func New(extra ...File) (Image, error) {
	bb, err := os.ReadFile(Busybox)
	if err != nil {
		return Image{}, fmt.Errorf("the test image needs busybox-static (apt-get install busybox-static): %w", err)
	}
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, d := range []string{"bin/", "tmp/", "etc/"} {
		tw.WriteHeader(&tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: 0o1777})
	}
	tw.WriteHeader(&tar.Header{Name: "bin/busybox", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(bb))})
	tw.Write(bb)
	for _, a := range Applets {
		tw.WriteHeader(&tar.Header{Name: "bin/" + a, Typeflag: tar.TypeSymlink, Linkname: "busybox", Mode: 0o777})
	}
	for _, f := range extra {
		tw.WriteHeader(&tar.Header{Name: f.Path, Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(f.Data))})
		tw.Write(f.Data)
	}
	if err := tw.Close(); err != nil {
		return Image{}, err
	}
	img := Image{Layer: b.Bytes()}
	img.Config, _ = json.Marshal(map[string]any{
		"architecture": "amd64", "os": "linux",
		"config": map[string]any{"Cmd": []string{"sh"}, "Env": []string{"PATH=/bin"}},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{Digest(img.Layer)}},
	})
	return img, nil
}

// Digest is the OCI digest of b.
func Digest(b []byte) string { return fmt.Sprintf("sha256:%x", sha256.Sum256(b)) }

// DockerSave packs img as a `docker save` tarball tagged ref.
func (img Image) DockerSave(ref string) ([]byte, error) {
	ld, cd := Digest(img.Layer)[7:], Digest(img.Config)[7:]
	manifest, _ := json.Marshal([]map[string]any{{"Config": cd + ".json", "RepoTags": []string{ref}, "Layers": []string{ld + "/layer.tar"}}})
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, f := range []struct {
		name string
		data []byte
	}{{ld + "/layer.tar", img.Layer}, {cd + ".json", img.Config}, {"manifest.json", manifest}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(f.data))}); err != nil {
			return nil, err
		}
		tw.Write(f.data)
	}
	err := tw.Close()
	return b.Bytes(), err
}
