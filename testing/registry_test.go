package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/unetes/unetes/testing/internal/testimage"
)

// registry serves the busybox image as name:tag over plain HTTP (the
// distribution API's read side: manifests and blobs), on addr. It counts
// the blob downloads.
func registry(t *testing.T, addr, name, tag string) (hostPort string, pulls func() int) {
	img, err := testimage.New()
	if err != nil {
		t.Fatal(err)
	}
	// Its own config (a label), so it differs from images loaded otherwise.
	var cfg map[string]any
	json.Unmarshal(img.Config, &cfg)
	cfg["config"].(map[string]any)["Labels"] = map[string]string{"served-by": "e2e-registry"}
	img.Config, _ = json.Marshal(cfg)
	blobs := map[string][]byte{testimage.Digest(img.Layer): img.Layer, testimage.Digest(img.Config): img.Config}
	manifest, _ := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": testimage.Digest(img.Config), "size": len(img.Config)},
		"layers": []any{map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": testimage.Digest(img.Layer), "size": len(img.Layer)}},
	})
	mdigest := testimage.Digest(manifest)
	var n atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/v2/", func(w http.ResponseWriter, r *http.Request) {
		p := strings.TrimPrefix(r.URL.Path, "/v2/")
		switch {
		case p == "":
			w.WriteHeader(http.StatusOK)
		case p == name+"/manifests/"+tag || p == name+"/manifests/"+mdigest:
			w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
			w.Header().Set("Docker-Content-Digest", mdigest)
			w.Header().Set("Content-Length", fmt.Sprint(len(manifest)))
			if r.Method != http.MethodHead {
				w.Write(manifest)
			}
		case strings.HasPrefix(p, name+"/blobs/"):
			b, ok := blobs[strings.TrimPrefix(p, name+"/blobs/")]
			if !ok {
				http.NotFound(w, r)
				return
			}
			n.Add(1)
			w.Header().Set("Content-Length", fmt.Sprint(len(b)))
			if r.Method != http.MethodHead {
				w.Write(b)
			}
		default:
			http.NotFound(w, r)
		}
	})
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String(), func() int { return int(n.Load()) }
}

func TestPullThroughTheNATAndImportAtStart(t *testing.T) {
	u := asUser(t, *flagTestUser)
	reg, pulls := registry(t, hostIP(t).String()+":0", "e2e/busybox", "reg")
	name := newName()
	plainHTTP(t, u, name, reg)
	// And a tarball in <data>/images, imported at start.
	img, err := testimage.New()
	if err != nil {
		t.Fatal(err)
	}
	tarball, _ := img.DockerSave("localhost/busybox:at-start")
	images := filepath.Join(u.home, ".local/share/unetes", name, "images")
	os.MkdirAll(images, 0o755)
	if err := os.WriteFile(filepath.Join(images, "busybox.tar"), tarball, 0o644); err != nil {
		t.Fatal(err)
	}
	chownTree(t, filepath.Join(u.home, ".local"), u)
	in := launch(t, u, name, []string{"--api-port", fmt.Sprint(freePort(t, "tcp"))})
	if out, errOut, code := u.unetes(t, "", "ctr", "--name", name, "-n", "k8s.io", "images", "ls", "-q"); code != 0 || !strings.Contains(out, "localhost/busybox:at-start") {
		t.Fatalf("the tarball in %s was not imported at start: %d %q %q", images, code, out, errOut)
	}
	image := reg + "/e2e/busybox:reg"
	if _, errOut, code := in.apply(`apiVersion: v1
kind: Pod
metadata: {name: pulled}
spec:
  containers: [{name: c, image: "` + image + `", command: ["sleep", "3600"]}]
`); code != 0 {
		t.Fatalf("apply: %s", errOut)
	}
	if out, errOut, code := in.kubectl("wait", "--for=condition=Ready", "pod/pulled", "--timeout=120s"); code != 0 {
		ev, _, _ := in.kubectl("describe", "pod", "pulled")
		t.Fatalf("pod from %s not ready: %s %s\n%s", image, out, errOut, ev)
	}
	if pulls() == 0 {
		t.Fatal("the registry served no blob, yet the pod runs")
	}
	// The kubelet's image GC may remove what it pulled, never what was
	// imported (no registry would give it back).
	checkPinned(t, in, false, image)
	checkPinned(t, in, true, "localhost/busybox:at-start")
}

// plainHTTP tells instance name's containerd (its certs.d) to pull from
// the registry reg over plain HTTP.
func plainHTTP(t *testing.T, u *testUser, name, reg string) {
	dir := filepath.Join(u.home, ".local/share/unetes", name, "certs.d", reg)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	hosts := fmt.Sprintf("server = \"http://%s\"\n[host.\"http://%s\"]\n  capabilities = [\"pull\", \"resolve\"]\n", reg, reg)
	if err := os.WriteFile(filepath.Join(dir, "hosts.toml"), []byte(hosts), 0o644); err != nil {
		t.Fatal(err)
	}
	chownTree(t, filepath.Join(u.home, ".local"), u)
}

// chownTree gives root-made test files to u.
func chownTree(t *testing.T, root string, u *testUser) {
	if os.Getuid() != 0 {
		return
	}
	filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
		if err == nil {
			os.Chown(p, u.uid, u.gid)
		}
		return err
	})
}
