package embed

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	containersapi "github.com/containerd/containerd/api/services/containers/v1"
	imagesapi "github.com/containerd/containerd/api/services/images/v1"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	ptypes "github.com/containerd/containerd/v2/pkg/protobuf/types"
	"github.com/containerd/containerd/v2/plugins"
	"github.com/containerd/containerd/v2/plugins/services"
	"github.com/containerd/plugin"
	"github.com/containerd/plugin/registry"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The image policy of the containerd socket. The CRI (in this process)
// reaches the image store directly; every client of the socket (dockerd,
// `unetes ctr`, `unetes image load`) goes through this gRPC images
// service, which serves containerd's own with three rules for the CRI
// namespace, the one dockerd shares with Kubernetes:
//
//   - an image a client creates is pinned (io.cri-containerd.pinned): the
//     kubelet's image GC removes only the images the kubelet pulled, never
//     one docker built, pulled or tagged, or one `unetes image load` brought
//     (none of them could be pulled again);
//   - List leaves out the CRI's image-ID records ("sha256:<id>", one per
//     image the CRI knows): `docker images` shows images by their names;
//   - Delete refuses to remove the last name (of those clients see) of an
//     image a pod's container uses, and the pause image: `docker rmi` and
//     `docker image prune -a` cannot take an image from under a pod. A
//     retag (docker build -t app:1 again) still works: docker keeps the old
//     image as a dangling one first.
//
// containerd's own gRPC images service is disabled in the configuration
// (imagesGRPCPlugin); this one registers the same API.
const (
	imagesGRPCPlugin  = "io.containerd.grpc.v1.images"
	imagePolicyPlugin = "unetes-images"
	criIDPrefix       = "sha256:"
	criKindLabel      = "io.cri-containerd.kind"
	criMetadataExt    = "io.cri-containerd.container.metadata"
)

var registerImagePolicyOnce sync.Once

// registerImagePolicy adds the policy's gRPC plugin to containerd's
// registry; once per process, before the first server.New.
func registerImagePolicy() {
	registerImagePolicyOnce.Do(func() {
		registry.Register(&plugin.Registration{
			Type:     plugins.GRPCPlugin,
			ID:       imagePolicyPlugin,
			Requires: []plugin.Type{plugins.ServicePlugin},
			InitFn: func(ic *plugin.InitContext) (any, error) {
				i, err := ic.GetByID(plugins.ServicePlugin, services.ImagesService)
				if err != nil {
					return nil, err
				}
				c, err := ic.GetByID(plugins.ServicePlugin, services.ContainersService)
				if err != nil {
					return nil, err
				}
				return &imagePolicy{images: i.(imagesapi.ImagesClient), containers: c.(containersapi.ContainersClient)}, nil
			},
		})
	})
}

type imagePolicy struct {
	imagesapi.UnimplementedImagesServer
	images     imagesapi.ImagesClient
	containers containersapi.ContainersClient
}

func (p *imagePolicy) Register(s *grpc.Server) error {
	imagesapi.RegisterImagesServer(s, p)
	return nil
}

func inCRINamespace(ctx context.Context) bool {
	ns, _ := namespaces.Namespace(ctx)
	return ns == CRINamespace
}

func (p *imagePolicy) Get(ctx context.Context, req *imagesapi.GetImageRequest) (*imagesapi.GetImageResponse, error) {
	return p.images.Get(ctx, req)
}

func (p *imagePolicy) List(ctx context.Context, req *imagesapi.ListImagesRequest) (*imagesapi.ListImagesResponse, error) {
	resp, err := p.images.List(ctx, req)
	if err != nil || !inCRINamespace(ctx) {
		return resp, err
	}
	kept := resp.Images[:0]
	for _, img := range resp.Images {
		if !isCRIIDRecord(img.Name) {
			kept = append(kept, img)
		}
	}
	resp.Images = kept
	return resp, nil
}

func (p *imagePolicy) Create(ctx context.Context, req *imagesapi.CreateImageRequest) (*imagesapi.CreateImageResponse, error) {
	if inCRINamespace(ctx) && req.Image != nil {
		req.Image.Labels = withPinned(req.Image.Labels)
	}
	return p.images.Create(ctx, req)
}

func (p *imagePolicy) Update(ctx context.Context, req *imagesapi.UpdateImageRequest) (*imagesapi.UpdateImageResponse, error) {
	if inCRINamespace(ctx) && req.Image != nil && updatesAllLabels(req.UpdateMask.GetPaths()) {
		req.Image.Labels = withPinned(req.Image.Labels)
	}
	return p.images.Update(ctx, req)
}

func (p *imagePolicy) Delete(ctx context.Context, req *imagesapi.DeleteImageRequest) (*ptypes.Empty, error) {
	if inCRINamespace(ctx) {
		if err := p.checkDelete(ctx, req.Name); err != nil {
			return nil, err
		}
	}
	return p.images.Delete(ctx, req)
}

// checkDelete says why name must stay, if it must.
func (p *imagePolicy) checkDelete(ctx context.Context, name string) error {
	if name == PauseImage {
		return status.Errorf(codes.FailedPrecondition, "image %s is the pod sandbox image of unetes: every pod runs it, and it cannot be removed", name)
	}
	all, err := p.images.List(ctx, &imagesapi.ListImagesRequest{})
	if err != nil {
		return err
	}
	cs, err := p.containers.List(ctx, &containersapi.ListContainersRequest{Filters: []string{fmt.Sprintf("labels.%q==container", criKindLabel)}})
	if err != nil {
		return err
	}
	var users []imageUser
	for _, c := range cs.Containers {
		if u, ok := criImageUser(c); ok {
			users = append(users, u)
		}
	}
	return deleteConflict(name, imageRecords(all.Images), users)
}

// imageUser is a pod's container and the image ID (the CRI's record name,
// sha256:<config digest>) it runs.
type imageUser struct {
	Namespace, Pod, Container string
	ImageRef                  string
}

// criImageUser reads the pod, container and image of a CRI container
// record. Pure.
func criImageUser(c *containersapi.Container) (imageUser, bool) {
	ext, ok := c.Extensions[criMetadataExt]
	if !ok || ext == nil {
		return imageUser{}, false
	}
	var m struct {
		Metadata struct{ ImageRef string }
	}
	if err := json.Unmarshal(ext.Value, &m); err != nil || m.Metadata.ImageRef == "" {
		return imageUser{}, false
	}
	return imageUser{
		Namespace: c.Labels["io.kubernetes.pod.namespace"],
		Pod:       c.Labels["io.kubernetes.pod.name"],
		Container: c.Labels["io.kubernetes.container.name"],
		ImageRef:  m.Metadata.ImageRef,
	}, true
}

// imageRecords maps record names to their targets' digests. Pure.
func imageRecords(imgs []*imagesapi.Image) map[string]string {
	m := make(map[string]string, len(imgs))
	for _, img := range imgs {
		m[img.Name] = img.Target.GetDigest()
	}
	return m
}

// deleteConflict is the Delete rule: name may go unless its image is used
// by a pod's container and no other record that clients see names that
// image. Pure.
func deleteConflict(name string, records map[string]string, users []imageUser) error {
	target, ok := records[name]
	if !ok {
		return nil // containerd says NotFound
	}
	var user *imageUser
	for i, u := range users {
		if records[u.ImageRef] == target {
			user = &users[i]
			break
		}
	}
	if user == nil {
		return nil
	}
	for other, t := range records {
		if other != name && t == target && !isCRIIDRecord(other) {
			return nil
		}
	}
	return status.Errorf(codes.FailedPrecondition,
		"image %s is used by pod %s/%s (container %s): delete the pod first (kubectl delete pod -n %s %s), then remove the image",
		name, user.Namespace, user.Pod, user.Container, user.Namespace, user.Pod)
}

// isCRIIDRecord tells the CRI's image-ID records (named by the image's
// config digest) from images with names. Pure.
func isCRIIDRecord(name string) bool { return strings.HasPrefix(name, criIDPrefix) }

func withPinned(labels map[string]string) map[string]string {
	if labels == nil {
		labels = map[string]string{}
	}
	labels[pinnedLabel] = "pinned"
	return labels
}

// updatesAllLabels tells whether an update with these field paths replaces
// the labels as a whole (no paths: the whole image). Pure.
func updatesAllLabels(paths []string) bool {
	if len(paths) == 0 {
		return true
	}
	for _, p := range paths {
		if p == "labels" {
			return true
		}
	}
	return false
}
