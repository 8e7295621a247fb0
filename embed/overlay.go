package embed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/flannel-io/flannel/pkg/backend"
	"github.com/flannel-io/flannel/pkg/backend/vxlan"
	"github.com/flannel-io/flannel/pkg/subnet/kube"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// The overlay joins the nodes' pod ranges into the cluster range: flannel's
// VXLAN backend and its Kubernetes subnet manager, as a library (each
// Node's spec.podCIDR is its subnet; the Node's flannel annotations carry
// its VTEP: MAC and public IP). The public IP, the VXLAN underlay's, is the
// host's address, which is on the namespace's loopback: encapsulated
// packets leave through the NAT like any UDP from the namespace, and each
// host forwards OverlayPort/udp into its namespace, where the kernel's
// VXLAN socket takes them (Usernetes Gen2 does the same with RootlessKit's
// port driver). The server runs it when its API is published beyond
// loopback (--api-address), every joined node always.

// Overlay is the overlay's component name, as `unetes status` and `unetes
// logs` show it.
const Overlay = "overlay"

// OverlayPort is the VXLAN port (Linux's and flannel's default), which
// each host forwards into its namespace.
const OverlayPort = 8472

const (
	overlayVNI         = 1
	flannelAnnotations = "flannel.alpha.coreos.com"
)

// VXLANOverhead is what VXLAN adds to each packet: the outer IPv4, UDP and
// VXLAN headers and the inner Ethernet one.
const VXLANOverhead = 50

// OverlayConfig is where the overlay's packets go out.
type OverlayConfig struct {
	HostAddr net.IP // the host's address: the node's VTEP, put on the namespace's loopback
	Link     string // the namespace's interface to the NAT, which the underlay leaves by
}

// overlayNetConf is flannel's net-conf.json for the cluster range, with a
// VXLAN device that fits in linkMTU once encapsulated. Pure.
func overlayNetConf(clusterCIDR string, linkMTU int) (string, error) {
	if _, n, err := net.ParseCIDR(clusterCIDR); err != nil || n.IP.To4() == nil {
		return "", fmt.Errorf("cluster CIDR %q is not an IPv4 prefix", clusterCIDR)
	}
	if linkMTU <= VXLANOverhead+576 {
		return "", fmt.Errorf("MTU %d is too small for VXLAN (%d bytes of headers)", linkMTU, VXLANOverhead)
	}
	b, err := json.Marshal(map[string]any{
		"Network": clusterCIDR,
		"Backend": map[string]any{"Type": "vxlan", "VNI": overlayVNI, "Port": OverlayPort, "MTU": linkMTU - VXLANOverhead},
	})
	return string(b) + "\n", err
}

// runOverlay waits for the node's pod range, then runs flannel's VXLAN
// network as the node (kubeconfig) until ctx ends; ready is called once
// the node's lease (its VTEP annotations) is on its Node.
func runOverlay(ctx context.Context, nc NodeConfig, kubeconfig string, ready func()) error {
	oc := nc.Overlay
	if err := waitPodCIDR(ctx, kubeconfig, nc.NodeName); err != nil {
		return err
	}
	if err := addLocalAddress(ctx, oc.HostAddr.String()); err != nil {
		return err
	}
	link, err := net.InterfaceByName(oc.Link)
	if err != nil {
		return fmt.Errorf("the namespace's interface %s: %w", oc.Link, err)
	}
	conf, err := overlayNetConf(nc.ClusterCIDR, link.MTU)
	if err != nil {
		return err
	}
	confPath := filepath.Join(nc.StateDir, "flannel-net-conf.json")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		return fmt.Errorf("flannel's net-conf.json: %w", err)
	}
	// flannel's subnet manager finds its node in NODE_NAME; this process
	// is one node.
	if err := os.Setenv("NODE_NAME", nc.NodeName); err != nil {
		return err
	}
	sm, err := kube.NewSubnetManager(ctx, "", kubeconfig, flannelAnnotations, confPath, false)
	if err != nil {
		return fmt.Errorf("flannel subnet manager: %w", err)
	}
	config, err := sm.GetNetworkConfig(ctx)
	if err != nil {
		return fmt.Errorf("flannel network config: %w", err)
	}
	be, err := vxlan.New(sm, &backend.ExternalInterface{Iface: link, IfaceName: link.Name, IfaceAddr: nc.NodeIP, ExtAddr: oc.HostAddr})
	if err != nil {
		return fmt.Errorf("flannel VXLAN backend: %w", err)
	}
	var wg sync.WaitGroup
	bn, err := be.RegisterNetwork(ctx, &wg, config)
	if err != nil {
		return fmt.Errorf("flannel VXLAN network (device flannel.%d, VTEP %s): %w", overlayVNI, oc.HostAddr, err)
	}
	ready()
	bn.Run(ctx)
	wg.Wait()
	return nil
}

// startOverlay runs the overlay, when the node has one, as the component
// Overlay with the node's identity (kubeconfig).
func (cp *ControlPlane) startOverlay(kubeconfig string) {
	if cp.node.Overlay == nil {
		return
	}
	nc := cp.node
	cp.run(Overlay, func(ctx context.Context, _ []string) error {
		return runOverlay(ctx, nc, kubeconfig, func() { cp.set(Overlay, "ready", nil) })
	}, nil)
}

// waitPodCIDR waits until the controller-manager has given node its pod
// range, which flannel takes as the node's subnet.
func waitPodCIDR(ctx context.Context, kubeconfig, node string) error {
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	c, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return err
	}
	for {
		n, err := c.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
		if err == nil && n.Spec.PodCIDR != "" {
			return nil
		}
		if err == nil {
			err = errors.New("no pod range yet")
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for node %s's pod range: %w (last: %v)", node, ctx.Err(), err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// podBridge makes the pods' bridge with its gateway address now, before
// the first pod (the bridge plugin makes it then, and takes it as it
// is): the apiserver and cluster DNS serve the other nodes' pods there
// (Config.OverlayIP) from the start.
func podBridge(ctx context.Context, podCIDR string) error {
	gw, err := PodGateway(podCIDR)
	if err != nil {
		return err
	}
	_, n, _ := net.ParseCIDR(podCIDR)
	ones, _ := n.Mask.Size()
	for _, args := range [][]string{
		{"link", "add", podBridgeName, "type", "bridge"},
		{"addr", "replace", fmt.Sprintf("%s/%d", gw, ones), "dev", podBridgeName},
		{"link", "set", podBridgeName, "up"},
	} {
		out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
		if err != nil && !(args[1] == "add" && strings.Contains(string(out), "File exists")) {
			return fmt.Errorf("the pods' bridge %s with the gateway %s: ip %s: %w: %s", podBridgeName, gw, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}
