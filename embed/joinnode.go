package embed

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// A joined node (`unetes join`) runs containerd, the kubelet and kube-proxy
// against another instance's control plane, with no etcd, apiserver,
// controllers or add-ons of its own. Its kubelet joins by TLS bootstrap:
// the bootstrap kubeconfig holds the join token, the kubelet asks for a
// node client certificate (approved and signed on the server), writes its
// own kubeconfig, and rotates the certificate from then on; its serving
// certificate is asked for the same way (serverTLSBootstrap), so that the
// apiserver, which checks kubelets against the cluster CA, reaches it for
// logs and exec. kube-proxy uses the kubelet's client certificate (the
// node's identity). The node's address is its host's (Usernetes Gen2): the
// apiserver dials it there, where the host forwards the kubelet's port.

// Files of a joined node in <data>/join (written by `unetes join` once the
// cluster is checked; their presence makes the instance a node).
const (
	JoinDirName            = "join"
	JoinCAFile             = "ca.crt"
	JoinBootstrapFile      = "bootstrap.kubeconfig"
	joinedKubeletConfig    = kubeletRoot + "/kubeconfig"
	joinedKubeletClientPEM = kubeletRoot + "/pki/kubelet-client-current.pem"
)

// KubeletPort is the kubelet's port, which a joined node's host forwards.
const KubeletPort = kubeletPort

// JoinConfig is what makes a node a joined one.
type JoinConfig struct {
	Server string // the cluster's API, https://HOST:PORT
	Dir    string // <data>/join
}

// WriteBootstrapKubeconfig writes the kubelet's bootstrap kubeconfig (the
// token) and the cluster's CA into dir, 0600.
func WriteBootstrapKubeconfig(dir, server string, caPEM []byte, token string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(dir, JoinCAFile), caPEM, 0o600); err != nil {
		return err
	}
	b, err := clientcmd.Write(clientcmdapi.Config{
		Clusters:       map[string]*clientcmdapi.Cluster{"unetes": {Server: server, CertificateAuthorityData: caPEM}},
		AuthInfos:      map[string]*clientcmdapi.AuthInfo{"bootstrap": {Token: token}},
		Contexts:       map[string]*clientcmdapi.Context{"unetes": {Cluster: "unetes", AuthInfo: "bootstrap"}},
		CurrentContext: "unetes",
	})
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, JoinBootstrapFile), b, 0o600)
}

// nodeKubeconfig is a kubeconfig for the node's identity: the kubelet's
// rotated client certificate (certificate and key in one file).
func nodeKubeconfig(j *JoinConfig) ([]byte, error) {
	return clientcmd.Write(clientcmdapi.Config{
		Clusters:       map[string]*clientcmdapi.Cluster{"unetes": {Server: j.Server, CertificateAuthority: filepath.Join(j.Dir, JoinCAFile)}},
		AuthInfos:      map[string]*clientcmdapi.AuthInfo{"node": {ClientCertificate: joinedKubeletClientPEM, ClientKey: joinedKubeletClientPEM}},
		Contexts:       map[string]*clientcmdapi.Context{"unetes": {Cluster: "unetes", AuthInfo: "node"}},
		CurrentContext: "unetes",
	})
}

// StartJoinedNode starts the kubelet of a joined node (TLS bootstrap), waits
// for its Node and pod range, then writes the pod network and starts
// kube-proxy as the node.
func (cp *ControlPlane) StartJoinedNode(ctx context.Context, self string) error {
	t := time.Now()
	nc := cp.node
	if err := setupKlog(cp.cfg.LogDir()); err != nil {
		return fmt.Errorf("set up component logs: %w", err)
	}
	if err := mountKubeletRoot(filepath.Join(nc.DataDir, "kubelet")); err != nil {
		return err
	}
	if err := addLocalAddress(ctx, nc.NodeIP.String()); err != nil {
		return err
	}
	confPath := filepath.Join(nc.StateDir, "kubelet.yaml")
	if err := os.WriteFile(confPath, []byte(kubeletConfig(nc)), 0o600); err != nil {
		return fmt.Errorf("kubelet config: %w", err)
	}
	flags := kubeletFlags(nc, confPath, joinedKubeletConfig)
	flags["bootstrap-kubeconfig"] = filepath.Join(nc.Join.Dir, JoinBootstrapFile)
	cp.set(Kubelet, "starting", nil)
	var err error
	if cp.kubelet, err = startChild(self, "_kubelet", FlagList(flags, nil), filepath.Join(cp.cfg.LogDir(), "kubelet.log")); err != nil {
		cp.set(Kubelet, "failed", err)
		return err
	}
	cp.superviseKubelet()
	kubeletLog := filepath.Join(cp.cfg.LogDir(), "kubelet.log")
	kc, err := nodeKubeconfig(nc.Join)
	if err != nil {
		return err
	}
	pkc := filepath.Join(nc.StateDir, "kube-proxy.kubeconfig")
	if err := os.WriteFile(pkc, kc, 0o600); err != nil {
		return fmt.Errorf("kube-proxy kubeconfig: %w", err)
	}
	// The kubelet's client certificate is there once the server has
	// signed it (at once: the join add-on approves); then its Node, and the
	// controller-manager gives it a pod range.
	var client kubernetes.Interface
	if err := cp.waitFor(ctx, "the node's client certificate (TLS bootstrap; see "+kubeletLog+")", func() error {
		if _, err := os.Stat(joinedKubeletClientPEM); err != nil {
			return err
		}
		rc, err := clientcmd.RESTConfigFromKubeConfig(kc)
		if err != nil {
			return err
		}
		client, err = kubernetes.NewForConfig(rc)
		return err
	}); err != nil {
		return err
	}
	var podCIDR string
	if err := cp.waitFor(ctx, "node "+nc.NodeName+"'s pod range (spec.podCIDR)", func() error {
		n, err := client.CoreV1().Nodes().Get(ctx, nc.NodeName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if podCIDR = n.Spec.PodCIDR; podCIDR == "" {
			return errors.New("no pod range yet")
		}
		return nil
	}); err != nil {
		return err
	}
	cp.node.NodePodCIDR = podCIDR
	if err := writePodNetwork(ctx, cp.node); err != nil {
		return err
	}
	pconf := filepath.Join(nc.StateDir, "kube-proxy.yaml")
	if err := os.WriteFile(pconf, []byte(kubeProxyConfig(nc, pkc)), 0o600); err != nil {
		return fmt.Errorf("kube-proxy config: %w", err)
	}
	proxy := cp.run(KubeProxy, func(ctx context.Context, args []string) error { return runKubeProxy(ctx, args) }, []string{"--config=" + pconf})
	if err := cp.nodeStarted(ctx, proxy, &nodeClient{c: client, name: nc.NodeName}, "kubelet and kube-proxy (joined)", t); err != nil {
		return err
	}
	cp.startOverlay(pkc)
	return nil
}

// waitFor polls check every 100 ms until it passes, the kubelet exits or
// ctx ends; what names the wait in errors.
func (cp *ControlPlane) waitFor(ctx context.Context, what string, check func() error) error {
	for {
		err := check()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w (last: %v)", what, ctx.Err(), err)
		case <-cp.kubelet.done:
			return fmt.Errorf("the kubelet exited while waiting for %s: %v (see %s)", what, cp.kubelet.err, cp.kubelet.logPath)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// addLocalAddress puts ip (the host's address, the node's) on the
// namespace's loopback: the kubelet only takes a node IP that is one of its
// host's, and connections to the node's own address stay in the node.
func addLocalAddress(ctx context.Context, ip string) error {
	out, err := exec.CommandContext(ctx, "ip", "addr", "replace", ip+"/32", "dev", "lo").CombinedOutput()
	if err != nil {
		return fmt.Errorf("add the node's address %s to the namespace's loopback: %w: %s", ip, err, strings.TrimSpace(string(out)))
	}
	return nil
}
