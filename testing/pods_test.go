package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const testImage = "localhost/busybox:e2e"

// webApp is a Deployment of 2 busybox httpd replicas that answer with their
// pod name, with resource limits, and a NodePort Service in front of them.
func webApp(nodePort int) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: %s
        imagePullPolicy: Never
        command: ["sh", "-c", "echo hello-from-$(hostname) > /tmp/index.html; echo web started; exec httpd -f -p 8080 -h /tmp"]
        resources:
          requests: {cpu: 50m, memory: 16Mi}
          limits: {cpu: 200m, memory: 64Mi}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080, nodePort: %d}]
`, testImage, nodePort)
}

func (in *instance) apply(yaml string) (stdout, stderr string, code int) {
	in.t.Helper()
	return in.u.unetes(in.t, yaml, "kubectl", "--name", in.name, "apply", "-f", "-")
}

// startKube runs a Kubernetes instance with the test image loaded.
func startKube(t *testing.T, u *testUser, name string) (*instance, int) {
	t.Helper()
	return startKubeWith(t, u, name)
}

// startKubeWith is startKube with more run flags.
func startKubeWith(t *testing.T, u *testUser, name string, extra ...string) (*instance, int) {
	t.Helper()
	port := freePort(t, "tcp")
	in := launch(t, u, name, append([]string{"--api-port", strconv.Itoa(port)}, extra...))
	if !strings.Contains(in.out.String(), "node ready") {
		t.Fatalf("run did not wait for the node:\n%s", in.out.String())
	}
	tarball := dockerSaveImage(t, testImage)
	if out, errOut, code := u.unetes(t, "", "image", "load", "--name", name, tarball); code != 0 || !strings.Contains(out, "loaded "+testImage) {
		t.Fatalf("image load: code %d out %q err %q", code, out, errOut)
	}
	return in, port
}

// startWebApp runs a Kubernetes instance with webApp(nodePort) rolled out,
// and returns the API port and the web pods' names.
func startWebApp(t *testing.T, u *testUser, name string, nodePort int) (*instance, int, []string) {
	t.Helper()
	in, apiPort := startKube(t, u, name)
	if _, errOut, code := in.apply(webApp(nodePort)); code != 0 {
		t.Fatalf("apply: %s", errOut)
	}
	pods, _ := in.rollout()
	return in, apiPort, pods
}

// rollout waits for the web Deployment's 2 pods to be Running, Ready and
// addressed, and returns their names and IPs. After a restart the API still
// shows the last run's status for a while, so it polls the pods themselves.
func (in *instance) rollout() (names, ips []string) {
	in.t.Helper()
	in.mustKubectl("rollout", "status", "deployment/web", "--timeout=180s")
	var out string
	deadline := time.Now().Add(3 * time.Minute)
	for {
		out = in.mustKubectl("get", "pods", "-l", "app=web", "-o",
			`jsonpath={range .items[*]}{.metadata.name} {.status.phase} {.status.conditions[?(@.type=="Ready")].status} {.status.podIP}{"\n"}{end}`)
		names, ips = nil, nil
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			if f := strings.Fields(l); len(f) == 4 && f[1] == "Running" && f[2] == "True" {
				names, ips = append(names, f[0]), append(ips, f[3])
			}
		}
		if len(names) == 2 && len(strings.Split(strings.TrimSpace(out), "\n")) == 2 {
			return names, ips
		}
		if time.Now().After(deadline) {
			in.t.Fatalf("want 2 running, ready web pods, got:\n%s", out)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// serves waits until the web app answers on the host's 127.0.0.1:hp (a
// forward, a LoadBalancer port, a hostPort: what).
func serves(t *testing.T, hp int, what string) {
	t.Helper()
	waitFor(t, 2*time.Minute, what+" on 127.0.0.1:"+strconv.Itoa(hp), func() bool {
		out, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/", hp))
		return err == nil && strings.HasPrefix(out, "hello-from-web-")
	})
}

// inPod runs argv in pod with kubectl exec and returns its output.
func (in *instance) inPod(pod string, argv ...string) string {
	in.t.Helper()
	return in.mustKubectl(append([]string{"exec", pod, "--"}, argv...)...)
}

func httpGet(url string) (string, error) {
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return strings.TrimSpace(string(b)), err
}

// hostHTTPServer serves "host-says-hi" on addr (the host's own address).
func hostHTTPServer(t *testing.T, addr string) string {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "host-says-hi\n") })}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String()
}

func TestPodsServicesAndNetwork(t *testing.T) {
	u := asUser(t, *flagTestUser)
	in, _ := startKube(t, u, newName())
	const nodePort = 30080
	if out, errOut, code := in.apply(webApp(nodePort)); code != 0 {
		t.Fatalf("apply: %d %s %s", code, out, errOut)
	}
	pods, ips := in.rollout()

	t.Run("limits admitted and reported", func(t *testing.T) {
		lim := in.mustKubectl("get", "pod", pods[0], "-o", "jsonpath={.spec.containers[0].resources.limits.memory}")
		if lim != "64Mi" {
			t.Fatalf("pod limits = %q", lim)
		}
		out, _, _ := u.unetes(t, "", "status", "--name", in.name)
		want := "limits:      NOT enforced"
		if cgroupV2Delegated(u.uid) {
			want = "limits:      enforced"
		}
		if !strings.Contains(out, want) {
			t.Fatalf("status lacks %q:\n%s", want, out)
		}
		for _, c := range []string{"containerd", "kubelet", "kube-proxy"} {
			if !regexpLine(out, c+`\s+ready`) {
				t.Errorf("status does not report %s ready:\n%s", c, out)
			}
		}
	})
	t.Run("logs and exec", func(t *testing.T) {
		if out := in.mustKubectl("logs", pods[0]); !strings.Contains(out, "web started") {
			t.Fatalf("logs: %q", out)
		}
		if out := in.inPod(pods[0], "hostname"); strings.TrimSpace(out) != pods[0] {
			t.Fatalf("exec hostname = %q, want %q", out, pods[0])
		}
	})
	t.Run("pods' TCP congestion control", func(t *testing.T) {
		// A pod's namespace starts with the host's default; where that
		// paces (BBR), the tuning plugin gives it the instance's.
		host, inside := localCongestion(t, in)
		if got := strings.TrimSpace(in.inPod(pods[0], "cat", "/proc/sys/net/ipv4/tcp_congestion_control")); got != inside {
			t.Fatalf("pod's TCP congestion control = %q (host %q), want the instance's %q", got, host, inside)
		}
	})
	t.Run("pod to pod", func(t *testing.T) {
		out := in.inPod(pods[0], "wget", "-qO-", "http://"+ips[1]+":8080/")
		if strings.TrimSpace(out) != "hello-from-"+pods[1] {
			t.Fatalf("pod %s → %s = %q", pods[0], ips[1], out)
		}
	})
	t.Run("pod to ClusterIP", func(t *testing.T) {
		ip := in.mustKubectl("get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}")
		seen := map[string]bool{}
		for i := 0; i < 12 && len(seen) < 2; i++ {
			out := strings.TrimSpace(in.inPod(pods[0], "wget", "-qO-", "http://"+ip+"/"))
			if !strings.HasPrefix(out, "hello-from-web-") {
				t.Fatalf("ClusterIP %s answered %q", ip, out)
			}
			seen[out] = true
		}
		if len(seen) < 2 {
			t.Errorf("ClusterIP reached only %v in 12 tries", seen)
		}
	})
	t.Run("pod to host address through the NAT", func(t *testing.T) {
		addr := hostHTTPServer(t, hostIP(t).String()+":0")
		if out := in.inPod(pods[1], "wget", "-qO-", "http://"+addr+"/"); strings.TrimSpace(out) != "host-says-hi" {
			t.Fatalf("pod → host %s = %q", addr, out)
		}
	})
	t.Run("host to NodePort with unetes forward", func(t *testing.T) {
		hp := freePort(t, "tcp")
		in.mustForward(fmt.Sprintf("%d:%d", hp, nodePort))
		out, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/", hp))
		if err != nil || !strings.HasPrefix(out, "hello-from-web-") {
			t.Fatalf("host → NodePort: %q %v", out, err)
		}
	})
	t.Run("kubectl port-forward", func(t *testing.T) {
		hp := freePort(t, "tcp")
		pf := u.command(work.unetes, "kubectl", "--name", in.name, "port-forward", "pod/"+pods[1], fmt.Sprintf("%d:8080", hp))
		var out bytes.Buffer
		pf.Stdout, pf.Stderr = &out, &out
		if err := pf.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { pf.Process.Kill(); pf.Wait() }()
		var got string
		var err error
		for i := 0; i < 100; i++ {
			if got, err = httpGet(fmt.Sprintf("http://127.0.0.1:%d/", hp)); err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if got != "hello-from-"+pods[1] {
			t.Fatalf("port-forward: %q %v\n%s", got, err, out.String())
		}
	})
	t.Run("bad image backs off, node unharmed", func(t *testing.T) {
		if _, errOut, code := in.apply(`apiVersion: v1
kind: Pod
metadata: {name: badimage}
spec:
  containers: [{name: c, image: "localhost/does-not-exist:nope"}]
`); code != 0 {
			t.Fatalf("apply: %s", errOut)
		}
		var reason string
		waitFor(t, 2*time.Minute, "ErrImagePull or ImagePullBackOff", func() bool {
			reason, _, _ = in.kubectl("get", "pod", "badimage", "-o", "jsonpath={.status.containerStatuses[0].state.waiting.reason}")
			return reason == "ErrImagePull" || reason == "ImagePullBackOff"
		})
		if st := in.mustKubectl("get", "node", "-o", `jsonpath={.items[0].status.conditions[?(@.type=="Ready")].status}`); st != "True" {
			t.Fatalf("node Ready = %q after a bad image", st)
		}
		in.rollout()
	})
	t.Run("invalid spec rejected", func(t *testing.T) {
		_, errOut, code := in.apply(`apiVersion: v1
kind: Pod
metadata: {name: Not_A_Valid_Name}
spec:
  containers: [{name: c, image: ` + testImage + `}]
`)
		if code == 0 || !strings.Contains(errOut, "Invalid value") {
			t.Fatalf("invalid pod: code %d err %q", code, errOut)
		}
		in.rollout()
	})
}

func TestPodsSurviveStopRunAndSIGKILL(t *testing.T) {
	u := asUser(t, *flagTestUser)
	name := newName()
	in, apiPort, _ := startWebApp(t, u, name, 30080)
	hp := freePort(t, "tcp")
	in.mustForward(fmt.Sprintf("%d:30080", hp)) // saved: every later run restores it
	serves(t, hp, "the web app through its NodePort")

	// stop / run: the Deployment is kept and its pods come back.
	in.stop()
	if _, errOut, _ := u.unetes(t, "", "status", "--name", name); !strings.Contains(errOut, "start it with `unetes run --name "+name+"`") {
		t.Fatalf("the not-running hint of a Kubernetes instance: %q", errOut)
	}
	if left := containerProcs(u.uid); len(left) > 0 {
		t.Fatalf("container processes left after stop:\n%s", describe(left))
	}
	again := launch(t, u, name, []string{"--api-port", strconv.Itoa(apiPort)})
	again.rollout()
	serves(t, hp, "the web app through its NodePort")

	// SIGKILL of the parent: nothing of the instance is left, and the next
	// run brings the pods back again.
	if err := again.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-again.done
	waitFor(t, 15*time.Second, "no process of the instance", func() bool {
		return len(procsOf(u.uid, name)) == 0 && len(containerProcs(u.uid)) == 0
	})
	third := launch(t, u, name, []string{"--api-port", strconv.Itoa(apiPort)})
	third.rollout()
	serves(t, hp, "the web app through its NodePort")

	// A container running as another user leaves files owned by a sub-ID;
	// reset deletes them all the same.
	if _, errOut, code := third.apply(`apiVersion: v1
kind: Pod
metadata: {name: nonroot}
spec:
  securityContext: {runAsUser: 1000, runAsGroup: 1000}
  containers:
  - {name: c, image: ` + testImage + `, imagePullPolicy: Never, command: ["sh", "-c", "mkdir /tmp/d && echo x > /tmp/d/f && chmod 500 /tmp/d && sleep 3600"]}
`); code != 0 {
		t.Fatalf("apply: %s", errOut)
	}
	third.mustKubectl("wait", "--for=condition=Ready", "pod/nonroot", "--timeout=120s")
	if out := third.inPod("nonroot", "id", "-u"); strings.TrimSpace(out) != "1000" {
		t.Fatalf("id -u in pod = %q", out)
	}
	third.stop()
	if out, errOut, code := u.unetes(t, "", "reset", "--force", "--name", name); code != 0 {
		t.Fatalf("reset after a non-root container: %d %s %s", code, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(u.home, ".local/share/unetes", name)); !os.IsNotExist(err) {
		t.Fatalf("data dir left after reset: %v", err)
	}
}

// containerProcs lists the user's shims, pause processes and web servers.
func containerProcs(uid int) []int {
	var out []int
	for _, m := range []string{"-namespace k8s.io", "/pause", "httpd -f -p 8080"} {
		out = append(out, procsOf(uid, m)...)
	}
	return out
}

// cgroupV2Delegated reports, independently of unetes, whether the cgroup v2
// that this test (and so the unetes it starts) runs in belongs to uid and
// has cpu, memory and pids: then limits are to be enforced.
func cgroupV2Delegated(uid int) bool {
	var st syscall.Statfs_t
	if err := syscall.Statfs("/sys/fs/cgroup", &st); err != nil || st.Type != 0x63677270 {
		return false
	}
	self, _ := os.ReadFile("/proc/self/cgroup")
	path, ok := strings.CutPrefix(strings.TrimSpace(string(self)), "0::")
	if !ok {
		return false
	}
	dir := filepath.Join("/sys/fs/cgroup", path)
	var fst syscall.Stat_t
	if err := syscall.Stat(filepath.Join(dir, "cgroup.procs"), &fst); err != nil || int(fst.Uid) != uid {
		return false
	}
	ctl, _ := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
	f := strings.Fields(string(ctl))
	return slices.Contains(f, "cpu") && slices.Contains(f, "memory") && slices.Contains(f, "pids")
}
