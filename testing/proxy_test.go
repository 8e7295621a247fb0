package e2e

import (
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// forwardProxy is an HTTP proxy (absolute-URI requests and CONNECT) on
// addr that serves only the targets in allow and records every target it
// is asked for.
type forwardProxy struct {
	addr  string
	allow []string
	mu    sync.Mutex
	asked []string
}

func startProxy(t *testing.T, addr string, allow ...string) *forwardProxy {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	p := &forwardProxy{addr: l.Addr().String(), allow: allow}
	srv := &http.Server{Handler: p}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return p
}

func (p *forwardProxy) targets() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.asked)
}

func (p *forwardProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	target := r.Host
	p.mu.Lock()
	p.asked = append(p.asked, target)
	p.mu.Unlock()
	if !slices.Contains(p.allow, target) { // nothing but this machine's test servers
		http.Error(w, "not a target of this test", http.StatusBadGateway)
		return
	}
	if r.Method == http.MethodConnect {
		up, err := net.DialTimeout("tcp", target, 5*time.Second)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		w.WriteHeader(http.StatusOK)
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			up.Close()
			return
		}
		go func() { io.Copy(up, conn); up.Close() }()
		io.Copy(conn, up)
		conn.Close()
		return
	}
	out := r.Clone(r.Context())
	out.RequestURI = ""
	resp, err := (&http.Transport{}).RoundTrip(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
}

// With HTTP(S)_PROXY in its environment (as on many corporate and HPC
// hosts), unetes gets ready, pulls go through the proxy, and the cluster's
// own traffic (apiserver to kubelet and metrics API, clients to the API)
// does not.
func TestProxyFromTheEnvironment(t *testing.T) {
	u := asUser(t, *flagTestUser)
	reg, pulls := registry(t, hostIP(t).String()+":0", "e2e/busybox", "proxied")
	proxy := startProxy(t, hostIP(t).String()+":0", reg)
	name := newName()
	plainHTTP(t, u, name, reg)
	url := "http://" + proxy.addr
	in := launchEnv(t, u, name, []string{"--api-port", strconv.Itoa(freePort(t, "tcp"))},
		[]string{"HTTP_PROXY=" + url, "HTTPS_PROXY=" + url, "NO_PROXY=corp.invalid"})
	if !strings.Contains(in.out.String(), "proxy from HTTP_PROXY, HTTPS_PROXY") {
		t.Fatalf("run does not say it uses the proxy:\n%s", in.out.String())
	}
	image := reg + "/e2e/busybox:proxied"
	if _, errOut, code := in.apply(`apiVersion: v1
kind: Pod
metadata: {name: proxied}
spec:
  containers: [{name: c, image: "` + image + `", command: ["sh", "-c", "echo pulled-through-the-proxy; exec sleep 3600"]}]
`); code != 0 {
		t.Fatalf("apply: %s", errOut)
	}
	if out, errOut, code := in.kubectl("wait", "--for=condition=Ready", "pod/proxied", "--timeout=120s"); code != 0 {
		ev, _, _ := in.kubectl("describe", "pod", "proxied")
		t.Fatalf("pod from %s not ready: %s %s\n%s", image, out, errOut, ev)
	}
	// kubectl logs: the apiserver reaches the kubelet, not through the proxy.
	if logs := in.mustKubectl("logs", "proxied"); logs != "pulled-through-the-proxy\n" {
		t.Fatalf("logs %q", logs)
	}
	asked := proxy.targets()
	if pulls() == 0 || !slices.Contains(asked, reg) {
		t.Fatalf("the pull did not go through the proxy: %d blobs served, the proxy was asked for %q", pulls(), asked)
	}
	for _, a := range asked {
		if a != reg {
			t.Fatalf("the proxy was asked for %s (all: %q): the cluster's own traffic must bypass it", a, asked)
		}
	}
	// Inside (the sandbox, which runs containerd, and whatever it starts),
	// the user's NO_PROXY entries stay, first.
	var sandbox []int
	for _, pid := range procsOf(u.uid, name) {
		if cmd, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline")); strings.Contains(string(cmd), "_sandbox\x00") {
			sandbox = append(sandbox, pid)
		}
	}
	if len(sandbox) != 1 {
		t.Fatalf("want one sandbox process:\n%s", describe(procsOf(u.uid, name)))
	}
	env, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(sandbox[0]), "environ"))
	if err != nil {
		t.Fatal(err)
	}
	vars := strings.Split(string(env), "\x00")
	for _, v := range []string{"NO_PROXY", "no_proxy"} {
		i := slices.IndexFunc(vars, func(kv string) bool { return strings.HasPrefix(kv, v+"=") })
		if i < 0 || !strings.HasPrefix(vars[i], v+"=corp.invalid,localhost,127.0.0.1,") || !strings.Contains(vars[i], ",10.96.0.0/16,") {
			t.Fatalf("the sandbox's %s: %q", v, vars[max(i, 0)])
		}
	}
}
