package addons

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/pflag"
	"github.com/unetes/unetes/embed"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/transport"
	apiregv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	"sigs.k8s.io/metrics-server/cmd/metrics-server/app/options"
)

// metrics-server serves the metrics.k8s.io API to the apiserver's
// aggregator from the node address; it scrapes the kubelet's resource
// metrics every metricResolution (upstream's recommended 15 s: `kubectl
// top` answers after two scrapes, and the HPA syncs every 15 s).
const (
	metricsPort       = 10251
	metricsService    = "metrics-server"
	metricsIdentity   = "metrics-server" // user system:metrics-server
	metricsAPIService = "v1beta1.metrics.k8s.io"
	metricResolution  = "15s"
)

type metricsAddon struct {
	stop   chan struct{}
	done   chan struct{}
	served bool
}

// metricsServerFlags are metrics-server's flags: its serving and client
// certificates from the PKI, client certificates and the front proxy
// trusted from files (no lookup of the authentication config map), the
// kubelet verified against the cluster CA. Pure.
func metricsServerFlags(env Env, kubeconfig string) map[string]string {
	pki := func(f string) string { return filepath.Join(env.PKIDir, f) }
	return map[string]string{
		"bind-address":                       env.NodeIP.String(),
		"secure-port":                        strconv.Itoa(metricsPort),
		"tls-cert-file":                      pki(metricsIdentity + ".crt"),
		"tls-private-key-file":               pki(metricsIdentity + ".key"),
		"client-ca-file":                     pki("ca.crt"),
		"requestheader-client-ca-file":       pki("front-proxy-ca.crt"),
		"requestheader-allowed-names":        "front-proxy-client",
		"requestheader-username-headers":     "X-Remote-User",
		"requestheader-group-headers":        "X-Remote-Group",
		"requestheader-extra-headers-prefix": "X-Remote-Extra-",
		"kubeconfig":                         kubeconfig,
		"authentication-kubeconfig":          kubeconfig,
		"authorization-kubeconfig":           kubeconfig,
		"kubelet-certificate-authority":      pki("ca.crt"),
		"kubelet-client-certificate":         pki(metricsIdentity + ".crt"),
		"kubelet-client-key":                 pki(metricsIdentity + ".key"),
		"kubelet-preferred-address-types":    string(corev1.NodeInternalIP),
		"kubelet-use-node-status-port":       "true",
		"metric-resolution":                  metricResolution,
		"profiling":                          "false",
	}
}

// Objects: metrics-server's rights (upstream's: read nodes and pods, the
// kubelet's metrics, delegate authentication and authorization), read
// access to the metrics API for the view/edit/admin roles, and the
// APIService with its Service and endpoint here.
func (m *metricsAddon) Objects(env Env, serving bool) ([]runtime.Object, error) {
	ca, err := os.ReadFile(filepath.Join(env.PKIDir, "ca.crt"))
	if err != nil {
		return nil, fmt.Errorf("read the cluster CA: %w", err)
	}
	user := "system:" + metricsIdentity
	reader := clusterRole("system:aggregated-metrics-reader",
		rule([]string{"metrics.k8s.io"}, []string{"pods", "nodes"}, "get", "list", "watch"))
	reader.Labels = map[string]string{
		"rbac.authorization.k8s.io/aggregate-to-view":  "true",
		"rbac.authorization.k8s.io/aggregate-to-edit":  "true",
		"rbac.authorization.k8s.io/aggregate-to-admin": "true",
	}
	svc := &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{Name: metricsService, Namespace: "kube-system", Labels: map[string]string{"k8s-app": "metrics-server"}},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "https", Protocol: corev1.ProtocolTCP, Port: 443}}},
	}
	objs := []runtime.Object{
		clusterRole(user,
			rule([]string{""}, []string{"nodes/metrics"}, "get"),
			rule([]string{""}, []string{"pods", "nodes"}, "get", "list", "watch")),
		bindClusterRole(user, user, user),
		bindClusterRole(user+":auth-delegator", "system:auth-delegator", user),
		reader,
		svc,
		endpointSlice(env, env.NodeIP, metricsService, serving, endpointPort("https", corev1.ProtocolTCP, metricsPort)),
	}
	// The APIService comes once metrics-server serves: made earlier, the
	// aggregator would find it unavailable and back off.
	if serving {
		objs = append(objs, &apiregv1.APIService{
			TypeMeta:   metav1.TypeMeta{APIVersion: "apiregistration.k8s.io/v1", Kind: "APIService"},
			ObjectMeta: metav1.ObjectMeta{Name: metricsAPIService, Labels: map[string]string{"k8s-app": "metrics-server"}},
			Spec: apiregv1.APIServiceSpec{
				Service:              &apiregv1.ServiceReference{Namespace: "kube-system", Name: metricsService},
				Group:                "metrics.k8s.io",
				Version:              "v1beta1",
				CABundle:             ca,
				GroupPriorityMinimum: 100,
				VersionPriority:      100,
			},
		})
	}
	return objs, nil
}

func (m *metricsAddon) Start(ctx context.Context, env Env, failed func(error)) error {
	kc, err := env.Kubeconfig(metricsIdentity)
	if err != nil {
		return err
	}
	opts := options.NewOptions()
	fs := pflag.NewFlagSet("metrics-server", pflag.ContinueOnError)
	for _, f := range opts.Flags().FlagSets {
		fs.AddFlagSet(f)
	}
	if err := fs.Parse(embed.FlagList(metricsServerFlags(env, kc), nil)); err != nil {
		return fmt.Errorf("metrics-server flags: %w", err)
	}
	// Options.Validate would also reconfigure the process-wide klog:
	// check only what concerns the kubelet client.
	if errs := opts.KubeletClient.Validate(); len(errs) > 0 {
		return fmt.Errorf("metrics-server options: %w", errors.Join(errs...))
	}
	conf, err := opts.ServerConfig()
	if err != nil {
		return fmt.Errorf("metrics-server config: %w", err)
	}
	fixOpenAPINames(conf.Apiserver)
	if !env.PodCgroups {
		kc := &conf.Kubelet.Client
		kc.WrapTransport = transport.Wrappers(kc.WrapTransport, func(rt http.RoundTripper) http.RoundTripper { return nodeOnly{rt} })
	}
	srv, err := conf.Complete()
	if err != nil {
		return fmt.Errorf("metrics-server: %w", err)
	}
	m.stop, m.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(m.done)
		err := srv.RunUntil(m.stop)
		select {
		case <-m.stop:
		default:
			if err == nil {
				err = errors.New("exited")
			}
			failed(fmt.Errorf("metrics-server: %w", err))
		}
	}()
	c, err := embed.AdminClient(&embed.PKI{Dir: env.PKIDir}) // trusts the cluster CA, which signed its certificate
	if err != nil {
		m.Stop()
		return err
	}
	url := "https://" + net.JoinHostPort(env.NodeIP.String(), strconv.Itoa(metricsPort)) + "/livez"
	if err := waitOK(ctx, c, url); err != nil {
		m.Stop()
		return fmt.Errorf("metrics-server not serving: %w", err)
	}
	m.served = true
	return nil
}

// Ready waits until the aggregator reports the metrics API available, so
// that kubectl's discovery right after start finds no broken group.
func (m *metricsAddon) Ready(ctx context.Context, env Env, api dynamic.Interface) error {
	gvr := schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"}
	return poll(ctx, "the metrics API available", 50*time.Millisecond, func(ctx context.Context) error {
		u, err := api.Resource(gvr).Get(ctx, metricsAPIService, metav1.GetOptions{})
		if err != nil {
			return err
		}
		conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
		for _, c := range conds {
			c, _ := c.(map[string]any)
			if c["type"] == string(apiregv1.Available) {
				if c["status"] == string(apiregv1.ConditionTrue) {
					return nil
				}
				return fmt.Errorf("%v: %v", c["reason"], c["message"])
			}
		}
		return errors.New("no Available condition yet")
	})
}

// metricsNodeOnly is what `unetes status` says of the metrics API on a host
// without per-pod cgroups.
const metricsNodeOnly = "node figures only: without per-pod cgroups nothing measures a pod on its own, so kubectl top pod and CPU autoscaling have no figures on this host"

func (m *metricsAddon) Note(env Env) string {
	if env.PodCgroups {
		return ""
	}
	return metricsNodeOnly
}

// nodeOnly drops the per-container and per-pod series from the kubelet's
// resource metrics. Without per-pod cgroups every container reports the
// usage of the cgroup they all share (the whole host's, each pod showing
// gigabytes): no figure is better than a wrong one.
type nodeOnly struct{ rt http.RoundTripper }

func (n nodeOnly) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := n.rt.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusOK || req.URL.Path != "/metrics/resource" {
		return resp, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	out := dropSeries(b, "container_", "pod_")
	resp.Body, resp.ContentLength = io.NopCloser(bytes.NewReader(out)), int64(len(out))
	resp.Header.Del("Content-Length")
	return resp, nil
}

// dropSeries removes from a Prometheus text exposition the samples, HELP
// and TYPE lines of the metrics whose names start with one of prefixes. Pure.
func dropSeries(b []byte, prefixes ...string) []byte {
	var out bytes.Buffer
	for _, line := range bytes.SplitAfter(b, []byte("\n")) {
		name := bytes.TrimPrefix(bytes.TrimPrefix(line, []byte("# HELP ")), []byte("# TYPE "))
		drop := false
		for _, p := range prefixes {
			drop = drop || bytes.HasPrefix(name, []byte(p))
		}
		if !drop {
			out.Write(line)
		}
	}
	return out.Bytes()
}

func (m *metricsAddon) Stop() {
	if m.stop == nil {
		return
	}
	close(m.stop)
	awaitStop(m.done, m.served)
	m.stop = nil
}
