package addons

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/unetes/unetes/embed"
	"github.com/unetes/unetes/embed/internal/golden"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"
)

func testEnv(t *testing.T) Env {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "pki"), 0o700)
	os.WriteFile(filepath.Join(dir, "pki", "ca.crt"), []byte("CA"), 0o600)
	return Env{PKIDir: "/data/pki", DataDir: dir, LogDir: "/state/logs", NodeName: "unetes-default", NodeIP: net.ParseIP("10.0.2.100"),
		ClusterDomain: "cluster.local", DNSServiceIP: net.ParseIP("10.96.0.10"), Upstream: "10.0.2.3"}
}

func TestGoldens(t *testing.T) {
	env := testEnv(t)
	golden.Check(t, "Corefile", corefile(env, "/state/coredns.kubeconfig"))
	golden.Check(t, "metrics-server", strings.Join(embed.FlagList(metricsServerFlags(env, "/state/metrics-server.kubeconfig"), nil), "\n")+"\n")
}

func TestParseDisable(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []string
		bad      bool
	}{
		{name: "empty", in: ""},
		{name: "one", in: "dns", want: []string{"dns"}},
		{name: "all, spaces, repeats", in: "metrics, storage,dns,dns", want: []string{"metrics", "storage", "dns"}},
		{name: "unknown", in: "dns,traefik", bad: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseDisable(tc.in)
			if tc.bad {
				if err == nil || !strings.Contains(err.Error(), "dns, storage, metrics") {
					t.Fatalf("want an error naming the add-ons, got %v", err)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("got %v %v, want %v", got, err, tc.want)
			}
		})
	}
}

// Every object of every add-on converts for the dynamic client; endpoints
// are ready once serving, and metrics-server publishes its endpoint and
// APIService only then.
func TestObjectsConvert(t *testing.T) {
	env := testEnv(t)
	env.PKIDir = filepath.Join(env.DataDir, "pki")
	for _, k := range known {
		for _, serving := range []bool{false, true} {
			objs, err := k.new().Objects(env, serving)
			if err != nil {
				t.Fatalf("%s: %v", k.name, err)
			}
			for _, o := range objs {
				u, gvr, err := toUnstructured(o)
				if err != nil {
					t.Fatalf("%s: %v", k.name, err)
				}
				if gvr.Resource == "" || u.GetName() == "" {
					t.Fatalf("%s: %v has no resource or name", k.name, u)
				}
				if _, ok := u.Object["status"]; ok {
					t.Fatalf("%s: %s keeps its status", k.name, u.GetName())
				}
				if gvr.Resource == "endpointslices" {
					eps := u.Object["endpoints"].([]any)
					ready := eps[0].(map[string]any)["conditions"].(map[string]any)["ready"]
					if serving && ready != true || k.name == Metrics && ready != serving {
						t.Fatalf("%s: endpoint ready %v while serving is %v", k.name, ready, serving)
					}
				}
				if gvr.Resource == "apiservices" && !serving {
					t.Fatalf("%s: an APIService before it serves", k.name)
				}
			}
		}
	}
}

func TestLocalPathProvisionAndDelete(t *testing.T) {
	root := t.TempDir()
	p := &localPath{root: root, node: "unetes-default"}
	claim := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "data", Namespace: "ns"},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}
	class := &storagev1.StorageClass{ReclaimPolicy: ptr.To(corev1.PersistentVolumeReclaimDelete)}
	pv, state, err := p.Provision(context.Background(), controller.ProvisionOptions{PVName: "pvc-1", PVC: claim, StorageClass: class})
	if err != nil || state != controller.ProvisioningFinished {
		t.Fatal(state, err)
	}
	dir := filepath.Join(root, "pvc-1_ns_data")
	if pv.Spec.HostPath == nil || pv.Spec.HostPath.Path != dir {
		t.Fatalf("volume at %v, want %s", pv.Spec.HostPath, dir)
	}
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o777 {
		t.Fatalf("volume dir: %v %v", st, err)
	}
	if got := pv.Spec.NodeAffinity.Required.NodeSelectorTerms[0].MatchExpressions[0].Values; !slices.Equal(got, []string{"unetes-default"}) {
		t.Fatalf("node affinity %v", got)
	}
	if q := pv.Spec.Capacity[corev1.ResourceStorage]; q.String() != "1Gi" {
		t.Fatalf("capacity %s", q.String())
	}
	os.MkdirAll(filepath.Join(dir, "sub"), 0o500)
	os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o400)
	if err := p.Delete(context.Background(), pv); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("volume dir left: %v", err)
	}

	outside := pv.DeepCopy()
	outside.Spec.HostPath.Path = t.TempDir()
	if err := p.Delete(context.Background(), outside); err == nil {
		t.Fatal("deleting a path outside the storage dir must be refused")
	}
	if _, err := os.Stat(outside.Spec.HostPath.Path); err != nil {
		t.Fatalf("a path outside the storage dir was touched: %v", err)
	}

	block := claim.DeepCopy()
	block.Spec.VolumeMode = ptr.To(corev1.PersistentVolumeBlock)
	if _, _, err := p.Provision(context.Background(), controller.ProvisionOptions{PVName: "pvc-2", PVC: block}); err == nil {
		t.Fatal("a block volume must be refused")
	}
}

func TestDropSeries(t *testing.T) {
	in := `# HELP container_cpu_usage_seconds_total [STABLE] Cumulative cpu time
# TYPE container_cpu_usage_seconds_total counter
container_cpu_usage_seconds_total{container="c",namespace="default",pod="client"} 2837.2 1796031889951
# HELP node_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the node
# TYPE node_cpu_usage_seconds_total counter
node_cpu_usage_seconds_total 2835.6 1796031887949
# HELP pod_memory_working_set_bytes [STABLE] Current working set of the pod
# TYPE pod_memory_working_set_bytes gauge
pod_memory_working_set_bytes{namespace="default",pod="client"} 4.8e+09 1796031889951
scrape_error 0
`
	want := `# HELP node_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the node
# TYPE node_cpu_usage_seconds_total counter
node_cpu_usage_seconds_total 2835.6 1796031887949
scrape_error 0
`
	if got := string(dropSeries([]byte(in), "container_", "pod_")); got != want {
		t.Fatalf("got\n%s", got)
	}
}

// Removing a disabled add-on deletes only what it made: a kube-dns Service
// the user made (no add-on label) stays.
func TestDeleteOwnedSparesOthers(t *testing.T) {
	env := testEnv(t)
	env.PKIDir = filepath.Join(env.DataDir, "pki")
	objs, err := (&dnsAddon{}).Objects(env, true)
	if err != nil {
		t.Fatal(err)
	}
	var seed []runtime.Object
	for i, o := range objs {
		u, _, err := toUnstructured(o)
		if err != nil {
			t.Fatal(err)
		}
		if i != 2 { // all but the Service are ours
			u.SetLabels(map[string]string{addonLabel: DNS})
		}
		seed = append(seed, u)
	}
	dyn := dynamicfake.NewSimpleDynamicClient(runtime.NewScheme(), seed...)
	if err := deleteOwned(context.Background(), dyn, DNS, objs); err != nil {
		t.Fatal(err)
	}
	for i, o := range objs {
		u, gvr, _ := toUnstructured(o)
		_, err := dyn.Resource(gvr).Namespace(u.GetNamespace()).Get(context.Background(), u.GetName(), metav1.GetOptions{})
		if kept := err == nil; kept != (i == 2) {
			t.Errorf("%s %s: kept %v", u.GetKind(), u.GetName(), kept)
		}
	}
	// Deleting what is gone already is no error.
	if err := deleteOwned(context.Background(), dyn, DNS, objs); err != nil {
		t.Fatal(err)
	}
}

// The loop directive reports a forwarding loop and keeps the process alive
// (CoreDNS' own loop plugin would exit it): a server that forwards to itself.
func TestLoopReportedNotFatal(t *testing.T) {
	found := startLoopGuarded(t, "")
	select {
	case err := <-found:
		if !strings.Contains(err.Error(), "DNS forwarding loop") {
			t.Fatalf("report: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no loop reported in 30 s")
	}
}

// An upstream that never answers (an offline host, a restricted VM
// network) is no loop: the probes that time out must not add up to one.
func TestNoLoopForSilentUpstream(t *testing.T) {
	silent, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { silent.Close() })
	go func() {
		b := make([]byte, 512)
		for {
			if _, _, err := silent.ReadFrom(b); err != nil {
				return
			}
		}
	}()
	found := startLoopGuarded(t, silent.LocalAddr().String())
	// Four probes time out in this time (2 s each, a second apart).
	select {
	case err := <-found:
		t.Fatalf("a silent upstream reported as a loop: %v", err)
	case <-time.After(12 * time.Second):
	}
}

// startLoopGuarded starts a CoreDNS on a free 127.0.0.1 port with the loop
// directive, forwarding to upstream (itself when empty); loop reports
// arrive on the channel.
func startLoopGuarded(t *testing.T, upstream string) <-chan error {
	l, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.LocalAddr().(*net.UDPAddr).Port
	l.Close()
	if upstream == "" {
		upstream = fmt.Sprintf("127.0.0.1:%d", port)
	}
	found := make(chan error, 1)
	report := func(err error) { found <- err }
	loopFound.Store(&report)
	t.Cleanup(func() { loopFound.Store(nil) })
	caddy.Quiet, dnsserver.Quiet = true, true
	corefile := fmt.Sprintf(".:%d {\n    bind 127.0.0.1\n    loop\n    forward . %s\n}\n", port, upstream)
	inst, err := caddy.Start(caddy.CaddyfileInput{Contents: []byte(corefile), ServerTypeName: "dns"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { inst.Stop(); inst.ShutdownCallbacks(); inst.Wait() })
	return found
}

func TestConflictingFieldsAndKeptNote(t *testing.T) {
	conflict := &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Code: 409, Reason: metav1.StatusReasonConflict,
		Details: &metav1.StatusDetails{Causes: []metav1.StatusCause{{
			Type:    metav1.CauseTypeFieldManagerConflict,
			Message: `conflict with "kubectl-annotate" using storage.k8s.io/v1`,
			Field:   ".metadata.annotations.storageclass.kubernetes.io/is-default-class",
		}}},
	}}
	got := conflictingFields(fmt.Errorf("wrapped: %w", conflict))
	if len(got) != 1 || !strings.Contains(got[0], "is-default-class") || !strings.Contains(got[0], "kubectl-annotate") {
		t.Fatalf("conflict fields %q", got)
	}
	for _, err := range []error{nil, apierrors.NewConflict(schema.GroupResource{Resource: "services"}, "x", fmt.Errorf("optimistic lock")), fmt.Errorf("other")} {
		if f := conflictingFields(err); f != nil {
			t.Fatalf("%v: fields %q", err, f)
		}
	}
	note := keptNote([]string{"StorageClass local-path (a)", "StorageClass local-path (a)"})
	if strings.Count(note, "local-path") != 1 || !strings.Contains(note, "delete one") {
		t.Fatalf("note %q", note)
	}
}
