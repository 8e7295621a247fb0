package embed

import (
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
)

// etcd's client endpoint, on the namespace's loopback, mutual TLS.
const (
	etcdClientURL = "https://127.0.0.1:2379"
	etcdPeerURL   = "https://127.0.0.1:2380"
	cmPort        = 10257
	schedPort     = 10259
)

// FlagList turns a flag map into a sorted --k=v list; extra wins over base.
func FlagList(base, extra map[string]string) []string {
	m := make(map[string]string, len(base)+len(extra))
	for k, v := range base {
		m[k] = v
	}
	for k, v := range extra {
		m[k] = v
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, fmt.Sprintf("--%s=%s", k, m[k]))
	}
	return out
}

func apiserverFlags(c Config, pkiDir string) map[string]string {
	p := func(f string) string { return filepath.Join(pkiDir, f) }
	return map[string]string{
		"advertise-address":                  c.advertiseIP().String(),
		"allow-privileged":                   "true",
		"authorization-mode":                 "Node,RBAC",
		"bind-address":                       "0.0.0.0",
		"client-ca-file":                     p("ca.crt"),
		"enable-admission-plugins":           "NodeRestriction",
		"enable-bootstrap-token-auth":        "true", // nodes join with the join add-on's token
		"enable-aggregator-routing":          "true",
		"etcd-cafile":                        p("etcd-ca.crt"),
		"etcd-certfile":                      p("apiserver-etcd-client.crt"),
		"etcd-keyfile":                       p("apiserver-etcd-client.key"),
		"etcd-servers":                       etcdClientURL,
		"kubelet-client-certificate":         p("apiserver-kubelet-client.crt"),
		"kubelet-client-key":                 p("apiserver-kubelet-client.key"),
		"kubelet-preferred-address-types":    "InternalIP,Hostname",
		"kubelet-certificate-authority":      p("ca.crt"),
		"profiling":                          "false",
		"proxy-client-cert-file":             p("front-proxy-client.crt"),
		"proxy-client-key-file":              p("front-proxy-client.key"),
		"requestheader-allowed-names":        "front-proxy-client",
		"requestheader-client-ca-file":       p("front-proxy-ca.crt"),
		"requestheader-extra-headers-prefix": "X-Remote-Extra-",
		"requestheader-group-headers":        "X-Remote-Group",
		"requestheader-username-headers":     "X-Remote-User",
		"secure-port":                        strconv.Itoa(c.APIPort),
		"service-account-issuer":             "https://kubernetes.default.svc." + c.ClusterDomain,
		"service-account-key-file":           p("sa.pub"),
		"service-account-signing-key-file":   p("sa.key"),
		"service-cluster-ip-range":           c.ServiceCIDR,
		"tls-cert-file":                      p("apiserver.crt"),
		"tls-private-key-file":               p("apiserver.key"),
	}
}

func controllerManagerFlags(c Config, pkiDir, kubeconfig string) map[string]string {
	p := func(f string) string { return filepath.Join(pkiDir, f) }
	return map[string]string{
		"allocate-node-cidrs":       "true",
		"authentication-kubeconfig": kubeconfig,
		"authorization-kubeconfig":  kubeconfig,
		"bind-address":              "127.0.0.1",
		"cluster-cidr":              c.ClusterCIDR,
		"cluster-signing-cert-file": p("ca.crt"),
		"cluster-signing-key-file":  p("ca.key"),
		// With the bootstrap tokens' two, off by default: the signer signs
		// cluster-info for joiners, the cleaner deletes expired tokens.
		"controllers":                      "*,bootstrap-signer-controller,token-cleaner-controller",
		"kubeconfig":                       kubeconfig,
		"leader-elect":                     "false",
		"profiling":                        "false",
		"root-ca-file":                     p("ca.crt"),
		"secure-port":                      strconv.Itoa(cmPort),
		"service-account-private-key-file": p("sa.key"),
		"service-cluster-ip-range":         c.ServiceCIDR,
		"tls-cert-file":                    p("controller-manager-serving.crt"),
		"tls-private-key-file":             p("controller-manager-serving.key"),
		"use-service-account-credentials":  "true",
	}
}

func schedulerFlags(pkiDir, kubeconfig string) map[string]string {
	p := func(f string) string { return filepath.Join(pkiDir, f) }
	return map[string]string{
		"authentication-kubeconfig": kubeconfig,
		"authorization-kubeconfig":  kubeconfig,
		"bind-address":              "127.0.0.1",
		"kubeconfig":                kubeconfig,
		"leader-elect":              "false",
		"profiling":                 "false",
		"secure-port":               strconv.Itoa(schedPort),
		"tls-cert-file":             p("scheduler-serving.crt"),
		"tls-private-key-file":      p("scheduler-serving.key"),
	}
}
