package main

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"strings"

	"github.com/unetes/unetes/hostfwd"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
)

// followServices lets the user's forwards to Services (`unetes forward
// svc/NAME …`) start: it gives fwd a resolver on the Kubernetes API and
// watches Services, so that a forward follows its Service when it is
// deleted, created again, or given another cluster IP. It runs until ctx
// ends and returns the saved forwards that could not start; later problems
// go to warn.
func followServices(ctx context.Context, fwd *hostfwd.Manager, client *http.Client, server string, warn func(error)) ([]error, error) {
	cs, err := kubernetes.NewForConfigAndClient(&rest.Config{Host: server, UserAgent: "unetes-forward"}, client)
	if err != nil {
		return nil, fmt.Errorf("client for forwards to Services: %w", err)
	}
	warnings := fwd.SetResolver(ctx, func(ctx context.Context, svc string, port uint16, proto string) (netip.Addr, error) {
		return resolveService(ctx, cs, svc, port, proto)
	})
	f := informers.NewSharedInformerFactory(cs, 0)
	refresh := func(obj any) {
		if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		if s, ok := obj.(*corev1.Service); ok {
			for _, err := range fwd.Refresh(ctx, s.Namespace+"/"+s.Name) {
				warn(err)
			}
		}
	}
	f.Core().V1().Services().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: refresh, UpdateFunc: func(_, cur any) { refresh(cur) }, DeleteFunc: refresh,
	})
	f.Start(ctx.Done())
	return warnings, nil
}

// resolveService returns the cluster IP of Service "namespace/name" after
// checking that it has port/proto; its errors say what to do.
func resolveService(ctx context.Context, cs kubernetes.Interface, svc string, port uint16, proto string) (netip.Addr, error) {
	ns, name, _ := strings.Cut(svc, "/")
	s, err := cs.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return netip.Addr{}, fmt.Errorf("Service %s does not exist: create it, or check the name with `unetes kubectl get services -n %s`", svc, ns)
	}
	if err != nil {
		return netip.Addr{}, fmt.Errorf("look up Service %s: %w", svc, err)
	}
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
