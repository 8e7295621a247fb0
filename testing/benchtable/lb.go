package main

import (
	"bufio"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// lbServices are two LoadBalancer Services without selectors whose
// endpoint is the node's own address, where servers started with `unetes
// exec` listen (the bench image has no iperf3): a greeter (first byte) and
// iperf3 (throughput). The path is the one every LoadBalancer port takes:
// host listener, fd passing, a dial to the cluster IP, kube-proxy's DNAT.
func lbServices(greetPort, iperfPort int) string {
	var b strings.Builder
	for _, s := range []struct {
		name       string
		port, into int
	}{{"bench-greet", greetPort, 5202}, {"bench-iperf", iperfPort, 5201}} {
		fmt.Fprintf(&b, `---
apiVersion: v1
kind: Service
metadata: {name: %[1]s}
spec:
  type: LoadBalancer
  ports: [{port: %[2]d, targetPort: %[3]d}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: %[1]s, labels: {kubernetes.io/service-name: %[1]s}}
addressType: IPv4
ports: [{port: %[3]d, protocol: TCP}]
endpoints: [{addresses: [10.0.2.100]}]
`, s.name, s.port, s.into)
	}
	return b.String()
}

// lbRows measures LoadBalancer Services in the running instance inst:
// seconds from `kubectl apply` to the first byte served on the host, and
// throughput through a LoadBalancer port next to `unetes forward` to the
// same server and to host loopback.
func (b *bench) lbRows(bin, inst string) (firstByte string, rows []result) {
	exe := func(argv ...string) *exec.Cmd {
		return b.asUser(exec.Command(bin, append([]string{"exec", "--name", inst, "--"}, argv...)...))
	}
	for _, argv := range [][]string{{"iperf3", "-s", "-p", "5201"}, {filepath.Join(b.home, "nettool"), "serve", ":5202"}} {
		srv := exe(argv...)
		if err := srv.Start(); err != nil {
			return err.Error(), nil
		}
		b.servers = append(b.servers, srv)
	}
	time.Sleep(300 * time.Millisecond)
	greet, lb, fwd := b.nextPort, b.nextPort+1, b.nextPort+2
	b.nextPort += 3
	apply := b.asUser(exec.Command(bin, "kubectl", "--name", inst, "apply", "-f", "-"))
	apply.Stdin = strings.NewReader(lbServices(greet, lb))
	start := time.Now()
	if out, err := apply.CombinedOutput(); err != nil {
		return fmt.Sprintf("apply: %v: %s", err, out), nil
	}
	firstByte = "not served after 1 minute"
	for time.Since(start) < time.Minute {
		if readsByte(fmt.Sprintf("127.0.0.1:%d", greet)) {
			firstByte = fmt.Sprintf("%.2f s", time.Since(start).Seconds())
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	rows = append(rows, b.loopback())
	if out, err := b.asUser(exec.Command(bin, "forward", "--name", inst, fmt.Sprintf("%d:5201", fwd))).CombinedOutput(); err != nil {
		rows = append(rows, result{name: "unetes forward", note: strings.TrimSpace(string(out))})
	} else {
		rows = append(rows, measure("unetes forward", nil, func(rev bool) (float64, error) {
			return iperf(nil, "127.0.0.1", fwd, rev, b.asUser)
		}))
	}
	// bench-iperf was published with bench-greet, before its first byte.
	rows = append(rows, measure("LoadBalancer port", nil, func(rev bool) (float64, error) {
		return iperf(nil, "127.0.0.1", lb, rev, b.asUser)
	}))
	return firstByte, rows
}

// readsByte: a connection to addr gets at least one byte.
func readsByte(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	_, err = bufio.NewReader(c).ReadByte()
	return err == nil
}
