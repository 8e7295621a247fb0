package embed

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"
)

func testNodeConfig(enforced bool) NodeConfig {
	nc := NodeConfig{Config: testConfig(), LimitsEnforced: enforced, ProxyMode: "iptables", ContainerdSock: "/state/containerd.sock"}
	if !enforced {
		nc.ClusterDNS = "10.96.0.10"
	}
	if enforced {
		nc.CgroupRoot = "/user.slice/user-1000.slice/user@1000.service/app.slice/unetes.scope"
	}
	return nc
}

func lines(s string) []string { return strings.Split(strings.TrimSuffix(s, "\n"), "\n") }

func TestNodeConfigGoldens(t *testing.T) {
	golden(t, "kubelet-no-limits", lines(kubeletConfig(testNodeConfig(false))))
	golden(t, "kubelet-limits", lines(kubeletConfig(testNodeConfig(true))))
	golden(t, "kubelet-flags", FlagList(kubeletFlags(testNodeConfig(false), "/state/kubelet.yaml", "/state/kubelet.kubeconfig"), nil))
	golden(t, "kube-proxy", lines(kubeProxyConfig(testNodeConfig(false), "/state/kube-proxy.kubeconfig")))
	joined := testNodeConfig(false)
	joined.Join, joined.NodePodCIDR = &JoinConfig{Server: "https://192.168.77.1:6443", Dir: "/data/join"}, "10.88.1.0/24"
	golden(t, "kubelet-joined", lines(kubeletConfig(joined)))
	if cni, err := cniConfig(joined); err != nil || !strings.Contains(cni, `"subnet": "10.88.1.0/24"`) {
		t.Fatalf("a joined node's CNI network must take its own pod range: %v\n%s", err, cni)
	}
	cni, err := cniConfig(testNodeConfig(false))
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "cni", lines(cni))
	tuned := testNodeConfig(false)
	tuned.PodTCPCongestion = "reno"
	if cni, err = cniConfig(tuned); err != nil {
		t.Fatal(err)
	}
	golden(t, "cni-tuning", lines(cni))
	overlay := testNodeConfig(false)
	overlay.PodMTU = 65470
	if cni, err = cniConfig(overlay); err != nil || !strings.Contains(cni, `"mtu": 65470`) {
		t.Fatalf("with the overlay the pods' MTU must be the VXLAN device's: %v\n%s", err, cni)
	}
	golden(t, "containerd", lines(containerdTOML(ContainerdConfig{
		Root: "/data/containerd", State: "/run/containerd", Address: "/state/containerd.sock", Snapshotter: "overlayfs",
		ShimPath: "/data/bin/0123/containerd-shim-runc-v2", RuncPath: "/state/bin/runc", CNIBinDir: "/data/bin/0123", CNIConfDir: "/state/cni/net.d", PauseImage: PauseImage,
		RegistryDir: "/data/certs.d",
	})))
}

func TestLimitsOnlyWhenEnforced(t *testing.T) {
	if strings.Contains(kubeletConfig(testNodeConfig(true)), "cgroupsPerQOS: false") {
		t.Fatal("delegated cgroups must keep QoS cgroups")
	}
	if !strings.Contains(kubeletConfig(testNodeConfig(false)), "enforceNodeAllocatable: []") {
		t.Fatal("without delegation nothing may be enforced")
	}
}

func TestPodCIDR(t *testing.T) {
	c := testConfig()
	if got, err := c.PodCIDR(); err != nil || got != "10.88.0.0/24" {
		t.Fatalf("got %q %v", got, err)
	}
	c.ClusterCIDR = "10.88.0.0/28"
	if _, err := c.PodCIDR(); err == nil {
		t.Fatal("a cluster range smaller than /24 must be refused")
	}
}

func TestOCIImageIsDeterministicAndComplete(t *testing.T) {
	a, err := ociImage("localhost/x:1", map[string][]byte{"pause": []byte("binary")}, []string{"/pause"})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := ociImage("localhost/x:1", map[string][]byte{"pause": []byte("binary")}, []string{"/pause"})
	if !bytes.Equal(a, b) {
		t.Fatal("the same input packed twice differs")
	}
	names := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(a))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names[h.Name], _ = io.ReadAll(tr)
	}
	if _, ok := names["oci-layout"]; !ok || len(names) != 5 { // layout, index, manifest, config, layer
		t.Fatalf("archive entries: %v", len(names))
	}
	var idx struct {
		Manifests []struct {
			Digest      string            `json:"digest"`
			Annotations map[string]string `json:"annotations"`
		} `json:"manifests"`
	}
	if err := json.Unmarshal(names["index.json"], &idx); err != nil || len(idx.Manifests) != 1 {
		t.Fatalf("index: %v %s", err, names["index.json"])
	}
	if idx.Manifests[0].Annotations["io.containerd.image.name"] != "localhost/x:1" {
		t.Fatalf("index names %v", idx.Manifests[0].Annotations)
	}
	if _, ok := names["blobs/sha256/"+strings.TrimPrefix(idx.Manifests[0].Digest, "sha256:")]; !ok {
		t.Fatal("the manifest blob is missing")
	}
}
