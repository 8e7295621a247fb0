package e2e

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestJoinNode: a second "host" joins the first one's cluster with
// `unetes join`, each instance in its own network namespace with its own
// address (hostNet), as the test user. Wrong token, wrong pin, an
// unreachable server and the name of a Ready node are refused, with
// nothing written on either side. The joined node registers through TLS
// bootstrap with its host's address and a pod range of its own; a pod on it
// runs, and the server's kubectl reads its logs and execs in it (the
// apiserver dials the node's forwarded kubelet port and checks its serving
// certificate, which the join add-on approved, against the cluster CA).
// The overlay (flannel VXLAN through each host's forwarded port 8472/udp)
// carries pod to pod traffic across the nodes both ways, and a Service
// whose pod is on the other node; `unetes run` printed the join command
// only once cluster-info was signed. Stopped, the node goes NotReady on the
// server; `unetes join --name N` brings it back as the same node, its pod
// runs again and the overlay carries traffic again. A Deployment's pod
// that was on the node is rescheduled on the server meanwhile.
func TestJoinNode(t *testing.T) {
	hn := newHostNet(t, 2)
	u := asUser(t, *flagTestUser)
	su, nu := hn.on(u, 0), hn.on(u, 1)
	srvName, nodeName := newName(), newName()
	srv := launch(t, su, srvName, []string{"--api-address", hn.Addrs[0], "--disable", "storage,metrics,lb,docker"})
	ti := joinToken(t, su, srvName)
	endpoint := hn.Addrs[0] + ":6443"
	if ti.api != endpoint {
		t.Fatalf("token names the API %q, want %s", ti.api, endpoint)
	}
	node := "unetes-" + nodeName
	joinArgs := func(ep, token, hash, nodeFlag string) []string {
		return []string{"join", ep, "--token", token, "--ca-cert-hash", hash, "--name", nodeName, "--node-name", nodeFlag, "--disable", "docker"}
	}
	joinDir := filepath.Join(u.home, ".local", "share", "unetes", nodeName, "join")
	refused := func(what, want string, args []string) {
		t.Helper()
		_, errOut, code := nu.unetes(t, "", args...)
		if code == 0 || !strings.Contains(errOut, want) {
			t.Fatalf("%s: exit %d, stderr %q (want it to say %q)", what, code, errOut, want)
		}
		if _, err := os.Stat(joinDir); !os.IsNotExist(err) {
			t.Fatalf("%s: %s was written (%v)", what, joinDir, err)
		}
	}
	// run prints the join command, and `unetes token` reprints it.
	command := "unetes join " + endpoint + " --token " + ti.token + " --ca-cert-hash " + ti.hash
	if !strings.Contains(srv.out.String(), "nodes on other hosts join with\n  "+command+"\n") || ti.join != command {
		t.Fatalf("the join command: run printed\n%s\ntoken printed %q; want %q", srv.out.String(), ti.join, command)
	}
	wrongHash := "sha256:" + strings.Repeat("0", 64)
	// Ready means cluster-info is signed (the pin is checked only then).
	refused("wrong pin", "refusing to trust it", joinArgs(endpoint, ti.token, wrongHash, node))
	refused("wrong token", "not signed with this token", joinArgs(endpoint, "abcdef.0123456789abcdef", ti.hash, node))
	refused("unreachable server", "cannot reach the cluster's API", joinArgs("192.168.77.99:6443", ti.token, ti.hash, node))
	refused("a Ready node's name", "is in the cluster and Ready", joinArgs(endpoint, ti.token, ti.hash, "unetes-"+srvName))
	refused("no cluster given", "has joined no cluster", []string{"join", "--name", nodeName})
	if out := srv.mustKubectl("get", "nodes,csr", "-o", "name"); strings.TrimSpace(out) != "node/unetes-"+srvName {
		t.Fatalf("the refused joins left objects on the server:\n%s", out)
	}

	joined := start(t, nu, nodeName, joinArgs(endpoint, ti.token, ti.hash, node), nil)
	if _, err := os.Stat(filepath.Join(joinDir, "node.json")); err != nil {
		t.Fatalf("the join is not saved where the refusals were checked to write nothing: %v", err)
	}
	if !strings.Contains(joined.out.String(), "node "+node+" joined the cluster at https://"+endpoint) {
		t.Fatalf("join did not say it joined:\n%s", joined.out.String())
	}
	if _, errOut, code := nu.unetes(t, "", "run", "--name", nodeName); code == 0 || !strings.Contains(errOut, "unetes join --name "+nodeName) {
		t.Fatalf("run of a joined instance: exit %d, %q", code, errOut)
	}
	srv.mustKubectl("wait", "--for=condition=Ready", "node/"+node, "--timeout=120s")
	jp := func(obj, path string) string {
		t.Helper()
		return strings.TrimSpace(srv.mustKubectl("get", obj, "-o", "jsonpath="+path))
	}
	if ip := jp("node/"+node, `{.status.addresses[?(@.type=="InternalIP")].address}`); ip != hn.Addrs[1] {
		t.Fatalf("node %s has InternalIP %q, want its host's %s", node, ip, hn.Addrs[1])
	}
	podCIDR := jp("node/"+node, "{.spec.podCIDR}")
	if srvCIDR := jp("node/unetes-"+srvName, "{.spec.podCIDR}"); podCIDR == "" || podCIDR == srvCIDR {
		t.Fatalf("pod ranges: joined node %q, server %q: want two different ones", podCIDR, srvCIDR)
	}
	if out, _, _ := nu.unetes(t, "", "status", "--name", nodeName); !strings.Contains(out, "node "+node+" (at "+hn.Addrs[1]+") of the cluster at https://"+endpoint) {
		t.Fatalf("status of the joined node:\n%s", out)
	}
	if out, _, _ := su.unetes(t, "", "status", "--name", srvName); !strings.Contains(out, node) {
		t.Fatalf("the server's status does not list %s:\n%s", node, out)
	}

	tarball := dockerSaveImage(t, testImage)
	if out, errOut, code := nu.unetes(t, "", "image", "load", "--name", nodeName, tarball); code != 0 || !strings.Contains(out, "loaded "+testImage) {
		t.Fatalf("image load on the node: code %d out %q err %q", code, out, errOut)
	}
	if out, errOut, code := su.unetes(t, "", "image", "load", "--name", srvName, tarball); code != 0 || !strings.Contains(out, "loaded "+testImage) {
		t.Fatalf("image load on the server: code %d out %q err %q", code, out, errOut)
	}
	// A web pod on each node answering with its name, and a Service for
	// the server's.
	pod := func(name, on string) string {
		return `apiVersion: v1
kind: Pod
metadata:
  name: ` + name + `
  labels: {app: ` + name + `}
spec:
  nodeName: ` + on + `
  containers:
  - name: c
    image: ` + testImage + `
    imagePullPolicy: Never
    command: ["sh", "-c", "echo started-on-$(hostname); mkdir -p /tmp/www && echo hello-from-$(hostname) > /tmp/www/index.html && exec httpd -f -p 80 -h /tmp/www"]
---
`
	}
	svc := `apiVersion: v1
kind: Service
metadata:
  name: on-server
spec:
  selector: {app: on-server}
  ports: [{port: 8080, targetPort: 80}]
`
	// A Deployment's pod that prefers the node and tolerates its loss for
	// 5 s (upstream's default is 300 s): it moves to the server when the
	// node goes.
	moves := `apiVersion: apps/v1
kind: Deployment
metadata:
  name: moves
spec:
  replicas: 1
  selector: {matchLabels: {app: moves}}
  template:
    metadata: {labels: {app: moves}}
    spec:
      affinity:
        nodeAffinity:
          preferredDuringSchedulingIgnoredDuringExecution:
          - weight: 100
            preference: {matchFields: [{key: metadata.name, operator: In, values: [` + node + `]}]}
      tolerations:
      - {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: 5}
      - {key: node.kubernetes.io/not-ready, operator: Exists, effect: NoExecute, tolerationSeconds: 5}
      terminationGracePeriodSeconds: 1
      containers: [{name: c, image: ` + testImage + `, imagePullPolicy: Never, command: ["sleep", "3600"]}]
---
`
	if _, errOut, code := srv.apply(moves + pod("on-node", node) + pod("on-server", "unetes-"+srvName) + svc); code != 0 {
		t.Fatalf("apply: %s", errOut)
	}
	srv.mustKubectl("wait", "--for=condition=Ready", "pod/on-node", "pod/on-server", "--timeout=120s")
	srv.mustKubectl("wait", "--for=condition=Available", "deployment/moves", "--timeout=120s")
	if on := strings.TrimSpace(srv.mustKubectl("get", "pods", "-l", "app=moves", "-o", "jsonpath={.items[*].spec.nodeName}")); on != node {
		t.Fatalf("the Deployment's pod runs on %q, want the node %s it prefers", on, node)
	}
	ip, err := netip.ParseAddr(jp("pod/on-node", "{.status.podIP}"))
	if prefix, perr := netip.ParsePrefix(podCIDR); err != nil || perr != nil || !prefix.Contains(ip) {
		t.Fatalf("pod IP %v (%v) is not in the node's range %s", ip, err, podCIDR)
	}
	if out := srv.mustKubectl("logs", "on-node"); !strings.Contains(out, "started-on-on-node") {
		t.Fatalf("kubectl logs of the pod on the joined node: %q", out)
	}
	if out := srv.mustKubectl("exec", "on-node", "--", "cat", "/etc/hostname"); strings.TrimSpace(out) != "on-node" {
		t.Fatalf("kubectl exec in the pod on the joined node: %q", out)
	}
	// The overlay: pod to pod across the nodes both ways, and a Service
	// whose pod is on the other node.
	crossNode := func(when string) {
		t.Helper()
		srvIP, nodeIP := jp("pod/on-server", "{.status.podIP}"), jp("pod/on-node", "{.status.podIP}")
		clusterIP := jp("service/on-server", "{.spec.clusterIP}")
		for _, c := range []struct{ from, url, want string }{
			{"on-node", "http://" + srvIP + "/", "hello-from-on-server"},
			{"on-server", "http://" + nodeIP + "/", "hello-from-on-node"},
			{"on-node", "http://" + clusterIP + ":8080/", "hello-from-on-server"},
			{"on-node", "http://on-server.default.svc.cluster.local:8080/", "hello-from-on-server"}, // cluster DNS, on the server
		} {
			for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Second) {
				out, errOut, _ := srv.kubectl("exec", c.from, "--", "busybox", "timeout", "5", "wget", "-q", "-O", "-", c.url)
				if strings.TrimSpace(out) == c.want {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s: %s fetching %s across the overlay: %q, want %q", when, c.from, c.url, strings.TrimSpace(out+errOut), c.want)
				}
			}
		}
	}
	crossNode("joined")
	// The kubernetes Service leads to the server's apiserver from the
	// node's pods too (its endpoint is the server's pod gateway, not the
	// namespace address every node has).
	if ep := jp("endpointslice/kubernetes", "{.endpoints[0].addresses[0]}"); ep == "10.0.2.100" {
		t.Fatalf("the kubernetes Service's endpoint is %s, the node itself on every node", ep)
	}
	if out, errOut, code := srv.kubectl("exec", "on-node", "--", "busybox", "timeout", "10", "busybox", "nc", "-w", "5", "10.96.0.1", "443", "-e", "true"); code != 0 {
		t.Fatalf("the kubernetes Service from the joined node's pod: exit %d: %s %s", code, out, errOut)
	}

	// The node goes, the server notices; it comes back as the same node.
	joined.stop()
	waitFor(t, 3*time.Minute, "node "+node+" NotReady on the server", func() bool {
		return jp("node/"+node, `{.status.conditions[?(@.type=="Ready")].status}`) != "True"
	})
	waitFor(t, 2*time.Minute, "the Deployment's pod rescheduled on the server", func() bool {
		return strings.Contains(srv.mustKubectl("get", "pods", "-l", "app=moves", "--field-selector", "status.phase=Running,spec.nodeName=unetes-"+srvName, "-o", "name"), "pod/")
	})
	again := start(t, nu, nodeName, []string{"join", "--name", nodeName, "--disable", "docker"}, nil)
	if !strings.Contains(again.out.String(), "joins https://"+endpoint+" again as node "+node) {
		t.Fatalf("rejoin did not say so:\n%s", again.out.String())
	}
	srv.mustKubectl("wait", "--for=condition=Ready", "node/"+node, "--timeout=120s")
	srv.mustKubectl("wait", "--for=condition=Ready", "pod/on-node", "--timeout=180s")
	crossNode("rejoined")
	if out := srv.mustKubectl("get", "nodes", "-o", "name"); strings.Count(out, "node/") != 2 {
		t.Fatalf("after the rejoin the cluster has nodes:\n%s", out)
	}
}
