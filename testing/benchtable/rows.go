package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func (b *bench) loopback() result {
	port, err := b.server("127.0.0.1")
	if err != nil {
		return result{name: "host loopback", note: err.Error()}
	}
	return measure("host loopback", nil, func(rev bool) (float64, error) {
		return iperf(nil, "127.0.0.1", port, rev, b.asUser)
	})
}

func (b *bench) unetes() result {
	const name = "unetes"
	port, err := b.server(b.hostIP)
	if err != nil {
		return result{name: name, note: err.Error()}
	}
	inst := fmt.Sprintf("bench-%d", time.Now().UnixNano()%100000)
	bin := b.home + "/unetes"
	var out bytes.Buffer
	run := b.asUser(exec.Command(bin, "run", "--no-kubernetes", "--name", inst))
	run.Stdout, run.Stderr = &out, &out
	if err := run.Start(); err != nil {
		return result{name: name, note: err.Error()}
	}
	defer func() {
		b.asUser(exec.Command(bin, "stop", "--name", inst)).Run()
		run.Wait()
	}()
	if !waitUntil(60*time.Second, func() bool { return strings.Contains(out.String(), "ready in") }) {
		return result{name: name, note: "instance not ready: " + lastLine(out.Bytes())}
	}
	r := measure(name, func() int { return run.Process.Pid }, func(rev bool) (float64, error) {
		return iperf([]string{bin, "exec", "--name", inst, "--"}, b.hostIP, port, rev, b.asUser)
	})
	b.flowNote = b.flowMemory(bin, inst, run.Process.Pid)
	return r
}

func (b *bench) slirp4netns() result {
	const name = "slirp4netns"
	if _, err := exec.LookPath("slirp4netns"); err != nil {
		return result{name: name, note: "not installed (apt-get install slirp4netns)"}
	}
	port, err := b.server(b.hostIP)
	if err != nil {
		return result{name: name, note: err.Error()}
	}
	ns := b.asUser(exec.Command("unshare", "--user", "--map-root-user", "--net", "--fork", "--kill-child", "sleep", "3600"))
	if err := ns.Start(); err != nil {
		return result{name: name, note: err.Error()}
	}
	defer func() { ns.Process.Kill(); ns.Wait() }()
	var child int
	waitUntil(5*time.Second, func() bool {
		out, _ := exec.Command("pgrep", "-P", strconv.Itoa(ns.Process.Pid)).Output()
		child, _ = strconv.Atoi(strings.TrimSpace(string(out)))
		return child > 0
	})
	if child == 0 {
		return result{name: name, note: "namespace did not start"}
	}
	slirp := b.asUser(exec.Command("slirp4netns", "--configure", "--mtu=65520", "--disable-host-loopback", strconv.Itoa(child), "tap0"))
	if err := slirp.Start(); err != nil {
		return result{name: name, note: err.Error()}
	}
	defer func() { slirp.Process.Kill(); slirp.Wait() }()
	time.Sleep(500 * time.Millisecond)
	prefix := []string{"nsenter", "-t", strconv.Itoa(child), "-U", "-n", "--preserve-credentials"}
	return measure(name, func() int { return slirp.Process.Pid }, func(rev bool) (float64, error) {
		return iperf(prefix, b.hostIP, port, rev, b.asUser)
	})
}

// pasta runs one pasta around a sleeping process and reaches its namespace
// with nsenter, like slirp4netns above.
func (b *bench) pasta() result {
	const name = "pasta"
	if _, err := exec.LookPath("pasta"); err != nil {
		return result{name: name, note: "not installed (apt-get install passt)"}
	}
	port, err := b.server(b.hostIP)
	if err != nil {
		return result{name: name, note: err.Error()}
	}
	p := b.asUser(exec.Command("pasta", "--foreground", "--config-net", "-a", "10.0.2.100", "-n", "24", "-g", "10.0.2.2", "-m", "65520", "--", "sleep", "3600"))
	if err := p.Start(); err != nil {
		return result{name: name, note: err.Error()}
	}
	var child int
	defer func() {
		p.Process.Kill()
		p.Wait()
		if child > 0 {
			syscall.Kill(child, syscall.SIGKILL)
		}
	}()
	waitUntil(5*time.Second, func() bool {
		out, _ := exec.Command("pgrep", "-f", "-u", strconv.Itoa(b.uid), "^sleep 3600$").Output()
		for _, f := range strings.Fields(string(out)) {
			if pid, _ := strconv.Atoi(f); pid != 0 && pid != p.Process.Pid && parentOf(pid) == p.Process.Pid {
				child = pid
			}
		}
		return child > 0
	})
	if child == 0 {
		return result{name: name, note: "pasta namespace did not start"}
	}
	time.Sleep(300 * time.Millisecond)
	prefix := []string{"nsenter", "-t", strconv.Itoa(child), "-U", "-n", "--preserve-credentials"}
	return measure(name, func() int { return p.Process.Pid }, func(rev bool) (float64, error) {
		return iperf(prefix, b.hostIP, port, rev, b.asUser)
	})
}

// parentOf returns the parent pid of pid, or 0.
func parentOf(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}
