package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/unetes/unetes/testing/internal/hostnet"
	"github.com/unetes/unetes/testing/internal/syncbuf"
	"github.com/unetes/unetes/testing/internal/testimage"
)

// nodesTable measures a cluster of two hosts (hostnet: a network
// namespace each, 192.168.77.0/24 over veth): `unetes join` until the node
// says it joined and until its Node is Ready on the server, the memory of
// the node-only instance, and TCP throughput pod to pod within the server
// and across the nodes both ways (the overlay: VXLAN through each host's
// NAT and port forwarder).
func (b *bench) nodesTable() {
	fmt.Printf("\nNodes: a server and a node joined to it, each on its own \"host\" (network namespace, veth, 192.168.77.0/24), same run\n\n")
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	defer w.Flush()
	fmt.Fprintln(w, "figure\tunetes\ttarget\treference")
	fail := func(what string, err error) { fmt.Fprintf(w, "%s\tfailed: %v\t\t\n", what, err) }
	hn, err := hostnet.New(fmt.Sprintf("u7sb%d", os.Getpid()%10000), 2)
	if err != nil {
		fail("hosts", err)
		return
	}
	defer hn.Close()
	stamp := time.Now().UnixNano() % 100000
	srv, node := fmt.Sprintf("nbsrv-%d", stamp), fmt.Sprintf("nbnode-%d", stamp)
	bin := b.home + "/unetes"
	on := func(host int, args ...string) *exec.Cmd {
		cmd := hostnet.Command(hn.Hosts[host], b.uid, b.gid, bin, args...)
		cmd.Env = []string{"HOME=" + b.home, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C"}
		cmd.Dir = b.home
		return cmd
	}
	defer func() {
		for _, s := range []struct {
			host int
			name string
		}{{1, node}, {0, srv}} {
			on(s.host, "stop", "--name", s.name).Run()
			on(s.host, "reset", "--force", "--name", s.name).Run()
		}
	}()
	if _, err := startUntil(on(0, "run", "--name", srv, "--api-address", hn.Addrs[0], "--disable", "storage,metrics,lb,docker"), "ready in"); err != nil {
		fail("server", err)
		return
	}
	out, err := on(0, "token", "--name", srv).Output()
	if err != nil {
		fail("unetes token", err)
		return
	}
	token, hash := field(string(out), "token"), field(string(out), "ca-cert-hash")
	joinArgs := []string{"join", hn.Addrs[0] + ":6443", "--token", token, "--ca-cert-hash", hash, "--name", node, "--node-name", "unetes-" + node, "--disable", "docker"}
	// The bootstrap signer signs cluster-info a moment after the start;
	// until then a join is refused, with nothing written.
	var joined, ready time.Duration
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(time.Second) {
		start := time.Now()
		joined, err = startUntil(on(1, joinArgs...), "joined the cluster")
		if err == nil || !strings.Contains(err.Error(), "not signed") || time.Now().After(deadline) {
			if err == nil {
				kc := on(0, "kubectl", "--name", srv, "wait", "--for=condition=Ready", "node/unetes-"+node, "--timeout=120s")
				if out, werr := kc.CombinedOutput(); werr != nil {
					err = fmt.Errorf("node not Ready: %v: %s", werr, out)
				}
				ready = time.Since(start)
			}
			break
		}
	}
	if err != nil {
		fail("join", err)
		return
	}
	fmt.Fprintf(w, "join -> \"joined\" (kubelet TLS bootstrap, kube-proxy, overlay)\t%.2f s\t\tkubeadm join: tens of seconds (rootful)\n", joined.Seconds())
	fmt.Fprintf(w, "join -> Node Ready on the server\t%.2f s\t\t\n", ready.Seconds())
	mem := instanceMemory(node)
	fmt.Fprintf(w, "node-only instance idle, all %d processes, RSS (PSS)\t%s\t\tk3s agent: ~200-300 MB\n", mem.n, mem.total())
	for _, role := range mem.roles {
		fmt.Fprintf(w, "  %s\t%.0f MB (%.0f MB)\t\t\n", role, mem.byRole[role][0], mem.byRole[role][1])
	}
	for _, r := range b.podThroughput(hn, on, srv, node) {
		fmt.Fprintf(w, "%s\t%s\t\t\n", r[0], r[1])
	}
}

// podThroughput runs a sink and a client pod on each node and blasts TCP
// from client to sink (nettool, median of -runs runs of -t seconds).
func (b *bench) podThroughput(hn *hostnet.Net, on func(int, ...string) *exec.Cmd, srv, node string) [][2]string {
	tool, err := b.nettool()
	if err != nil {
		return [][2]string{{"pod to pod", "failed: " + err.Error()}}
	}
	img, err := testimage.New(testimage.File{Path: "bin/nettool", Data: tool})
	if err == nil {
		var tarball []byte
		if tarball, err = img.DockerSave("localhost/busybox:bench"); err == nil {
			err = os.WriteFile(filepath.Join(b.home, "busybox-nodes.tar"), tarball, 0o644)
		}
	}
	for i, name := range []string{srv, node} {
		if err != nil {
			break
		}
		if out, lerr := on(i, "image", "load", "--name", name, filepath.Join(b.home, "busybox-nodes.tar")).CombinedOutput(); lerr != nil {
			err = fmt.Errorf("image load on %s: %v: %s", name, lerr, out)
		}
	}
	if err != nil {
		return [][2]string{{"pod to pod", "failed: " + err.Error()}}
	}
	kubectl := func(stdin string, args ...string) (string, error) {
		cmd := on(0, append([]string{"kubectl", "--name", srv}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("kubectl %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out)), nil
	}
	var manifest strings.Builder
	for _, p := range []struct{ name, node, cmd string }{
		{"sink-srv", "unetes-" + srv, `["nettool", "sink", ":5000"]`}, {"client-srv", "unetes-" + srv, `["sleep", "3600"]`},
		{"sink-node", "unetes-" + node, `["nettool", "sink", ":5000"]`}, {"client-node", "unetes-" + node, `["sleep", "3600"]`},
	} {
		fmt.Fprintf(&manifest, "---\n{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":%q},\"spec\":{\"nodeName\":%q,\"containers\":[{\"name\":\"c\",\"image\":\"localhost/busybox:bench\",\"imagePullPolicy\":\"Never\",\"command\":%s}]}}\n", p.name, p.node, p.cmd)
	}
	if _, err := kubectl(manifest.String(), "apply", "-f", "-"); err != nil {
		return [][2]string{{"pod to pod", "failed: " + err.Error()}}
	}
	if _, err := kubectl("", "wait", "--for=condition=Ready", "pod/sink-srv", "pod/client-srv", "pod/sink-node", "pod/client-node", "--timeout=120s"); err != nil {
		return [][2]string{{"pod to pod", "failed: " + err.Error()}}
	}
	var rows [][2]string
	for _, c := range []struct{ what, from, to string }{
		{"pod to pod TCP, within the server node", "client-srv", "sink-srv"},
		{"pod to pod TCP, across: node -> server (overlay)", "client-node", "sink-srv"},
		{"pod to pod TCP, across: server -> node (overlay)", "client-srv", "sink-node"},
	} {
		ip, err := kubectl("", "get", "pod", c.to, "-o", "jsonpath={.status.podIP}")
		var xs []float64
		for i := 0; err == nil && i < *flagRuns; i++ {
			var out string
			if out, err = kubectl("", "exec", c.from, "--", "nettool", "blast", ip+":5000", strconv.Itoa(*flagDuration)); err == nil {
				var g float64
				if _, err = fmt.Sscanf(field(out, "gbps"), "%g", &g); err == nil {
					xs = append(xs, g)
				}
			}
		}
		if err != nil {
			rows = append(rows, [2]string{c.what, "failed: " + err.Error()})
			continue
		}
		rows = append(rows, [2]string{fmt.Sprintf("%s (median of %d, %d s)", c.what, *flagRuns, *flagDuration), fmt.Sprintf("%.2f Gbit/s", median(xs))})
	}
	return rows
}

// startUntil starts cmd (which keeps running) and returns how long until
// its output said want; an error if it exits or 3 minutes pass first.
func startUntil(cmd *exec.Cmd, want string) (time.Duration, error) {
	out := &syncbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for time.Since(start) < 3*time.Minute {
		if strings.Contains(out.String(), want) {
			return time.Since(start), nil
		}
		select {
		case err := <-done:
			return 0, fmt.Errorf("exited (%v): %s", err, strings.TrimSpace(out.String()))
		case <-time.After(10 * time.Millisecond):
		}
	}
	return 0, fmt.Errorf("%q not said in 3 minutes: %s", want, lastLine([]byte(out.String())))
}

// field is the value of "key: value" or "key value" in out.
func field(out, key string) string {
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), " "); ok && strings.TrimSuffix(k, ":") == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
