// Package addons holds the cluster add-ons that unetes runs in the sandbox
// process around the control plane: cluster DNS (CoreDNS), storage (a
// local-path provisioner and the default StorageClass), the metrics API
// (metrics-server) and lb (LoadBalancer Services and hostPorts published on
// the host). Each add-on is one file with one shape (its API objects,
// start, stop); a Set starts the enabled ones once the API serves, removes the
// objects of the disabled ones, reports their states and stops them before
// the control plane stops.
package addons

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/unetes/unetes/embed"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Add-on names, as `run --disable`, `unetes status` and `unetes logs` use them.
const (
	DNS     = "dns"
	Storage = "storage"
	Metrics = "metrics"
	LB      = "lb"
	Join    = "join"
)

// Env is what every add-on is started with: the cluster's facts and a way
// to talk to the API. cmd builds it from the control plane's configuration.
type Env struct {
	Admin *rest.Config // applies the add-ons' objects
	// Kubeconfig writes a kubeconfig for one of the PKI's identities
	// ("coredns", "metrics-server", …) and returns its path.
	Kubeconfig func(identity string) (string, error)
	PKIDir     string // ca.crt and the add-ons' certificates
	DataDir    string // storage volumes live in <data>/storage
	LogDir     string // each add-on logs to <logs>/<name>.log
	NodeName   string
	NodeIP     net.IP // where the add-ons serve; their endpoints point here
	// OverlayIP, when set, is where pods on every node reach this one
	// across the overlay (its pod gateway): cluster DNS serves there too,
	// and its endpoint points there. Unset on a cluster of one node.
	OverlayIP     net.IP
	ClusterDomain string
	DNSServiceIP  net.IP // the kube-dns Service
	Upstream      string // the resolver for names outside the cluster (the NAT's, 10.0.2.3)
	// PodCgroups: pods have cgroups of their own (delegated cgroup v2), so
	// per-pod usage can be measured. Without, every container reports the
	// usage of the one cgroup they all share.
	PodCgroups bool
	// Publisher opens host ports for LoadBalancer Services and hostPorts;
	// they listen on LBAddress, and a Service's status names LBIngress.
	Publisher Publisher
	LBAddress netip.Addr
	LBIngress netip.Addr
	// APIEndpoint is HOST:PORT where the API is published on the host, as
	// cluster-info gives it to joining nodes.
	APIEndpoint string
}

// Addon is one add-on.
type Addon interface {
	// Objects are the API objects the add-on owns: the Set applies them
	// with serving false before Start and true after it, and deletes them
	// all when the add-on is disabled. serving tells, for an add-on that
	// needs it, what to publish only once it serves (endpoints marked
	// ready, an APIService).
	Objects(env Env, serving bool) ([]runtime.Object, error)
	// Start runs the add-on and returns once it serves. failed reports a
	// failure after that.
	Start(ctx context.Context, env Env, failed func(error)) error
	// Stop stops it and waits until it has stopped.
	Stop()
}

// noter is an add-on with something to say in `unetes status` about how
// it runs on this host.
type noter interface {
	Note(env Env) string
}

// cleaner is an add-on that leaves traces besides its objects (status it
// wrote on others'): when it is disabled, the Set has it clear them.
type cleaner interface {
	Cleanup(ctx context.Context, env Env) error
}

// readier is an add-on whose readiness needs more than serving: it is
// asked once its objects say it serves, with the Set's API client.
type readier interface {
	Ready(ctx context.Context, env Env, api dynamic.Interface) error
}

// known lists the add-ons in start order.
var known = []struct {
	name string
	new  func() Addon
}{
	{DNS, func() Addon { return &dnsAddon{} }},
	{Storage, func() Addon { return &storageAddon{} }},
	{Metrics, func() Addon { return &metricsAddon{} }},
	{LB, func() Addon { return &lbAddon{} }},
	{Join, func() Addon { return &joinAddon{} }},
}

// Names lists every add-on.
func Names() []string {
	out := make([]string, len(known))
	for i, k := range known {
		out[i] = k.name
	}
	return out
}

// ParseDisable turns `--disable dns,metrics` into add-on names, refusing
// names it does not know. Pure.
func ParseDisable(list string) ([]string, error) {
	var out []string
	for _, n := range strings.Split(list, ",") {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		if !slices.Contains(Names(), n) {
			return nil, fmt.Errorf("--disable: no add-on %q; the add-ons are %s", n, strings.Join(Names(), ", "))
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out, nil
}

// clientFor is an API client acting as one of the PKI's identities, its
// user agent "unetes-IDENTITY".
func clientFor(env Env, identity string) (kubernetes.Interface, error) {
	kc, err := env.Kubeconfig(identity)
	if err != nil {
		return nil, err
	}
	rc, err := clientcmd.BuildConfigFromFlags("", kc)
	if err != nil {
		return nil, fmt.Errorf("%s client: %w", identity, err)
	}
	rc.UserAgent = "unetes-" + identity
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("%s client: %w", identity, err)
	}
	return client, nil
}

// awaitStop waits for an add-on's goroutines to end once it was told to
// stop: up to 10 s if it served, 2 s if it is stopped during its own start
// (the whole sandbox is then stopping, and the parent allows it 15 s).
func awaitStop(done <-chan struct{}, served bool) {
	grace := 10 * time.Second
	if !served {
		grace = 2 * time.Second
	}
	select {
	case <-done:
	case <-time.After(grace):
	}
}

// poll calls check every interval until it passes, ctx ends, or a minute
// passes; the error then says what was awaited and check's last error.
func poll(ctx context.Context, what string, interval time.Duration, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
		err := check(cctx)
		ccancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w (last: %v)", what, ctx.Err(), err)
		case <-time.After(interval):
		}
	}
}

// waitOK polls url with c until it answers 200 OK.
func waitOK(ctx context.Context, c *http.Client, url string) error {
	return poll(ctx, url, 20*time.Millisecond, func(ctx context.Context) error { return embed.GetOK(ctx, c, url) })
}
