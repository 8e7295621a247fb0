package main

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/unetes/unetes/testing/internal/syncbuf"
	"github.com/unetes/unetes/testing/internal/testimage"
)

// kubeRows measures Kubernetes: time from `unetes run` to /readyz and to
// ready (node Ready, add-ons ready), cold (new data dir) with and without
// the add-ons and warm (restart); idle memory with and without the add-ons;
// apply → first pod Running; DNS queries per second from a pod; memory
// with one pod, per role; binary size.
func (b *bench) kubeRows() {
	bin := b.home + "/unetes"
	stamp := time.Now().UnixNano() % 100000
	inst, bare := fmt.Sprintf("benchkube-%d", stamp), fmt.Sprintf("benchbare-%d", stamp)
	port := b.nextPort
	b.nextPort++
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "figure\tunetes\ttarget\treference (published, not run here: no Docker on this host)")
	resolv, upstream, err := b.benchResolver()
	if err != nil {
		fmt.Fprintf(w, "kubernetes\tfailed: %v\t\t\n", err)
		w.Flush()
		return
	}
	defer upstream.Close()
	// Cold starts with and without the add-ons, interleaved, -runs of
	// each: the medians. The last one with add-ons keeps running.
	var off, on coldRuns
	for i := 0; i < *flagRuns; i++ {
		if i > 0 {
			b.stopAndReset(bin, inst)
		}
		off.add(b.timeToReady(bin, bare, port, false, "--disable", "dns,storage,metrics,lb,join,docker"), instanceMemory(bare))
		b.stopAndReset(bin, bare)
		on.add(b.timeToReady(bin, inst, port, false, "--resolv-conf", resolv, "--disable", "docker"), instanceMemory(inst))
	}
	warm := b.timeToReady(bin, inst, port, true, "--resolv-conf", resolv, "--disable", "docker")
	fmt.Fprintf(w, "run -> /readyz, cold (median of %d)\t%s\t\t\n", *flagRuns, on.api())
	fmt.Fprintf(w, "run -> ready, cold, add-ons off (median of %d)\t%s\t<= 5 s\tkind 12-17 s, minikube 25 s, kubeadm 24 s (rootful)\n", *flagRuns, off.ready())
	fmt.Fprintf(w, "run -> ready, cold, add-ons on (median of %d)\t%s\t<= add-ons off + 0.5 s\t\n", *flagRuns, on.ready())
	warmAPI := secs(warm.api, warm.err)
	if warm.api == 0 && warm.err == nil {
		warmAPI = "not within 30 s of ready"
	}
	fmt.Fprintf(w, "run -> /readyz, warm (full, after ready: its bootstrap hooks are not waited for)\t%s\t\t\n", warmAPI)
	fmt.Fprintf(w, "run -> ready, warm\t%s\t<= 3 s\t\n", secs(warm.node, warm.err))
	fmt.Fprintf(w, "idle memory, empty, add-ons off, PSS (median)\t%s\t\t\n", off.pss(""))
	fmt.Fprintf(w, "idle memory, empty, add-ons on, PSS (median)\t%s\t<= add-ons off + 60 MB\t\n", on.pss(""))
	fmt.Fprintf(w, "  sandbox, add-ons off / on, PSS (median)\t%s / %s\t\t\n", off.pss(sandboxRole), on.pss(sandboxRole))
	fmt.Fprintf(w, "apply -> first pod Running (image loaded)\t%s\t\t\n", secs(b.firstPod(bin, inst)))
	mem := instanceMemory(inst)
	fmt.Fprintf(w, "idle memory with one pod, all %d processes, RSS (PSS)\t%s\t<= 400 MB\tk3s server: several hundred MB\n", mem.n, mem.total())
	for _, role := range mem.roles {
		fmt.Fprintf(w, "  %s\t%.0f MB (%.0f MB)\t\t\n", role, mem.byRole[role][0], mem.byRole[role][1])
	}
	for _, r := range b.dnsRows(bin, inst, upstream) {
		fmt.Fprintf(w, "%s\t%s\t\t%s\n", r.name, r.value, r.ref)
	}
	firstByte, lbRows := b.lbRows(bin, inst)
	fmt.Fprintf(w, "LoadBalancer Service: apply -> first byte on the host\t%s\tseconds\t\n", firstByte)
	b.stopServers() // their `unetes exec` clients would count as the instance's memory
	for _, r := range b.podRows(bin, inst, port, 30, 5, instanceMemory(inst)) {
		fmt.Fprintf(w, "%s\t%s\t%s\t\n", r.name, r.value, r.target)
	}
	w.Flush()
	b.stopAndReset(bin, inst)
	fmt.Printf("\nLoadBalancer throughput, host 127.0.0.1 -> server inside (endpoint: the node address), same run\n\n")
	printTable(lbRows, "unetes forward")
	fmt.Println("\ntarget: LoadBalancer port >= 0.8x host loopback, like unetes forward.")
}

// coldRuns collects cold starts of one setup.
type coldRuns struct {
	times []readyTimes
	mems  []memory
}

func (c *coldRuns) add(t readyTimes, m memory) {
	c.times, c.mems = append(c.times, t), append(c.mems, m)
}

func (c *coldRuns) api() string { return c.median(func(t readyTimes) time.Duration { return t.api }) }
func (c *coldRuns) ready() string {
	return c.median(func(t readyTimes) time.Duration { return t.node })
}

func (c *coldRuns) median(of func(readyTimes) time.Duration) string {
	var xs []float64
	for _, t := range c.times {
		if t.err != nil {
			return secs(0, t.err)
		}
		xs = append(xs, of(t).Seconds())
	}
	return fmt.Sprintf("%.2f s", median(xs))
}

// pss is the median PSS of role, or of all processes when role is "".
func (c *coldRuns) pss(role string) string {
	var xs []float64
	for _, t := range c.times {
		if t.err != nil {
			return "-"
		}
	}
	for _, m := range c.mems {
		if role == "" {
			xs = append(xs, m.pss)
		} else {
			xs = append(xs, m.byRole[role][1])
		}
	}
	return fmt.Sprintf("%.0f MB", median(xs))
}

func (b *bench) stopAndReset(bin, inst string) {
	b.asUser(exec.Command(bin, "stop", "--name", inst)).Run()
	b.asUser(exec.Command(bin, "reset", "--force", "--name", inst)).Run()
}

func secs(d time.Duration, err error) string {
	if err != nil {
		return "failed: " + err.Error()
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}

type readyTimes struct {
	started   time.Time // when run was started (after the stop, when warm)
	api, node time.Duration
	err       error
}

// timeToReady starts the instance (stopping a running one first when warm)
// and returns how long until /readyz answers 200 and until run reports
// ready (it prints "ready in" once the node is Ready and the add-ons
// serve); the instance keeps running.
func (b *bench) timeToReady(bin, inst string, port int, warm bool, extra ...string) readyTimes {
	if warm {
		b.asUser(exec.Command(bin, "stop", "--name", inst)).Run()
	}
	out := &syncbuf.Buffer{}
	run := b.asUser(exec.Command(bin, append([]string{"run", "--name", inst, "--api-port", strconv.Itoa(port)}, extra...)...))
	run.Stdout, run.Stderr = out, out
	start := time.Now()
	if err := run.Start(); err != nil {
		return readyTimes{err: err}
	}
	go run.Wait()
	c := &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	url := fmt.Sprintf("https://127.0.0.1:%d/readyz", port)
	rt := readyTimes{started: start}
	// A warm start is ready before the full /readyz passes (its bootstrap
	// hooks are not waited for): keep asking a while after ready.
	for time.Since(start) < 3*time.Minute && (rt.node == 0 || rt.api == 0 && time.Since(start) < rt.node+30*time.Second) {
		if rt.api == 0 {
			if resp, err := c.Get(url); err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					rt.api = time.Since(start)
				}
			}
		}
		if rt.node == 0 && strings.Contains(out.String(), "ready in") {
			rt.node = time.Since(start)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if rt.node == 0 {
		rt.err = fmt.Errorf("not ready in 3 minutes: %s", lastLine([]byte(out.String())))
	}
	return rt
}

// firstPod loads the busybox image, applies a pod and returns how long
// from apply until the pod is Running.
func (b *bench) firstPod(bin, inst string) (time.Duration, error) {
	tool, err := b.nettool()
	if err != nil {
		return 0, err
	}
	img, err := testimage.New(testimage.File{Path: "bin/nettool", Data: tool})
	if err != nil {
		return 0, err
	}
	tarball, err := img.DockerSave("localhost/busybox:bench")
	if err != nil {
		return 0, err
	}
	p := filepath.Join(b.home, "busybox.tar")
	if err := os.WriteFile(p, tarball, 0o644); err != nil {
		return 0, err
	}
	if out, err := b.asUser(exec.Command(bin, "image", "load", "--name", inst, p)).CombinedOutput(); err != nil {
		return 0, fmt.Errorf("image load: %v: %s", err, out)
	}
	pod := `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"bench"},"spec":{"containers":[{"name":"c","image":"localhost/busybox:bench","imagePullPolicy":"Never","command":["sleep","3600"]}]}}`
	apply := b.asUser(exec.Command(bin, "kubectl", "--name", inst, "apply", "-f", "-"))
	apply.Stdin = strings.NewReader(pod)
	pods, err := b.podLister(inst)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	if out, err := apply.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("apply: %v: %s", err, out)
	}
	for time.Since(start) < 2*time.Minute {
		if ps, _ := pods.pods("", "metadata.name=bench"); len(ps) == 1 && ps[0].Phase == "Running" {
			return time.Since(start), nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return 0, fmt.Errorf("pod not Running after 2 minutes")
}

type memory struct {
	rss, pss float64
	n        int
	roles    []string
	byRole   map[string][2]float64
}

func (m memory) total() string { return fmt.Sprintf("%.0f MB (%.0f MB)", m.rss, m.pss) }

const sandboxRole = "sandbox (control plane, containerd, kube-proxy, add-ons)"

// instanceMemory sums RSS and PSS (MB) of the processes naming inst (run by
// name; _child, _sandbox, the kubelet and the shims by state-dir paths),
// after 10 s idle, in total and per role. Pods' own processes are not unetes'.
func instanceMemory(inst string) memory {
	time.Sleep(10 * time.Second)
	m := memory{byRole: map[string][2]float64{}}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		cmd, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(cmd, []byte(inst)) {
			continue
		}
		role := "parent (run)"
		switch args := bytes.Split(cmd, []byte{0}); {
		case bytes.Contains(cmd, []byte("-namespace\x00")):
			role = "shims"
		case len(args) > 1 && string(args[1]) == "_child":
			role = "child (_child)"
		case len(args) > 1 && string(args[1]) == "_sandbox":
			role = sandboxRole
		case len(args) > 1 && string(args[1]) == "_kubelet":
			role = "kubelet"
		case filepath.Base(string(args[0])) == "dockerd":
			role = dockerdRole
		}
		r, q := smaps(filepath.Join(filepath.Dir(p), "smaps_rollup"))
		if _, ok := m.byRole[role]; !ok {
			m.roles = append(m.roles, role)
		}
		v := m.byRole[role]
		m.byRole[role] = [2]float64{v[0] + r/1024, v[1] + q/1024}
		m.rss += r / 1024
		m.pss += q / 1024
		m.n++
	}
	sort.Strings(m.roles)
	return m
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
