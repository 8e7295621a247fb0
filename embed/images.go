package embed

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/pkg/namespaces"
)

// PauseImage is the sandbox image: the embedded pause program, packed at
// start, imported and pinned, so no registry is needed to start a pod.
const PauseImage = "localhost/unetes/pause:1"

// pinnedLabel keeps an image from kubelet's and containerd's garbage collection.
const pinnedLabel = "io.cri-containerd.pinned"

// ImageStore talks to a containerd for image import.
type ImageStore struct {
	client      *containerd.Client
	snapshotter string
}

// OpenImageStore connects to the containerd at address.
func OpenImageStore(address, snapshotter string) (*ImageStore, error) {
	c, err := containerd.New(address, containerd.WithDefaultNamespace(CRINamespace), containerd.WithTimeout(10*time.Second))
	if err != nil {
		return nil, fmt.Errorf("connect to containerd at %s: %w", address, err)
	}
	return &ImageStore{client: c, snapshotter: snapshotter}, nil
}

func (s *ImageStore) Close() error { return s.client.Close() }

// Import reads one docker-save or OCI tarball, stores its images in the CRI
// namespace and unpacks them; it returns their names.
func (s *ImageStore) Import(ctx context.Context, r io.Reader, pinned bool) ([]string, error) {
	ctx = namespaces.WithNamespace(ctx, CRINamespace)
	imgs, err := s.client.Import(ctx, r, containerd.WithSkipMissing())
	if err != nil {
		return nil, fmt.Errorf("import (a docker-save or OCI image tarball is expected): %w", err)
	}
	if len(imgs) == 0 {
		return nil, fmt.Errorf("the tarball names no image (docker save NAME:TAG, or an OCI index with org.opencontainers.image.ref.name)")
	}
	var names []string
	for _, img := range imgs {
		if err := containerd.NewImage(s.client, img).Unpack(ctx, s.snapshotter); err != nil {
			return names, fmt.Errorf("unpack %s: %w", img.Name, err)
		}
		if pinned {
			if img.Labels == nil {
				img.Labels = map[string]string{}
			}
			img.Labels[pinnedLabel] = "pinned"
			if _, err := s.client.ImageService().Update(ctx, img, "labels."+pinnedLabel); err != nil {
				return names, fmt.Errorf("pin %s: %w", img.Name, err)
			}
		}
		names = append(names, img.Name)
	}
	return names, nil
}

// ImportFile imports the tarball at path.
func (s *ImageStore) ImportFile(ctx context.Context, path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := s.Import(ctx, f, false)
	if err != nil {
		return names, fmt.Errorf("%s: %w", path, err)
	}
	return names, nil
}

// ImportDir imports every *.tar in dir (sorted); a bad tarball is reported
// and the rest still imported.
func (s *ImageStore) ImportDir(ctx context.Context, dir string) (names []string, errs []error) {
	paths, _ := filepath.Glob(filepath.Join(dir, "*.tar"))
	sort.Strings(paths)
	for _, p := range paths {
		n, err := s.ImportFile(ctx, p)
		names = append(names, n...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	return names, errs
}

// ImportPause packs the pause program at path (an installed helper) as
// PauseImage and imports it pinned.
func (s *ImageStore) ImportPause(ctx context.Context, path string) error {
	bin, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("the pause helper: %w", err)
	}
	tarball, err := ociImage(PauseImage, map[string][]byte{"pause": bin}, []string{"/pause"})
	if err != nil {
		return err
	}
	_, err = s.Import(ctx, bytes.NewReader(tarball), true)
	return err
}

// ociImage packs files (name → content, mode 0755) as a one-layer OCI image
// archive named ref with entrypoint. Pure: the same input gives the same bytes.
func ociImage(ref string, files map[string][]byte, entrypoint []string) ([]byte, error) {
	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		hdr := &tar.Header{Name: n, Mode: 0o755, Size: int64(len(files[n])), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		tw.Write(files[n])
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	type desc struct {
		MediaType   string            `json:"mediaType"`
		Digest      string            `json:"digest"`
		Size        int               `json:"size"`
		Annotations map[string]string `json:"annotations,omitempty"`
	}
	blobs := map[string][]byte{}
	add := func(mt string, b []byte) desc {
		d := fmt.Sprintf("sha256:%x", sha256.Sum256(b))
		blobs[d] = b
		return desc{MediaType: mt, Digest: d, Size: len(b)}
	}
	layerDesc := add("application/vnd.oci.image.layer.v1.tar", layer.Bytes())
	config, _ := json.Marshal(map[string]any{
		"architecture": runtime.GOARCH, "os": "linux",
		"config": map[string]any{"Entrypoint": entrypoint},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{layerDesc.Digest}},
	})
	configDesc := add("application/vnd.oci.image.config.v1+json", config)
	manifest, _ := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": configDesc, "layers": []desc{layerDesc},
	})
	manifestDesc := add("application/vnd.oci.image.manifest.v1+json", manifest)
	manifestDesc.Annotations = map[string]string{images.AnnotationImageName: ref, "org.opencontainers.image.ref.name": ref}
	index, _ := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []desc{manifestDesc},
	})

	var out bytes.Buffer
	ow := tar.NewWriter(&out)
	put := func(name string, b []byte) error {
		if err := ow.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}); err != nil {
			return err
		}
		_, err := ow.Write(b)
		return err
	}
	if err := put("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return nil, err
	}
	digests := make([]string, 0, len(blobs))
	for d := range blobs {
		digests = append(digests, d)
	}
	sort.Strings(digests)
	for _, d := range digests {
		if err := put("blobs/sha256/"+d[len("sha256:"):], blobs[d]); err != nil {
			return nil, err
		}
	}
	if err := put("index.json", index); err != nil {
		return nil, err
	}
	if err := ow.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}
