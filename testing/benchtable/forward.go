package main

import (
	"bytes"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"time"
)

// forwardRows measures host -> namespace throughput to an iperf3 server
// inside an instance: through `unetes forward`, and through socat on the host
// spawning `unetes exec -- socat` per connection (Usernetes' 2018 method).
func (b *bench) forwardRows(loop result) []result {
	bin := b.home + "/unetes"
	inst := fmt.Sprintf("benchfwd-%d", time.Now().UnixNano()%100000)
	var out bytes.Buffer
	run := b.asUser(exec.Command(bin, "run", "--no-kubernetes", "--name", inst))
	run.Stdout, run.Stderr = &out, &out
	if err := run.Start(); err != nil {
		return []result{{name: "unetes forward", note: err.Error()}}
	}
	defer func() {
		b.asUser(exec.Command(bin, "stop", "--name", inst)).Run()
		run.Wait()
	}()
	if !waitUntil(60*time.Second, func() bool { return strings.Contains(out.String(), "ready in") }) {
		return []result{{name: "unetes forward", note: "instance not ready"}}
	}
	srv := b.asUser(exec.Command(bin, "exec", "--name", inst, "--", "iperf3", "-s", "-p", "5201"))
	if err := srv.Start(); err != nil {
		return []result{{name: "unetes forward", note: err.Error()}}
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	time.Sleep(300 * time.Millisecond)

	fwdPort := b.nextPort
	b.nextPort++
	rows := []result{{name: "host loopback (limit)", up: loop.up, down: loop.down, cpuUp: -1, cpuDn: -1}}
	if o, err := b.asUser(exec.Command(bin, "forward", "--name", inst, fmt.Sprintf("%d:5201", fwdPort))).CombinedOutput(); err != nil {
		rows = append(rows, result{name: "unetes forward", note: strings.TrimSpace(string(o))})
	} else {
		rows = append(rows, measure("unetes forward", func() int { return run.Process.Pid }, func(rev bool) (float64, error) {
			return iperf(nil, "127.0.0.1", fwdPort, rev, b.asUser)
		}))
	}
	rows = append(rows, b.pastaForwardRow(), b.socatRow(bin, inst))
	return rows
}

// pastaForwardRow forwards a host port into a pasta namespace running its
// own iperf3 server: the same path with pasta's port forwarding, for scale.
// -T none -U none: by default pasta also forwards the host's listening
// ports into its namespace (5201 among them while a host iperf3 serves),
// and its iperf3 server could not bind.
func (b *bench) pastaForwardRow() result {
	const name = "pasta -t (reference)"
	if _, err := exec.LookPath("pasta"); err != nil {
		return result{name: name, note: "not installed (apt-get install passt)"}
	}
	p := b.nextPort
	b.nextPort++
	cmd := b.asUser(exec.Command("pasta", "--foreground", "--config-net", "-m", "65520", "-T", "none", "-U", "none", "-t", fmt.Sprintf("127.0.0.1/%d:5201", p), "--", "iperf3", "-s", "-p", "5201"))
	if err := cmd.Start(); err != nil {
		return result{name: name, note: err.Error()}
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	if !waitUntil(5*time.Second, func() bool {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err == nil {
			c.Close()
		}
		return err == nil
	}) {
		return result{name: name, note: "pasta did not listen"}
	}
	time.Sleep(300 * time.Millisecond) // the server inside starts after pasta listens
	return measure(name, func() int { return cmd.Process.Pid }, func(rev bool) (float64, error) {
		return iperf(nil, "127.0.0.1", p, rev, b.asUser)
	})
}

func (b *bench) socatRow(bin, inst string) result {
	const name = "socat + unetes exec"
	if _, err := exec.LookPath("socat"); err != nil {
		return result{name: name, note: "not installed (apt-get install socat)"}
	}
	p := b.nextPort
	b.nextPort++
	// Colons inside an EXEC address are escaped for socat, as Usernetes did.
	inner := fmt.Sprintf(`%s exec --name %s -- socat -t 10 STDIN TCP4\:127.0.0.1\:5201`, bin, inst)
	s := b.asUser(exec.Command("socat", "-t", "10", fmt.Sprintf("TCP-LISTEN:%d,bind=127.0.0.1,reuseaddr,fork", p), "EXEC:"+inner))
	if err := s.Start(); err != nil {
		return result{name: name, note: err.Error()}
	}
	defer func() { s.Process.Kill(); s.Wait() }()
	waitUntil(5*time.Second, func() bool {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return measure(name, nil, func(rev bool) (float64, error) {
		return iperf(nil, "127.0.0.1", p, rev, b.asUser)
	})
}
