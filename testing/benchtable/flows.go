package main

import (
	"bytes"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// openFlows is how many TCP flows the memory-per-flow figure holds open.
const openFlows = 1000

// flowMemory holds openFlows TCP connections from inside instance inst to a
// server on the host that accepts and keeps them, and returns what the NAT
// (the run process, pid) holds per open flow: its PSS with them open, less
// its PSS before, over openFlows.
func (b *bench) flowMemory(bin, inst string, pid int) string {
	tool := filepath.Join(b.home, "nettool")
	if out, err := exec.Command("go", "build", "-o", tool, "./testing/nettool").CombinedOutput(); err != nil {
		return fmt.Sprintf("build nettool: %v: %s", err, out)
	}
	l, err := net.Listen("tcp4", net.JoinHostPort(b.hostIP, "0"))
	if err != nil {
		return err.Error()
	}
	var mu sync.Mutex
	var held []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	defer func() {
		l.Close()
		mu.Lock()
		for _, c := range held {
			c.Close()
		}
		mu.Unlock()
	}()
	smapsOf := func() float64 { _, pss := smaps(fmt.Sprintf("/proc/%d/smaps_rollup", pid)); return pss }
	time.Sleep(2 * time.Second)
	before := smapsOf()
	var out bytes.Buffer
	cmd := b.asUser(exec.Command(bin, "exec", "--name", inst, "--", tool, "hold", l.Addr().String(), strconv.Itoa(openFlows), "60"))
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return err.Error()
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	if !waitUntil(60*time.Second, func() bool { return strings.Contains(out.String(), "open ") }) {
		return "flows not open: " + lastLine(out.Bytes())
	}
	time.Sleep(2 * time.Second)
	after := smapsOf()
	return fmt.Sprintf("%.1f kB per open TCP flow (%d flows: NAT PSS %.0f -> %.0f MB)", (after-before)/openFlows, openFlows, before/1024, after/1024)
}
