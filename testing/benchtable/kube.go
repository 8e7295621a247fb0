package main

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// kubeRows measures the control plane: time from `unetes run` to /readyz,
// cold (new data dir) and warm (restart), and idle memory of the instance.
func (b *bench) kubeRows() {
	bin := b.home + "/unetes"
	inst := fmt.Sprintf("benchkube-%d", time.Now().UnixNano()%100000)
	port := b.nextPort
	b.nextPort++
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "figure\tunetes\ttarget\treference (published, not run here: no Docker on this host)")
	cold, coldErr := b.timeToReady(bin, inst, port, false)
	warm, warmErr := b.timeToReady(bin, inst, port, true)
	fmt.Fprintf(w, "run -> /readyz, cold\t%s\t<= 10 s\tkind 12-17 s, minikube 25 s, kubeadm 24 s (rootful)\n", secs(cold, coldErr))
	fmt.Fprintf(w, "run -> /readyz, warm\t%s\t<= 5 s\t\n", secs(warm, warmErr))
	rss, pss, n := instanceMemory(inst)
	fmt.Fprintf(w, "idle memory, %d processes, RSS (PSS)\t%.0f MB (%.0f MB)\t<= 400 MB\tk3s server: several hundred MB\n", n, rss, pss)
	if fi, err := os.Stat(bin); err == nil {
		fmt.Fprintf(w, "binary size\t%.0f MB\t\tDESIGN.md: ~180 MB stripped with every component\n", float64(fi.Size())/1e6)
	}
	w.Flush()
	b.asUser(exec.Command(bin, "stop", "--name", inst)).Run()
	b.asUser(exec.Command(bin, "reset", "--force", "--name", inst)).Run()
}

func secs(d time.Duration, err error) string {
	if err != nil {
		return "failed: " + err.Error()
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}

// timeToReady starts the instance (stopping a running one first when warm)
// and returns how long until /readyz answers 200; the instance keeps running.
func (b *bench) timeToReady(bin, inst string, port int, warm bool) (time.Duration, error) {
	if warm {
		b.asUser(exec.Command(bin, "stop", "--name", inst)).Run()
	}
	var out bytes.Buffer
	run := b.asUser(exec.Command(bin, "run", "--name", inst, "--api-port", strconv.Itoa(port)))
	run.Stdout, run.Stderr = &out, &out
	start := time.Now()
	if err := run.Start(); err != nil {
		return 0, err
	}
	go run.Wait()
	c := &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	url := fmt.Sprintf("https://127.0.0.1:%d/readyz", port)
	for time.Since(start) < 3*time.Minute {
		if resp, err := c.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				d := time.Since(start)
				// Let it finish start-up and settle before the memory reading.
				waitUntil(time.Minute, func() bool { return strings.Contains(out.String(), "ready in") })
				return d, nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return 0, fmt.Errorf("not ready in 3 minutes: %s", lastLine(out.Bytes()))
}

// instanceMemory sums RSS and PSS (MB) of the processes naming inst, after 10 s idle.
func instanceMemory(inst string) (rss, pss float64, n int) {
	time.Sleep(10 * time.Second)
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		// run names the instance; _child and _sandbox name its state dir.
		cmd, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(cmd, []byte(inst)) {
			continue
		}
		r, q := smaps(filepath.Join(filepath.Dir(p), "smaps_rollup"))
		rss += r
		pss += q
		n++
	}
	return rss / 1024, pss / 1024, n
}

// smaps returns Rss and Pss in kB from an smaps_rollup file.
func smaps(path string) (rss, pss float64) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "Rss:":
			rss = v
		case "Pss:":
			pss = v
		}
	}
	return rss, pss
}
