package addons

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/unetes/unetes/embed"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
)

// The lb add-on publishes what the cluster asks to be reachable from
// outside on the host: every port of a LoadBalancer Service, and every
// hostPort of a pod on this node. Each becomes a forward of the parent
// (Env.Publisher) from the host's LBAddress to the Service's cluster IP or
// the node's address inside, through the same fd-passing path as `unetes
// forward`. A host port that cannot be opened leaves the Service pending
// (or the pod unreachable from the host) with a Warning Event; it is tried
// again with backoff, and at once whenever another owner frees a port.
const (
	// LBClass is unetes' own loadBalancerClass; Services with no class are
	// served too.
	LBClass    = "unetes.io/lb"
	lbIdentity = "lb"
)

// Publisher opens host ports for the cluster (the parent's forwards).
type Publisher interface {
	// Publish makes the ports of owner ("service/NAMESPACE/NAME" or
	// "pod/NAMESPACE/NAME") exactly ports, all or nothing; its error says
	// why a port cannot be opened and what to do.
	Publish(ctx context.Context, owner string, ports []HostPort) error
}

// HostPort is one published port: HostIP:HostPort on the host to To:Port
// inside.
type HostPort struct {
	Proto    string // "tcp" or "udp"
	HostIP   netip.Addr
	HostPort uint16
	To       netip.Addr
	Port     uint16
}

func (p HostPort) String() string { return fmt.Sprintf("%s:%d/%s", p.HostIP, p.HostPort, p.Proto) }

type lbAddon struct {
	env      Env
	client   kubernetes.Interface
	services corelisters.ServiceLister
	pods     corelisters.PodLister
	queue    workqueue.TypedRateLimitingInterface[string]
	events   record.EventBroadcaster
	recorder record.EventRecorder
	cancel   context.CancelFunc
	done     chan struct{}
	logf     io.Closer
	served   bool // Start returned: Stop waits longer

	mu        sync.Mutex
	published map[string][]HostPort // what each owner holds now
	pending   map[string]bool       // owners whose last publish failed
}

func (l *lbAddon) Objects(env Env, serving bool) ([]runtime.Object, error) {
	user := "system:unetes:" + lbIdentity
	return []runtime.Object{
		clusterRole(user,
			rule([]string{""}, []string{"services", "pods"}, "get", "list", "watch"),
			rule([]string{""}, []string{"services/status"}, "update", "patch"),
			rule([]string{""}, []string{"events"}, "create", "patch", "update"),
			rule([]string{"events.k8s.io"}, []string{"events"}, "create", "patch", "update")),
		bindClusterRole(user, user, user),
	}, nil
}

// Note says where published ports listen.
func (l *lbAddon) Note(env Env) string {
	return fmt.Sprintf("LoadBalancer Services and hostPorts published on %s", env.LBAddress)
}

func (l *lbAddon) Start(ctx context.Context, env Env, failed func(error)) error {
	if env.Publisher == nil || !env.LBAddress.IsValid() || !env.LBIngress.IsValid() {
		return errors.New("lb: no publisher or address")
	}
	client, err := clientFor(env, lbIdentity)
	if err != nil {
		return err
	}
	rctx, cancel := context.WithCancel(context.Background())
	rctx, logf, err := embed.ComponentLogger(rctx, env.LogDir, LB)
	if err != nil {
		cancel()
		return err
	}
	l.env, l.client, l.cancel, l.logf, l.done = env, client, cancel, logf, make(chan struct{})
	l.published, l.pending = map[string][]HostPort{}, map[string]bool{}
	l.queue = workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.NewTypedItemExponentialFailureRateLimiter[string](500*time.Millisecond, 30*time.Second),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "unetes-lb"})
	l.events = record.NewBroadcaster(record.WithContext(rctx))
	l.events.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	l.recorder = l.events.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "unetes-lb"})

	all := informers.NewSharedInformerFactory(client, 0)
	mine := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", env.NodeName).String()
	}))
	svcInf, podInf := all.Core().V1().Services(), mine.Core().V1().Pods()
	l.services, l.pods = svcInf.Lister(), podInf.Lister()
	svcInf.Informer().AddEventHandler(l.handler("service"))
	podInf.Informer().AddEventHandler(l.handler("pod"))
	all.Start(rctx.Done())
	mine.Start(rctx.Done())
	go func() {
		defer close(l.done)
		for l.next(rctx) {
		}
		all.Shutdown()
		mine.Shutdown()
	}()
	for _, f := range []informers.SharedInformerFactory{all, mine} {
		for typ, ok := range f.WaitForCacheSync(ctx.Done()) {
			if !ok {
				l.Stop()
				return fmt.Errorf("lb: no %v from the API", typ)
			}
		}
	}
	l.served = true
	return nil
}

// handler queues the owner key ("service/NS/NAME", "pod/NS/NAME") of every
// change; the sync decides whether it matters.
func (l *lbAddon) handler(kind string) cache.ResourceEventHandler {
	add := func(obj any) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			l.queue.Add(kind + "/" + key)
		}
	}
	return cache.ResourceEventHandlerFuncs{AddFunc: add, UpdateFunc: func(_, cur any) { add(cur) }, DeleteFunc: add}
}

func (l *lbAddon) next(ctx context.Context) bool {
	key, quit := l.queue.Get()
	if quit {
		return false
	}
	defer l.queue.Done(key)
	if err := l.sync(ctx, key); err != nil {
		klog.FromContext(ctx).Info("not published; will retry", "owner", key, "err", err)
		l.queue.AddRateLimited(key)
		return true
	}
	l.queue.Forget(key)
	return true
}

// sync publishes what one owner asks for now.
func (l *lbAddon) sync(ctx context.Context, key string) error {
	kind, ref, _ := strings.Cut(key, "/")
	ns, name, _ := strings.Cut(ref, "/")
	if kind == "service" {
		svc, err := l.services.Services(ns).Get(name)
		if apierrors.IsNotFound(err) {
			return l.publish(ctx, key, nil)
		}
		if err != nil {
			return err
		}
		return l.syncService(ctx, key, svc)
	}
	pod, err := l.pods.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return l.publish(ctx, key, nil)
	}
	if err != nil {
		return err
	}
	if err = l.publish(ctx, key, hostPorts(pod, l.env)); err != nil {
		l.recorder.Eventf(pod, corev1.EventTypeWarning, "HostPortNotPublished",
			"hostPort not reachable from the host: %v", err)
	}
	return err
}

func (l *lbAddon) syncService(ctx context.Context, key string, svc *corev1.Service) error {
	if !wantsLB(svc) {
		if err := l.publish(ctx, key, nil); err != nil {
			return err
		}
		if len(svc.Status.LoadBalancer.Ingress) > 0 && ownIngress(svc, l.env) {
			return setIngress(ctx, l.client, svc, corev1.LoadBalancerStatus{})
		}
		return nil
	}
	ports, err := servicePorts(svc, l.env)
	if err == nil {
		err = l.publish(ctx, key, ports)
	}
	if err != nil {
		l.recorder.Eventf(svc, corev1.EventTypeWarning, "SyncLoadBalancerFailed",
			"Service stays pending: %v", err)
		if ownIngress(svc, l.env) {
			setIngress(ctx, l.client, svc, corev1.LoadBalancerStatus{})
		}
		return err
	}
	want := ingress(ports, l.env)
	if equality.Semantic.DeepEqual(svc.Status.LoadBalancer, want) {
		return nil
	}
	if err := setIngress(ctx, l.client, svc, want); err != nil {
		return err
	}
	var on []string
	for _, p := range ports {
		on = append(on, p.String())
	}
	l.recorder.Eventf(svc, corev1.EventTypeNormal, "EnsuredLoadBalancer", "Published on the host at %s", strings.Join(on, ", "))
	return nil
}

// publish hands owner's ports to the parent unless it holds them already.
// When an owner gives ports up, the owners waiting for a port try again.
func (l *lbAddon) publish(ctx context.Context, owner string, ports []HostPort) error {
	l.mu.Lock()
	cur := l.published[owner]
	pending := l.pending[owner]
	l.mu.Unlock()
	if !pending && slices.Equal(cur, ports) {
		return nil
	}
	err := l.env.Publisher.Publish(ctx, owner, ports)
	l.mu.Lock()
	defer l.mu.Unlock()
	freed := len(cur) > 0 && (err != nil || !slices.Equal(cur, ports))
	if err != nil {
		delete(l.published, owner)
		l.pending[owner] = true
	} else {
		delete(l.pending, owner)
		if len(ports) == 0 {
			delete(l.published, owner)
		} else {
			l.published[owner] = ports
		}
	}
	if freed {
		for k := range l.pending {
			if k != owner {
				l.queue.Add(k)
			}
		}
	}
	return err
}

// setIngress writes st as svc's load-balancer status.
func setIngress(ctx context.Context, client kubernetes.Interface, svc *corev1.Service, st corev1.LoadBalancerStatus) error {
	s := svc.DeepCopy()
	s.Status.LoadBalancer = st
	_, err := client.CoreV1().Services(s.Namespace).UpdateStatus(ctx, s, metav1.UpdateOptions{})
	return err
}

func (l *lbAddon) Stop() {
	if l.cancel == nil {
		return
	}
	l.cancel()
	l.queue.ShutDown()
	awaitStop(l.done, l.served)
	l.events.Shutdown()
	l.logf.Close()
	l.cancel = nil
}

// Cleanup, when lb is disabled, clears the status it gave Services in
// earlier runs: they are pending again, as nothing publishes them.
func (l *lbAddon) Cleanup(ctx context.Context, env Env) error {
	client, err := kubernetes.NewForConfig(env.Admin)
	if err != nil {
		return err
	}
	svcs, err := client.CoreV1().Services("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for i := range svcs.Items {
		svc := &svcs.Items[i]
		if ownIngress(svc, env) {
			if err := setIngress(ctx, client, svc, corev1.LoadBalancerStatus{}); err != nil {
				return fmt.Errorf("clear the address of Service %s/%s: %w", svc.Namespace, svc.Name, err)
			}
		}
	}
	return nil
}

// wantsLB: a LoadBalancer Service of no class or of unetes' own.
func wantsLB(svc *corev1.Service) bool {
	return svc.Spec.Type == corev1.ServiceTypeLoadBalancer &&
		(svc.Spec.LoadBalancerClass == nil || *svc.Spec.LoadBalancerClass == LBClass)
}

// servicePorts are a LoadBalancer Service's ports on the host: each port
// number opened on the LB address, forwarded to the cluster IP. Pure.
func servicePorts(svc *corev1.Service, env Env) ([]HostPort, error) {
	to, err := netip.ParseAddr(svc.Spec.ClusterIP)
	if err != nil || !to.Is4() {
		return nil, fmt.Errorf("no IPv4 cluster IP (%q): unetes publishes IPv4 Services", svc.Spec.ClusterIP)
	}
	var out []HostPort
	for _, p := range svc.Spec.Ports {
		proto, err := protoName(p.Protocol)
		if err != nil {
			return nil, fmt.Errorf("port %d: %w", p.Port, err)
		}
		out = append(out, HostPort{Proto: proto, HostIP: env.LBAddress, HostPort: uint16(p.Port), To: to, Port: uint16(p.Port)})
	}
	return out, nil
}

// hostPorts are a running pod's hostPorts on the host, forwarded to the
// same port of the node's address (where the CNI portmap plugin maps it to
// the pod). A pod that is not running, or has no IP yet, has none. Pure.
func hostPorts(pod *corev1.Pod, env Env) []HostPort {
	if pod.DeletionTimestamp != nil || pod.Status.PodIP == "" ||
		pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return nil
	}
	node, _ := netip.AddrFromSlice(env.NodeIP.To4())
	var out []HostPort
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			proto, err := protoName(p.Protocol)
			if p.HostPort <= 0 || err != nil {
				continue
			}
			out = append(out, HostPort{Proto: proto, HostIP: env.LBAddress, HostPort: uint16(p.HostPort), To: node, Port: uint16(p.HostPort)})
		}
	}
	return out
}

func protoName(p corev1.Protocol) (string, error) {
	switch p {
	case corev1.ProtocolTCP, "":
		return "tcp", nil
	case corev1.ProtocolUDP:
		return "udp", nil
	}
	return "", fmt.Errorf("protocol %s cannot be published: only TCP and UDP can", p)
}

// ingress is the status of a published Service: the host address, in
// Proxy mode, so that kube-proxy does not claim that address inside.
func ingress(ports []HostPort, env Env) corev1.LoadBalancerStatus {
	in := corev1.LoadBalancerIngress{IP: env.LBIngress.String(), IPMode: ptr.To(corev1.LoadBalancerIPModeProxy)}
	for _, p := range ports {
		in.Ports = append(in.Ports, corev1.PortStatus{Port: int32(p.HostPort), Protocol: corev1.Protocol(strings.ToUpper(p.Proto))})
	}
	return corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{in}}
}

// ownIngress: the Service's status is one this add-on wrote.
func ownIngress(svc *corev1.Service, env Env) bool {
	for _, in := range svc.Status.LoadBalancer.Ingress {
		if in.IP == env.LBIngress.String() && in.IPMode != nil && *in.IPMode == corev1.LoadBalancerIPModeProxy {
			return true
		}
	}
	return false
}
