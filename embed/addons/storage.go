package addons

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/unetes/unetes/embed"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"
)

// The default StorageClass and its provisioner: every claim is a directory
// under <data>/storage, made and deleted by this process, which shares the
// kubelet's mount namespace (no helper pods).
const (
	StorageClassName  = "local-path"
	provisionerName   = "unetes.io/local-path"
	storageIdentity   = "local-path-provisioner"
	storageDirName    = "storage"
	capacityNoteKey   = "unetes.io/capacity"
	capacityNoteValue = "not enforced: a volume is a directory and can grow to fill the disk of the data dir"
)

type storageAddon struct {
	cancel context.CancelFunc
	done   chan struct{}
	logf   io.Closer
	served bool
}

func (s *storageAddon) Objects(env Env, serving bool) ([]runtime.Object, error) {
	user := "system:unetes:" + storageIdentity
	return []runtime.Object{
		clusterRole(user,
			rule([]string{""}, []string{"persistentvolumes"}, "get", "list", "watch", "create", "delete", "patch", "update"),
			rule([]string{""}, []string{"persistentvolumeclaims"}, "get", "list", "watch", "update"),
			rule([]string{"storage.k8s.io"}, []string{"storageclasses"}, "get", "list", "watch"),
			rule([]string{""}, []string{"events"}, "create", "patch", "update"),
			rule([]string{""}, []string{"nodes"}, "get")),
		bindClusterRole(user, user, user),
		&storagev1.StorageClass{
			TypeMeta: metav1.TypeMeta{APIVersion: "storage.k8s.io/v1", Kind: "StorageClass"},
			ObjectMeta: metav1.ObjectMeta{Name: StorageClassName, Annotations: map[string]string{
				"storageclass.kubernetes.io/is-default-class": "true",
				capacityNoteKey: capacityNoteValue,
			}},
			Provisioner:       provisionerName,
			ReclaimPolicy:     ptr.To(corev1.PersistentVolumeReclaimDelete),
			VolumeBindingMode: ptr.To(storagev1.VolumeBindingWaitForFirstConsumer),
		},
	}, nil
}

func (s *storageAddon) Start(ctx context.Context, env Env, failed func(error)) error {
	client, err := clientFor(env, storageIdentity)
	if err != nil {
		return err
	}
	root := filepath.Join(env.DataDir, storageDirName)
	if err := os.MkdirAll(root, 0o700); err != nil {
		return fmt.Errorf("storage dir: %w", err)
	}
	rctx, cancel := context.WithCancel(context.Background())
	rctx, logf, err := embed.ComponentLogger(rctx, env.LogDir, Storage)
	if err != nil {
		cancel()
		return err
	}
	f := informers.NewSharedInformerFactory(client, 0)
	claims, volumes, classes := f.Core().V1().PersistentVolumeClaims().Informer(), f.Core().V1().PersistentVolumes().Informer(), f.Storage().V1().StorageClasses().Informer()
	pc := controller.NewProvisionController(rctx, client, provisionerName, &localPath{root: root, node: env.NodeName},
		controller.LeaderElection(false), controller.MetricsPort(0),
		controller.ClaimsInformer(claims), controller.VolumesInformer(volumes), controller.ClassesInformer(classes))
	f.Start(rctx.Done())
	s.cancel, s.done, s.logf = cancel, make(chan struct{}), logf
	go func() {
		defer close(s.done)
		pc.Run(rctx)
		f.Shutdown()
	}()
	for typ, ok := range f.WaitForCacheSync(ctx.Done()) {
		if !ok {
			s.Stop()
			return fmt.Errorf("storage: no %v from the API", typ)
		}
	}
	s.served = true
	return nil
}

func (s *storageAddon) Stop() {
	if s.cancel == nil {
		return
	}
	s.cancel()
	awaitStop(s.done, s.served)
	s.logf.Close()
	s.cancel = nil
}

// localPath provisions a claim as a directory under root, reachable only
// on this node.
type localPath struct {
	root, node string
}

func (p *localPath) Provision(ctx context.Context, o controller.ProvisionOptions) (*corev1.PersistentVolume, controller.ProvisioningState, error) {
	claim := o.PVC
	if claim.Spec.VolumeMode != nil && *claim.Spec.VolumeMode == corev1.PersistentVolumeBlock {
		return nil, controller.ProvisioningFinished, errors.New("local-path volumes are directories: volumeMode Block is not supported")
	}
	if claim.Spec.Selector != nil {
		return nil, controller.ProvisioningFinished, errors.New("local-path cannot honour a claim's selector")
	}
	dir := filepath.Join(p.root, o.PVName+"_"+claim.Namespace+"_"+claim.Name)
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return nil, controller.ProvisioningFinished, fmt.Errorf("make %s: %w", dir, err)
	}
	// Any uid a container runs as may write: capacity and ownership are
	// the pod's business, as with local-path elsewhere.
	if err := os.Chmod(dir, 0o777); err != nil {
		return nil, controller.ProvisioningFinished, err
	}
	reclaim := corev1.PersistentVolumeReclaimDelete
	if c := o.StorageClass; c != nil && c.ReclaimPolicy != nil {
		reclaim = *c.ReclaimPolicy
	}
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: o.PVName, Annotations: map[string]string{capacityNoteKey: capacityNoteValue}},
		Spec: corev1.PersistentVolumeSpec{
			PersistentVolumeReclaimPolicy: reclaim,
			AccessModes:                   claim.Spec.AccessModes,
			VolumeMode:                    claim.Spec.VolumeMode,
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: claim.Spec.Resources.Requests[corev1.ResourceStorage]},
			PersistentVolumeSource: corev1.PersistentVolumeSource{
				HostPath: &corev1.HostPathVolumeSource{Path: dir, Type: ptr.To(corev1.HostPathDirectory)},
			},
			NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
				MatchExpressions: []corev1.NodeSelectorRequirement{{Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{p.node}}},
			}}}},
		},
	}
	if o.StorageClass != nil {
		pv.Spec.MountOptions = o.StorageClass.MountOptions
	}
	return pv, controller.ProvisioningFinished, nil
}

// Delete removes the volume's directory with everything in it, files that
// containers left owned by sub-IDs included (this process is root in the
// user namespace that maps them). It deletes nothing outside root.
func (p *localPath) Delete(ctx context.Context, pv *corev1.PersistentVolume) error {
	hp := pv.Spec.HostPath
	if hp == nil || filepath.Dir(filepath.Clean(hp.Path)) != p.root {
		return &controller.IgnoredError{Reason: "not a volume under " + p.root}
	}
	if err := os.RemoveAll(hp.Path); err != nil {
		return fmt.Errorf("delete %s: %w", hp.Path, err)
	}
	return nil
}
