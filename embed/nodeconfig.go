package embed

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
)

// Ports of the node components, inside the namespace.
const (
	kubeletPort        = 10250
	kubeletHealthzPort = 10248
	proxyHealthzPort   = 10256
	proxyMetricsPort   = 10249
)

// NodeConfig is what the node components (containerd, kubelet, kube-proxy,
// CNI) are configured from, beyond the cluster Config.
type NodeConfig struct {
	Config
	// LimitsEnforced: delegated cgroup v2 with cpu, memory and pids. When
	// false the kubelet runs without QoS cgroups or allocatable enforcement
	// and pod limits are accepted but not applied.
	LimitsEnforced bool
	CgroupRoot     string // with LimitsEnforced: the delegated cgroup the kubelet puts pods under
	ProxyMode      string // iptables or nftables
	ContainerdSock string
	// ClusterDNS is the cluster DNS Service's address that pods resolve
	// through; empty when the DNS add-on is off (pods then fall back to the
	// node's resolv.conf, as upstream does).
	ClusterDNS string
	// PodTCPCongestion, when set, is the default TCP congestion control
	// the tuning plugin gives each pod's network namespace, which would
	// otherwise start with the host's (see netstack.PodCongestion).
	PodTCPCongestion string
	// DiskFree is the data dir's free space below which the kubelet evicts
	// pods (zero: DefaultDiskFree).
	DiskFree DiskFree
	// Join, when set, makes this a joined node (`unetes join`): another
	// instance runs the control plane.
	Join *JoinConfig
	// NodePodCIDR is the pod range the cluster gave this node (a joined
	// node's spec.podCIDR); empty: the cluster range's first /24.
	NodePodCIDR string
	// Overlay, when set, joins the node's pod range to the other nodes'
	// (flannel VXLAN through the host's address).
	Overlay *OverlayConfig
	// PodMTU is the MTU of the pods' interfaces; zero: the bridge plugin's
	// (1500). With the overlay it is the VXLAN device's, so that a pod's
	// segment to another node is one datagram through the NATs.
	PodMTU int
}

func (c NodeConfig) pki(f string) string { return filepath.Join(c.DataDir, "pki", f) }

func (c NodeConfig) cniConfDir() string { return filepath.Join(c.StateDir, "cni", "net.d") }

// podRange is the node's pod range.
func (c NodeConfig) podRange() (string, error) {
	if c.NodePodCIDR != "" {
		return c.NodePodCIDR, nil
	}
	return c.PodCIDR()
}

func (c NodeConfig) diskFree() DiskFree {
	if c.DiskFree.String() == "" {
		return DefaultDiskFree
	}
	return c.DiskFree
}

// kubeletConfig renders the KubeletConfiguration. Pure.
func kubeletConfig(c NodeConfig) string {
	var b strings.Builder
	// The server's kubelet has its serving certificate from the PKI; a
	// joined node's asks the cluster for one (and renews its client one).
	ca := c.pki("ca.crt")
	serving := fmt.Sprintf("tlsCertFile: %q\ntlsPrivateKeyFile: %q\n", c.pki("kubelet.crt"), c.pki("kubelet.key"))
	if c.Join != nil {
		ca = filepath.Join(c.Join.Dir, JoinCAFile)
		serving = "serverTLSBootstrap: true\nrotateCertificates: true\n"
	}
	fmt.Fprintf(&b, `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 0.0.0.0
port: %d
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: %d
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: %q
authorization:
  mode: Webhook
%scontainerRuntimeEndpoint: %q
podLogsDir: %q
clusterDomain: %s
resolvConf: /etc/resolv.conf
cgroupDriver: cgroupfs
failSwapOn: false
protectKernelDefaults: false
serializeImagePulls: false
featureGates:
  KubeletInUserNamespace: true
`, kubeletPort, kubeletHealthzPort, ca, serving,
		"unix://"+c.ContainerdSock, filepath.Join(c.DataDir, "pod-logs"), c.ClusterDomain)
	if c.ClusterDNS != "" {
		fmt.Fprintf(&b, "clusterDNS:\n- %s\n", c.ClusterDNS)
	}
	// Every threshold is named: evictionHard replaces the kubelet's whole
	// default set.
	disk := c.diskFree()
	fmt.Fprintf(&b, "evictionHard:\n  memory.available: 100Mi\n  nodefs.available: %q\n  imagefs.available: %q\n  nodefs.inodesFree: 5%%\n  imagefs.inodesFree: 5%%\n", disk, disk)
	if high, low, ok := disk.imageGC(); ok {
		fmt.Fprintf(&b, "imageGCHighThresholdPercent: %d\nimageGCLowThresholdPercent: %d\n", high, low)
	}
	if c.LimitsEnforced {
		fmt.Fprintf(&b, "cgroupRoot: %s\n", c.CgroupRoot)
	} else {
		b.WriteString(`failCgroupV1: false
cgroupsPerQOS: false
enforceNodeAllocatable: []
`)
	}
	return b.String()
}

// kubeletRoot is the kubelet's directory inside the mount namespace: a bind
// mount of <data>/kubelet (see mountKubeletRoot). The kubelet makes unix
// sockets below it, whose paths must stay under 108 bytes, which a data dir
// in a deep $HOME would not.
const kubeletRoot = "/var/lib/kubelet"

// kubeletFlags are the kubelet's command-line flags (what its config file cannot hold).
func kubeletFlags(c NodeConfig, configPath, kubeconfig string) map[string]string {
	return map[string]string{
		"config":            configPath,
		"kubeconfig":        kubeconfig,
		"hostname-override": c.NodeName,
		"node-ip":           c.NodeIP.String(),
		"root-dir":          kubeletRoot,
		"cert-dir":          filepath.Join(kubeletRoot, "pki"),
		"v":                 "1",
	}
}

// kubeProxyConfig renders the KubeProxyConfiguration. Pure. The conntrack
// sysctls belong to the host, so kube-proxy must not touch them;
// masqueradeAll makes Service traffic between pods on the one bridge work
// without br_netfilter, which a user namespace cannot load. One node with
// few Services: rules follow a change within 100 ms, not upstream's 1 s
// (which batches changes of big clusters).
func kubeProxyConfig(c NodeConfig, kubeconfig string) string {
	return fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: %q
hostnameOverride: %s
mode: %s
clusterCIDR: %s
healthzBindAddress: 127.0.0.1:%d
metricsBindAddress: 127.0.0.1:%d
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
  udpTimeout: 0s
  udpStreamTimeout: 0s
iptables:
  masqueradeAll: true
  localhostNodePorts: true
  minSyncPeriod: 100ms
nftables:
  masqueradeAll: true
  minSyncPeriod: 100ms
`, kubeconfig, c.NodeName, c.ProxyMode, c.ClusterCIDR, proxyHealthzPort, proxyMetricsPort)
}

// podBridgeName is the node's bridge for its pods.
const podBridgeName = "cni0"

// cniConfig renders the bridge network: pods on cni0 in the node's pod
// range (masqueraded out through the namespace's NAT by one rule for the
// range, setupMasquerade, not by the plugin per pod); portmap for hostPort;
// tuning for the pods' TCP congestion control where it is set.
func cniConfig(c NodeConfig) (string, error) {
	podCIDR, err := c.podRange()
	if err != nil {
		return "", err
	}
	conf := map[string]any{
		"cniVersion": "1.0.0",
		"name":       "unetes",
		"plugins": []any{
			map[string]any{
				"type": "bridge", "bridge": podBridgeName, "isGateway": true, "ipMasq": false, "hairpinMode": true,
				"ipam": map[string]any{
					"type":   "host-local",
					"ranges": []any{[]any{map[string]any{"subnet": podCIDR}}},
					"routes": []any{map[string]any{"dst": "0.0.0.0/0"}},
				},
			},
			// The backend named, portmap does not probe for one with two
			// iptables runs under the xtables lock at every pod's start
			// and end, port mappings or not.
			map[string]any{"type": "portmap", "backend": c.ProxyMode, "capabilities": map[string]any{"portMappings": true}},
		},
	}
	if c.PodMTU > 0 {
		conf["plugins"].([]any)[0].(map[string]any)["mtu"] = c.PodMTU
	}
	if c.PodTCPCongestion != "" {
		conf["plugins"] = append(conf["plugins"].([]any),
			map[string]any{"type": "tuning", "sysctl": map[string]any{"net.ipv4.tcp_congestion_control": c.PodTCPCongestion}})
	}
	b, err := json.MarshalIndent(conf, "", "  ")
	return string(b) + "\n", err
}

// DetectProxyMode picks kube-proxy's mode: iptables where the iptables tool
// is installed (it serves NodePorts on 127.0.0.1, which `unetes forward`
// dials), else nftables.
func DetectProxyMode() string {
	if _, err := exec.LookPath("iptables"); err == nil {
		return "iptables"
	}
	return "nftables"
}
