package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/unetes/unetes/testing/internal/hostaddr"
)

type bench struct {
	hostIP   string
	uid, gid int
	home     string
	flowNote string // NAT memory per open flow, from the unetes row
	servers  []*exec.Cmd
	nextPort int
}

func newBench() (*bench, error) {
	if _, err := exec.LookPath("iperf3"); err != nil {
		return nil, fmt.Errorf("iperf3 not found: sudo apt-get install iperf3")
	}
	ip, err := hostAddr()
	if err != nil {
		return nil, err
	}
	uid, gid, err := lookupUser(*flagUser)
	if err != nil {
		return nil, err
	}
	home, err := os.MkdirTemp("", "unetes-bench-")
	if err != nil {
		return nil, err
	}
	os.Chmod(home, 0o755)
	os.Chown(home, uid, gid)
	bin := filepath.Join(home, "unetes")
	// Installed as a user would (cp), not in one 200 MB write: such a
	// write leaves the file in the page cache as large folios, and every
	// process then maps whole folios of the binary where it touches one
	// page (~70 MB more PSS for an idle instance than a binary read from
	// disk or copied with cp, on this host's 6.18 kernel and ext4).
	if out, err := exec.Command("cp", *flagBin, bin).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("copy %s: %v: %s (run `make build`)", *flagBin, err, out)
	}
	if err := os.Chmod(bin, 0o755); err != nil {
		return nil, err
	}
	return &bench{hostIP: ip, uid: uid, gid: gid, home: home, nextPort: 5301}, nil
}

// stopServers ends the servers started so far.
func (b *bench) stopServers() {
	for _, s := range b.servers {
		s.Process.Kill()
		s.Wait()
	}
	b.servers = nil
}

func (b *bench) cleanup() {
	b.stopServers()
	os.RemoveAll(b.home)
}

// server starts an iperf3 server on addr and returns its port.
func (b *bench) server(addr string) (int, error) {
	port := b.nextPort
	b.nextPort++
	s := exec.Command("iperf3", "-s", "-B", addr, "-p", strconv.Itoa(port))
	if err := s.Start(); err != nil {
		return 0, err
	}
	b.servers = append(b.servers, s)
	ok := waitUntil(5*time.Second, func() bool {
		c, err := net.Dial("tcp", net.JoinHostPort(addr, strconv.Itoa(port)))
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	if !ok {
		return 0, fmt.Errorf("iperf3 server on %s:%d did not start", addr, port)
	}
	time.Sleep(100 * time.Millisecond)
	return port, nil
}

// iperf runs a client command (prefix + iperf3 args), returns Gbit/s. The
// server takes one test at a time and may still be finishing the last one,
// so "busy" is retried for a few seconds.
func iperf(prefix []string, server string, port int, reverse bool, prep func(*exec.Cmd) *exec.Cmd) (float64, error) {
	for i := 0; ; i++ {
		g, err := iperfOnce(prefix, server, port, reverse, prep)
		if err == nil || i == 5 || !strings.Contains(err.Error(), "busy") {
			return g, err
		}
		time.Sleep(time.Second)
	}
}

func iperfOnce(prefix []string, server string, port int, reverse bool, prep func(*exec.Cmd) *exec.Cmd) (float64, error) {
	args := append(append([]string{}, prefix...), "iperf3", "-c", server, "-p", strconv.Itoa(port), "-t", strconv.Itoa(*flagDuration), "-J")
	if reverse {
		args = append(args, "-R")
	}
	// A setup whose forwarder dies mid-run leaves the client waiting on a
	// connection nobody serves: give up well after the run should end.
	limit := time.Duration(*flagDuration)*time.Second + 30*time.Second
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	if prep != nil {
		cmd = prep(cmd)
	}
	out, err := cmd.Output()
	if ctx.Err() != nil {
		return 0, fmt.Errorf("%s: no result after %s (killed)", strings.Join(args, " "), limit)
	}
	if err != nil {
		return 0, fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, lastLine(out))
	}
	var r struct {
		End struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		return 0, fmt.Errorf("parse iperf3 output: %w", err)
	}
	if r.Error != "" {
		return 0, fmt.Errorf("iperf3: %s", r.Error)
	}
	return r.End.SumReceived.BitsPerSecond / 1e9, nil
}

func lastLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	if i := strings.LastIndex(s, "\n"); i >= 0 {
		return s[i+1:]
	}
	return s
}

// measure runs up and down through the same client, each -runs times, and
// keeps the median; it samples the NAT process's CPU (natPID() returns 0 when
// there is none to measure).
func measure(name string, natPID func() int, run func(reverse bool) (float64, error)) result {
	r := result{name: name, cpuUp: -1, cpuDn: -1}
	for _, rev := range []bool{false, true} {
		var gs, cpus []float64
		for i := 0; i < *flagRuns; i++ {
			pid := 0
			if natPID != nil {
				pid = natPID()
			}
			c0, t0 := cpuSeconds(pid), time.Now()
			g, err := run(rev)
			if err != nil {
				r.note = err.Error()
				return r
			}
			gs = append(gs, g)
			if pid > 0 {
				cpus = append(cpus, (cpuSeconds(pid)-c0)/time.Since(t0).Seconds())
			}
		}
		cpu := -1.0
		if len(cpus) > 0 {
			cpu = median(cpus)
		}
		if rev {
			r.down, r.cpuDn = median(gs), cpu
		} else {
			r.up, r.cpuUp = median(gs), cpu
		}
	}
	return r
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func hostAddr() (string, error) {
	ip, err := hostaddr.IPv4()
	if err != nil {
		return "", err
	}
	return ip.String(), nil
}

// parseStatCPU returns utime+stime in seconds from /proc/PID/stat content.
func parseStatCPU(stat string) float64 {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(stat[i+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ
}
