// Command benchtable is `make bench`: it measures NAT throughput between a
// network namespace and the host with iperf3, for host loopback (the limit),
// unetes, slirp4netns and pasta, all in one run, and prints one table.
// When run as root, every namespace is created as the unprivileged test user.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

var (
	flagBin      = flag.String("unetes-bin", "bin/unetes", "unetes binary")
	flagUser     = flag.String("test-user", "unetes-test", "unprivileged user that runs the namespaces when run as root")
	flagDuration = flag.Int("t", 5, "seconds per iperf3 run")
	flagRuns     = flag.Int("runs", 3, "iperf3 runs per direction; the median is reported")
	flagOnly     = flag.String("only", "", "run one table only (after the size table, which always runs): size, nat, forward, kube or docker")
)

// result is one row of the table.
type result struct {
	name         string
	up, down     float64 // Gbit/s
	cpuUp, cpuDn float64 // NAT CPU, fraction of one core; <0 when not measured
	note         string
}

func main() {
	flag.Parse()
	b, err := newBench()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	defer b.cleanup()
	b.sizeTable() // first: it fills the cache that every later start runs from
	switch *flagOnly {
	case "size":
		return
	case "kube":
		b.kubeTable()
		return
	case "docker":
		b.dockerTable()
		return
	case "nodes":
		b.nodesTable()
		return
	}
	fmt.Printf("NAT throughput, namespace <-> host %s, iperf3 -t %d, median of %d runs, MTU 65520, all in this run\n", b.hostIP, *flagDuration, *flagRuns)
	fmt.Printf("host TCP congestion control: %s (host loopback and the host's ends of every flow use it)\n\n", hostCongestion())
	loop := b.loopback()
	if *flagOnly == "" || *flagOnly == "nat" {
		rows := []result{loop, b.unetes(), b.slirp4netns(), b.pasta()}
		printTable(rows, "slirp4netns", "pasta")
		fmt.Println("\nupload = namespace -> host, download = host -> namespace; NAT CPU = the NAT process's CPU time over the run, in % of one core;")
		fmt.Println("CPU per Gbit/s = that CPU divided by the throughput (lower is better). Targets: unetes >= 2x slirp4netns and >= pasta, both ways.")
		fmt.Println("NAT memory:", b.flowNote)
	}
	if *flagOnly == "nat" {
		return
	}

	fmt.Printf("\nForward throughput, host 127.0.0.1 -> iperf3 server inside the namespace, same run\n\n")
	printTable(b.forwardRows(loop), "pasta -t (reference)", "socat + unetes exec")
	fmt.Println("\nupload = host client -> server inside, download = server inside -> host client (-R); CPU = the unetes run process. Target: unetes forward >= 0.8x host loopback.")

	if *flagOnly == "" {
		b.kubeTable()
		b.dockerTable()
		b.nodesTable()
	}
}

// hostCongestion is the host's default TCP congestion control.
func hostCongestion() string {
	cc, err := os.ReadFile("/proc/sys/net/ipv4/tcp_congestion_control")
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	return strings.TrimSpace(string(cc))
}

func (b *bench) kubeTable() {
	fmt.Printf("\nKubernetes (control plane, containerd, kubelet, kube-proxy), same run\n\n")
	b.kubeRows()
}

// printTable prints rows with ratios against host loopback (rows[0]) and each
// of refNames.
func printTable(rows []result, refNames ...string) {
	refs := make([]result, len(refNames))
	for i, name := range refNames {
		for _, r := range rows {
			if r.name == name {
				refs[i] = r
			}
		}
	}
	loop := rows[0]
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "setup\tupload Gbit/s\tdownload Gbit/s\tCPU up/down\tCPU per Gbit/s up/down")
	for _, name := range refNames {
		fmt.Fprintf(w, "\tvs %s up/down", name)
	}
	fmt.Fprintf(w, "\tvs host loopback up/down\tnote\n")
	for _, r := range rows {
		if r.note != "" && r.up == 0 {
			fmt.Fprintf(w, "%s\t-\t-\t-\t-%s\t-\t%s\n", r.name, strings.Repeat("\t-", len(refs)), r.note)
			continue
		}
		cpu, perGbit := "-", "-"
		if r.cpuUp >= 0 {
			cpu = fmt.Sprintf("%.0f%% / %.0f%%", r.cpuUp*100, r.cpuDn*100)
			if r.up > 0 && r.down > 0 {
				perGbit = fmt.Sprintf("%.1f%% / %.1f%%", r.cpuUp*100/r.up, r.cpuDn*100/r.down)
			}
		}
		fmt.Fprintf(w, "%s\t%.2f\t%.2f\t%s\t%s", r.name, r.up, r.down, cpu, perGbit)
		for _, ref := range refs {
			fmt.Fprintf(w, "\t%s", ratio(r, ref))
		}
		fmt.Fprintf(w, "\t%s\t%s\n", ratio(r, loop), r.note)
	}
	w.Flush()
}

func ratio(r, ref result) string {
	if ref.up == 0 || ref.down == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx / %.2fx", r.up/ref.up, r.down/ref.down)
}

// asUser prepares cmd to run as the test user when we are root.
func (b *bench) asUser(cmd *exec.Cmd) *exec.Cmd {
	cmd.Env = []string{"HOME=" + b.home, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C"}
	cmd.Dir = b.home
	if b.uid != 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(b.uid), Gid: uint32(b.gid), Groups: []uint32{}}}
	}
	return cmd
}

func lookupUser(name string) (uid, gid int, err error) {
	if os.Getuid() != 0 {
		return os.Getuid(), os.Getgid(), nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		return 0, 0, fmt.Errorf("look up %s: %w (run `sudo make setup`)", name, err)
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	return uid, gid, nil
}

// cpuSeconds is the user+system CPU time of pid so far.
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	return parseStatCPU(string(b))
}

func waitUntil(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}
