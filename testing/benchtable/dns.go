package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/unetes/unetes/testing/internal/fakedns"
)

// The bench's own upstream resolver: the host's real one may not answer
// (no internet here), and a rate measured against it would measure it.
const (
	upstreamIP   = "127.0.0.55"
	externalName = "bench.unetes.test."
)

// benchResolver starts the upstream DNS server and writes a resolv.conf
// naming it, for `run --resolv-conf`.
func (b *bench) benchResolver() (string, *fakedns.Server, error) {
	srv, err := fakedns.Start(upstreamIP, externalName, [4]byte{192, 0, 2, 55})
	if err != nil {
		return "", nil, err
	}
	p := filepath.Join(b.home, "resolv.conf")
	if err := os.WriteFile(p, []byte("nameserver "+upstreamIP+"\n"), 0o644); err != nil {
		srv.Close()
		return "", nil, err
	}
	return p, srv, nil
}

// nettool builds the test client (once) for the bench's pod image.
func (b *bench) nettool() ([]byte, error) {
	p := filepath.Join(b.home, "nettool")
	if _, err := os.Stat(p); err != nil {
		cmd := exec.Command("go", "build", "-o", p, "./testing/nettool")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("build nettool: %v: %s", err, out)
		}
	}
	return os.ReadFile(p)
}

type dnsRow struct{ name, value, ref string }

// dnsRows measures DNS queries per second from the bench pod (8 sockets,
// one query in flight each, 5 s): a cluster name and a cached external name
// through CoreDNS, an external name through the NAT's relay (every query
// reaches the upstream), and the upstream queried from the host directly.
func (b *bench) dnsRows(bin, inst string, upstream *fakedns.Server) []dnsRow {
	const secs, conc = "5", "8"
	inPod := func(server, name string) string {
		out, err := b.asUser(exec.Command(bin, "kubectl", "--name", inst, "exec", "bench", "--", "nettool", "dnsbench", server, name, secs, conc)).CombinedOutput()
		return rate(out, err)
	}
	before := upstream.Queries()
	cached := inPod("10.96.0.10", externalName)
	reached := upstream.Queries() - before
	host, err := exec.Command(filepath.Join(b.home, "nettool"), "dnsbench", upstreamIP, externalName, secs, conc).CombinedOutput()
	return []dnsRow{
		{"DNS from a pod: cluster name via CoreDNS, q/s", inPod("10.96.0.10", "kubernetes.default.svc.cluster.local."), ""},
		{"DNS from a pod: external name via CoreDNS (cached), q/s", cached, fmt.Sprintf("%d queries reached the upstream", reached)},
		{"DNS from a pod: external name via the NAT relay 10.0.2.3, q/s", inPod("10.0.2.3", externalName), "no cache: every query reaches the upstream"},
		{"DNS from the host: the upstream directly, q/s", rate(host, err), "reference: the same client and server, no namespace"},
	}
}

// rate picks "qps=N failed=M" out of nettool's output.
func rate(out []byte, err error) string {
	s := strings.TrimSpace(string(out))
	if err != nil {
		return "failed: " + lastLine(out)
	}
	var qps, failed int
	i := strings.LastIndex(s, "qps=")
	if i < 0 {
		return "unreadable: " + s
	}
	if _, err := fmt.Sscanf(s[i:], "qps=%d failed=%d", &qps, &failed); err != nil {
		return "unreadable: " + s
	}
	if failed > 0 {
		return fmt.Sprintf("%d (%d failed)", qps, failed)
	}
	return fmt.Sprint(qps)
}
