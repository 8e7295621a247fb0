package main

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strings"
)

// HTTP(S) proxies. Every process of an instance inherits the environment of
// `unetes run`, and Go programs (containerd's pulls, dockerd's pulls and
// builds, and every Kubernetes client: the apiserver reaching the kubelet
// and the metrics API, metrics-server, client-go) take their proxy from it.
// A proxy meant for the internet must not be asked for the cluster's own
// addresses (with HTTPS_PROXY set and no NO_PROXY for them, the apiserver
// sends its calls to the kubelet and to metrics-server through the proxy,
// and `run` never gets ready), and a proxy on the host's loopback is not
// the namespace's loopback. So where the environment names a proxy, the
// namespace gets NO_PROXY (and no_proxy) with the cluster's addresses and
// names added to the user's, and a loopback proxy pointed at the gateway
// where --allow-host-loopback lets the namespace reach the host's loopback.

// proxyVars are the variables Go's ProxyFromEnvironment reads for a proxy.
var proxyVars = []string{"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"}

// proxySettings is what the namespace gets of the host's proxy settings.
type proxySettings struct {
	Env   []string // NAME=value, in place of the inherited ones
	Notes []string // said at start-up
}

// resolveProxy is pure: env is `run`'s environment, exempt the addresses,
// prefixes and domain suffixes the cluster's own traffic uses, gateway the
// namespace's way to the host.
func resolveProxy(env []string, exempt []string, gateway netip.Addr, allowHostLoopback bool) proxySettings {
	get := func(name string) string {
		for _, kv := range env {
			if v, ok := strings.CutPrefix(kv, name+"="); ok {
				return v
			}
		}
		return ""
	}
	var s proxySettings
	var named []string
	for _, name := range proxyVars {
		v := get(name)
		if v == "" {
			continue
		}
		named = append(named, name)
		host, rewritten, ok := loopbackProxy(v, gateway)
		switch {
		case !ok:
		case allowHostLoopback:
			s.Env = append(s.Env, name+"="+rewritten)
			s.Notes = append(s.Notes, fmt.Sprintf("%s %s is on the host's loopback: the namespace reaches it as %s (--allow-host-loopback)", name, v, rewritten))
		default:
			s.Notes = append(s.Notes, fmt.Sprintf("warning: %s %s is on the host's loopback (%s), which the namespace cannot reach: pulls and builds through it will fail; run with --allow-host-loopback and unetes points it at %s", name, v, host, gateway))
		}
	}
	if len(named) == 0 {
		return proxySettings{}
	}
	noProxy := get("NO_PROXY")
	if noProxy == "" {
		noProxy = get("no_proxy")
	}
	var list []string
	for _, e := range strings.Split(noProxy, ",") {
		if e = strings.TrimSpace(e); e != "" && !slices.Contains(list, e) {
			list = append(list, e)
		}
	}
	for _, e := range exempt {
		if !slices.Contains(list, e) {
			list = append(list, e)
		}
	}
	joined := strings.Join(list, ",")
	s.Env = append(s.Env, "NO_PROXY="+joined, "no_proxy="+joined)
	s.Notes = append(s.Notes, fmt.Sprintf("proxy from %s for pulls and builds; the cluster's own addresses bypass it (NO_PROXY=%s)", strings.Join(named, ", "), joined))
	return s
}

// loopbackProxy says whether the proxy URL v is on the host's loopback, and
// gives it with the gateway in its place. IPv4 only: the gateway leads to
// the host's 127.0.0.1.
func loopbackProxy(v string, gateway netip.Addr) (host, rewritten string, ok bool) {
	raw := v
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw // as Go reads a proxy without a scheme
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", "", false
	}
	h := u.Hostname()
	if a, err := netip.ParseAddr(h); !(h == "localhost" || err == nil && a.Is4() && a.IsLoopback()) {
		return "", "", false
	}
	if p := u.Port(); p != "" {
		u.Host = net.JoinHostPort(gateway.String(), p)
	} else {
		u.Host = gateway.String()
	}
	return h, u.String(), true
}

// clusterExempt is what bypasses a proxy: the loopback, the namespace's
// network (the node, the gateway to the host, the DNS relay), the pod and
// Service ranges, and the cluster's domain names.
func clusterExempt(guest netip.Prefix, podCIDR, serviceCIDR, domain string) []string {
	return []string{"localhost", "127.0.0.1", "::1", guest.Masked().String(), podCIDR, serviceCIDR, ".svc", "." + domain}
}
