package embed

import (
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"time"
)

// Config is what the control plane needs to know.
type Config struct {
	DataDir  string // etcd data, pki
	StateDir string // logs, component kubeconfigs
	NodeIP   net.IP // the namespace's address, advertised by the apiserver
	// OverlayIP, when set, is where pods on every node reach this
	// instance's control plane and add-ons across the overlay (the server's
	// pod gateway): the apiserver advertises it instead of NodeIP, which is
	// every node's own address inside its namespace.
	OverlayIP     net.IP
	APIPort       int    // apiserver port inside the namespace
	ServiceCIDR   string // e.g. 10.96.0.0/16; its first address is the kubernetes Service
	ClusterCIDR   string // pod addresses
	ClusterDomain string
	NodeName      string // stable across restarts: unetes-<instance name>
	Log           *slog.Logger
	// Progress, when set, is told each phase and how long it took.
	Progress func(phase string, took time.Duration)
}

// DefaultConfig fills the cluster-wide defaults around the paths and address.
func DefaultConfig(name, dataDir, stateDir string, nodeIP net.IP, log *slog.Logger) Config {
	return Config{NodeName: NodeName(name), DataDir: dataDir, StateDir: stateDir, NodeIP: nodeIP, APIPort: 6443,
		ServiceCIDR: "10.96.0.0/16", ClusterCIDR: "10.88.0.0/16", ClusterDomain: "cluster.local", Log: log}
}

// ServiceIP is the first address of the Service range.
func (c Config) ServiceIP() (net.IP, error) {
	_, n, err := net.ParseCIDR(c.ServiceCIDR)
	if err != nil || n.IP.To4() == nil {
		return nil, fmt.Errorf("service CIDR %q is not an IPv4 prefix", c.ServiceCIDR)
	}
	ip := n.IP.To4()
	return net.IPv4(ip[0], ip[1], ip[2], ip[3]+1), nil
}

// DNSServiceIP is the cluster DNS Service's address: the tenth of the
// Service range (10.96.0.10), where tools expect kube-dns.
func (c Config) DNSServiceIP() (net.IP, error) {
	ip, err := c.ServiceIP()
	if err != nil {
		return nil, err
	}
	ip = ip.To4()
	return net.IPv4(ip[0], ip[1], ip[2], ip[3]+9), nil
}

// PKIConfig is the PKI this control plane needs.
func (c Config) PKIConfig() (PKIConfig, error) {
	sip, err := c.ServiceIP()
	if err != nil {
		return PKIConfig{}, err
	}
	return PKIConfig{Dir: filepath.Join(c.DataDir, "pki"), ServiceIP: sip, NodeIP: c.NodeIP, ClusterDNS: c.ClusterDomain, NodeName: c.NodeName}, nil
}

// LogDir holds every component's log file.
func (c Config) LogDir() string { return filepath.Join(c.StateDir, "logs") }

// NodeName is the Kubernetes node name of instance name.
func NodeName(instance string) string { return "unetes-" + instance }

// advertiseIP is the kubernetes Service's endpoint.
func (c Config) advertiseIP() net.IP {
	if c.OverlayIP != nil {
		return c.OverlayIP
	}
	return c.NodeIP
}

// PodGateway is the first address of the pod range: the pods' gateway on
// the node's bridge.
func PodGateway(podCIDR string) (net.IP, error) {
	_, n, err := net.ParseCIDR(podCIDR)
	if err != nil || n.IP.To4() == nil {
		return nil, fmt.Errorf("pod range %q is not an IPv4 prefix", podCIDR)
	}
	gw := n.IP.To4()
	gw[3]++
	return gw, nil
}

// PodCIDR is the node's pod range: the first /24 of the cluster range, which
// is what the controller-manager allocates to the one node.
func (c Config) PodCIDR() (string, error) {
	_, n, err := net.ParseCIDR(c.ClusterCIDR)
	if err != nil || n.IP.To4() == nil {
		return "", fmt.Errorf("cluster CIDR %q is not an IPv4 prefix", c.ClusterCIDR)
	}
	if ones, _ := n.Mask.Size(); ones > 24 {
		return "", fmt.Errorf("cluster CIDR %q is smaller than a /24", c.ClusterCIDR)
	}
	return fmt.Sprintf("%s/24", n.IP.To4()), nil
}
