package main

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/unetes/unetes/hostfwd"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// followServices lets the user's forwards to Services (`unetes forward
// svc/NAME …`) start: it gives fwd a resolver on the Kubernetes API and
// watches Services, so that a forward follows its Service when it is
// deleted, created again, or given another cluster IP. It returns the saved
// forwards that could not start, and stop, which ends the watch (before the
// instance stops: an open watch holds the apiserver's shutdown). Later
// problems go to warn.
func followServices(ctx context.Context, fwd *hostfwd.Manager, client *http.Client, server string, warn func(error)) (warnings []error, stop func(), err error) {
	cs, err := kubernetes.NewForConfigAndClient(&rest.Config{Host: server, UserAgent: "unetes-forward"}, client)
	if err != nil {
		return nil, nil, fmt.Errorf("client for forwards to Services: %w", err)
	}
	warnings = fwd.SetResolver(ctx, func(ctx context.Context, svc string, port uint16, proto string) (netip.Addr, error) {
		return resolveService(ctx, cs, svc, port, proto)
	})
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			// Without a resource version the watch begins with every
			// Service: after a break, each is looked at again.
			w, err := cs.CoreV1().Services("").Watch(ctx, metav1.ListOptions{})
			if err == nil {
				for ev := range w.ResultChan() {
					if s, ok := ev.Object.(*corev1.Service); ok {
						// The event has the Service: no second lookup.
						gone := ev.Type == watch.Deleted
						fromEvent := func(_ context.Context, svc string, port uint16, proto string) (netip.Addr, error) {
							if gone {
								return netip.Addr{}, errNoService(svc)
							}
							return serviceAddr(s, svc, port, proto)
						}
						for _, err := range fwd.Refresh(ctx, s.Namespace+"/"+s.Name, fromEvent) {
							if ctx.Err() == nil {
								warn(err)
							}
						}
					}
				}
				w.Stop()
			}
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}()
	return warnings, func() { cancel(); <-done }, nil
}

// resolveService returns the cluster IP of Service "namespace/name" after
// checking that it has port/proto; its errors say what to do.
func resolveService(ctx context.Context, cs kubernetes.Interface, svc string, port uint16, proto string) (netip.Addr, error) {
	ns, name, _ := strings.Cut(svc, "/")
	s, err := cs.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return netip.Addr{}, errNoService(svc)
	}
	if err != nil {
		return netip.Addr{}, fmt.Errorf("look up Service %s: %w", svc, err)
	}
	return serviceAddr(s, svc, port, proto)
}

func errNoService(svc string) error {
	ns, _, _ := strings.Cut(svc, "/")
	return fmt.Errorf("Service %s does not exist: create it, or check the name with `unetes kubectl get services -n %s`", svc, ns)
}

// serviceAddr is s's cluster IP if s has port/proto. Pure.
func serviceAddr(s *corev1.Service, svc string, port uint16, proto string) (netip.Addr, error) {
	ip, err := netip.ParseAddr(s.Spec.ClusterIP)
	if err != nil || !ip.Is4() {
		return netip.Addr{}, fmt.Errorf("Service %s has no IPv4 cluster IP (%q; headless or ExternalName): forward to a Service with a cluster IP", svc, s.Spec.ClusterIP)
	}
	var have []string
	for _, p := range s.Spec.Ports {
		if p.Port == int32(port) && strings.EqualFold(string(p.Protocol), proto) {
			return ip, nil
		}
		have = append(have, fmt.Sprintf("%d/%s", p.Port, strings.ToLower(string(p.Protocol))))
	}
	return netip.Addr{}, fmt.Errorf("Service %s has no port %d/%s; its ports are %s", svc, port, proto, strings.Join(have, ", "))
}
