package e2e

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// criImages lists the node's images as the kubelet sees them: over the
// CRI, on the instance's containerd socket.
func (in *instance) criImages() []*runtimeapi.Image {
	in.t.Helper()
	conn, err := grpc.NewClient("unix://"+filepath.Join(in.stateDir(), "containerd.sock"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		in.t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := runtimeapi.NewImageServiceClient(conn).ListImages(ctx, &runtimeapi.ListImagesRequest{})
	if err != nil {
		in.t.Fatalf("CRI ListImages: %v", err)
	}
	return resp.Images
}

// checkPinned fails unless the CRI reports each image (a repo tag) with
// pinned as want: what the kubelet's image GC reads (it never removes a
// pinned image).
func checkPinned(t *testing.T, in *instance, want bool, tags ...string) {
	t.Helper()
	imgs := in.criImages()
	for _, tag := range tags {
		i := slices.IndexFunc(imgs, func(img *runtimeapi.Image) bool { return slices.Contains(img.RepoTags, tag) })
		if i < 0 {
			t.Fatalf("the CRI does not list %s", tag)
		}
		if imgs[i].Pinned != want {
			t.Fatalf("the CRI reports %s pinned=%v, want %v (the kubelet's image GC removes only unpinned images)", tag, imgs[i].Pinned, want)
		}
	}
}
