package addons

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	"k8s.io/klog/v2"

	// Only the plugins the Corefile uses (never core/plugin, which is all
	// of them). CoreDNS' own loop plugin exits the process on a loop; the
	// loop directive here is unetes' (loop.go), which reports instead.
	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/metrics"
	_ "github.com/coredns/coredns/plugin/ready"
)

// CoreDNS' ports: DNS and metrics on the node address (the kube-dns
// Service's endpoint), health and readiness on loopback only.
const (
	dnsPort        = 53
	dnsMetricsPort = 9153
	dnsHealthPort  = 10054
	dnsReadyPort   = 10055
	dnsService     = "kube-dns"
	dnsIdentity    = "coredns" // the PKI identity, user system:coredns
)

// dnsAddon is CoreDNS in this process, serving the kube-dns Service.
type dnsAddon struct {
	inst *caddy.Instance
	logf io.Closer
}

// corefile renders CoreDNS' configuration: the cluster zone from the API
// (pods by address, as kubeadm's default), everything else forwarded to
// the NAT's resolver and cached. Pure.
func corefile(env Env, kubeconfig string) string {
	node := env.NodeIP.String()
	bind := node
	if env.OverlayIP != nil {
		bind += " " + env.OverlayIP.String()
	}
	return fmt.Sprintf(`.:%[1]d {
    bind %[10]s
    errors
    health 127.0.0.1:%[3]d
    ready 127.0.0.1:%[4]d
    kubernetes %[5]s in-addr.arpa ip6.arpa {
        kubeconfig %[6]s %[7]s
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }
    prometheus %[2]s:%[8]d
    forward . %[9]s {
        max_concurrent 1000
    }
    cache 30 {
        disable success %[5]s
        disable denial %[5]s
    }
    loop
    loadbalance
}
`, dnsPort, node, dnsHealthPort, dnsReadyPort, env.ClusterDomain, kubeconfig, dnsIdentity, dnsMetricsPort, upstreamAddr(env.Upstream), bind)
}

// dnsAddr is the kube-dns Service's endpoint: the node address, or the
// overlay's where other nodes' pods resolve too.
func dnsAddr(env Env) net.IP {
	if env.OverlayIP != nil {
		return env.OverlayIP
	}
	return env.NodeIP
}

// upstreamAddr is host:53 for a bare resolver address.
func upstreamAddr(s string) string {
	if _, _, err := net.SplitHostPort(s); err == nil {
		return s
	}
	return net.JoinHostPort(s, strconv.Itoa(dnsPort))
}

// Objects: CoreDNS' read access (as upstream's system:coredns role), and
// the kube-dns Service at the cluster DNS address with its endpoint here.
func (d *dnsAddon) Objects(env Env, serving bool) ([]runtime.Object, error) {
	user := "system:" + dnsIdentity
	svc := &corev1.Service{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{Name: dnsService, Namespace: "kube-system", Labels: map[string]string{
			"k8s-app": "kube-dns", "kubernetes.io/cluster-service": "true", "kubernetes.io/name": "CoreDNS",
		}, Annotations: map[string]string{"prometheus.io/port": strconv.Itoa(dnsMetricsPort), "prometheus.io/scrape": "true"}},
		Spec: corev1.ServiceSpec{
			ClusterIP:  env.DNSServiceIP.String(),
			ClusterIPs: []string{env.DNSServiceIP.String()},
			Ports: []corev1.ServicePort{
				{Name: "dns", Protocol: corev1.ProtocolUDP, Port: dnsPort},
				{Name: "dns-tcp", Protocol: corev1.ProtocolTCP, Port: dnsPort},
				{Name: "metrics", Protocol: corev1.ProtocolTCP, Port: dnsMetricsPort},
			},
		},
	}
	return []runtime.Object{
		clusterRole(user,
			rule([]string{""}, []string{"endpoints", "services", "pods", "namespaces"}, "list", "watch"),
			rule([]string{"discovery.k8s.io"}, []string{"endpointslices"}, "list", "watch")),
		bindClusterRole(user, user, user),
		svc,
		// Ready at once: a query that arrives before CoreDNS listens is
		// refused either way, and kube-proxy is spared a second sync.
		endpointSlice(env, dnsAddr(env), dnsService, true,
			endpointPort("dns", corev1.ProtocolUDP, dnsPort),
			endpointPort("dns-tcp", corev1.ProtocolTCP, dnsPort),
			endpointPort("metrics", corev1.ProtocolTCP, dnsMetricsPort)),
	}, nil
}

// coreDNSGlobals: CoreDNS logs through the standard library's log package
// and prints a banner unless told to be quiet; both are process-wide, set
// once.
var coreDNSGlobals sync.Once

func (d *dnsAddon) Start(ctx context.Context, env Env, failed func(error)) error {
	kc, err := env.Kubeconfig(dnsIdentity)
	if err != nil {
		return err
	}
	lf, err := os.OpenFile(filepath.Join(env.LogDir, DNS+".log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open the DNS log: %w", err)
	}
	coreDNSGlobals.Do(func() {
		caddy.Quiet, dnsserver.Quiet = true, true
		log.SetOutput(lf)
		log.SetFlags(log.LstdFlags)
	})
	loopFound.Store(&failed)
	inst, err := caddy.Start(caddy.CaddyfileInput{Contents: []byte(corefile(env, kc)), Filepath: "Corefile", ServerTypeName: "dns"})
	// The kubernetes plugin points klog, one per process, at CoreDNS' log:
	// give it back to the other components.
	klog.ClearLogger()
	if err != nil {
		lf.Close()
		return fmt.Errorf("start CoreDNS: %w", err)
	}
	d.inst, d.logf = inst, lf
	ready := "http://127.0.0.1:" + strconv.Itoa(dnsReadyPort) + "/ready"
	if err := waitOK(ctx, http.DefaultClient, ready); err != nil {
		d.Stop()
		return fmt.Errorf("CoreDNS not ready: %w", err)
	}
	return nil
}

// Ready waits until a cluster name resolves through the kube-dns Service
// address, as from a pod: CoreDNS serves, and kube-proxy has programmed the
// Service and its endpoint. Until then a query may go nowhere, or out
// through the NAT to whatever answers there.
func (d *dnsAddon) Ready(ctx context.Context, env Env, _ dynamic.Interface) error {
	name := "kubernetes.default.svc." + env.ClusterDomain + "."
	server := net.JoinHostPort(env.DNSServiceIP.String(), strconv.Itoa(dnsPort))
	c := &dns.Client{Timeout: 500 * time.Millisecond}
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	return poll(ctx, name+" through "+server, 50*time.Millisecond, func(ctx context.Context) error {
		r, _, err := c.ExchangeContext(ctx, m, server)
		switch {
		case err != nil:
			return err
		case r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0:
			return fmt.Errorf("answer %s with %d records", dns.RcodeToString[r.Rcode], len(r.Answer))
		}
		return nil
	})
}

func (d *dnsAddon) Stop() {
	if d.inst == nil {
		return
	}
	d.inst.Stop()
	d.inst.ShutdownCallbacks()
	d.inst.Wait()
	d.inst = nil
	d.logf.Close()
}
