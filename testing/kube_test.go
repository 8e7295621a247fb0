package e2e

import (
	"crypto/tls"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func (in *instance) kubectl(args ...string) (stdout, stderr string, code int) {
	in.t.Helper()
	return in.u.unetes(in.t, "", append([]string{"kubectl", "--name", in.name}, args...)...)
}

func (in *instance) mustKubectl(args ...string) string {
	in.t.Helper()
	out, errOut, code := in.kubectl(args...)
	if code != 0 {
		in.t.Fatalf("kubectl %v: code %d\n%s%s", args, code, out, errOut)
	}
	return out
}

func TestControlPlane(t *testing.T) {
	u := asUser(t, *flagTestUser)
	name := newName()
	port := strconv.Itoa(freePort(t, "tcp"))
	in := launch(t, u, name, []string{"--api-port", port, "-v"})
	for _, phase := range []string{"certs", "etcd", "apiserver ready", "controllers ready", "export KUBECONFIG="} {
		if !strings.Contains(in.out.String(), phase) {
			t.Errorf("run output lacks %q:\n%s", phase, in.out.String())
		}
	}
	// -v: the time line has run's phases and the sandbox's, add-ons too.
	for _, row := range []string{`run\s+node ready(\s+\d+){3}`, `sandbox\s+etcd(\s+\d+){3}`, `sandbox\s+kubelet and kube-proxy(\s+\d+){3}`, `add-on\s+dns(\s+\d+){3}`} {
		if !regexpLine(in.out.String(), row) {
			t.Errorf("run -v's time line lacks a row %s:\n%s", row, in.out.String())
		}
	}

	// status lists the nodes from the API.
	if st, errOut, code := u.unetes(t, "", "status", "--name", name); code != 0 || !regexpLine(st, `^  unetes-`+name+`\s+Ready \(10\.0\.2\.100, kubelet v1\.`) || !strings.Contains(st, "nodes:       1") {
		t.Errorf("status does not list the node as Ready: exit %d\n%s%s", code, st, errOut)
	}
	if out := in.mustKubectl("get", "--raw", "/readyz"); strings.TrimSpace(out) != "ok" {
		t.Fatalf("/readyz = %q", out)
	}
	in.mustKubectl("create", "namespace", "e2e")
	in.mustKubectl("-n", "e2e", "create", "configmap", "kept", "--from-literal=answer=42")

	// A second run of the running instance is refused as such (not for its
	// port), with the same API port or another, and writes nothing.
	pki := filepath.Join(u.home, ".local/share/unetes", name, "pki")
	before := treeState(t, pki)
	for _, p := range []string{port, strconv.Itoa(freePort(t, "tcp"))} {
		_, errOut, code := u.unetes(t, "", "run", "--name", name, "--api-port", p)
		if code == 0 || !strings.Contains(errOut, "already running") {
			t.Fatalf("second run with --api-port %s: code %d err %q", p, code, errOut)
		}
	}
	if after := treeState(t, pki); after != before {
		t.Fatalf("a refused run changed the certificates:\nbefore %s\nafter  %s", before, after)
	}

	// Anonymous: health endpoints only.
	anon := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	base := "https://" + net.JoinHostPort("127.0.0.1", port)
	if resp, err := anon.Get(base + "/api/v1/namespaces"); err != nil || (resp.StatusCode != 401 && resp.StatusCode != 403) {
		t.Fatalf("anonymous list namespaces: %v %v, want 401 or 403", resp, err)
	}
	if resp, err := anon.Get(base + "/readyz"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("anonymous /readyz: %v %v, want 200", resp, err)
	}

	out, _, code := u.unetes(t, "", "status", "--name", name)
	for _, c := range []string{"etcd", "apiserver", "controller-manager", "scheduler"} {
		if code != 0 || !regexpLine(out, c+`\s+ready`) {
			t.Errorf("status does not report %s ready:\n%s", c, out)
		}
	}
	for _, c := range []string{"etcd", "apiserver", "controller-manager", "scheduler"} {
		if out, _, code := u.unetes(t, "", "logs", "--name", name, c); code != 0 || out == "" {
			t.Errorf("logs %s: code %d, %d bytes", c, code, len(out))
		}
	}

	// Objects survive stop and run.
	in.stop()
	again := launch(t, u, name, []string{"--api-port", port})
	if out := again.mustKubectl("-n", "e2e", "get", "configmap", "kept", "-o", "jsonpath={.data.answer}"); out != "42" {
		t.Fatalf("configmap after restart: %q", out)
	}
	again.stop()

	// reset --force leaves nothing.
	if out, errOut, code := u.unetes(t, "", "reset", "--name", name, "--force"); code != 0 {
		t.Fatalf("reset: %d %s %s", code, out, errOut)
	}
	for _, d := range []string{
		filepath.Join("/tmp", fmt.Sprintf("unetes-%d", u.uid), name),
		filepath.Join(u.home, ".local/share/unetes", name),
		filepath.Join(u.home, ".config/unetes", name),
	} {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("%s still exists after reset (%v)", d, err)
		}
	}
}

// treeState lists the files under dir with their sizes and times.
func treeState(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			fmt.Fprintf(&b, "%s: %v\n", p, err)
			return nil
		}
		fi, _ := d.Info()
		fmt.Fprintf(&b, "%s %d %v\n", p, fi.Size(), fi.ModTime().UnixNano())
		return nil
	})
	return b.String()
}

func TestAPIPortTaken(t *testing.T) {
	u := asUser(t, *flagTestUser)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	_, errOut, code := u.unetes(t, "", "run", "--name", newName(), "--api-port", port)
	if code == 0 || !strings.Contains(errOut, "--api-port") || !strings.Contains(errOut, port) {
		t.Fatalf("run with a taken API port: code %d err %q", code, errOut)
	}
}

func TestResetNeedsConfirmation(t *testing.T) {
	u := asUser(t, *flagTestUser)
	in := startInstance(t, u)
	_, errOut, code := u.unetes(t, "no\n", "reset", "--name", in.name)
	if code == 0 || !strings.Contains(errOut, "nothing deleted") {
		t.Fatalf("reset without yes: code %d err %q", code, errOut)
	}
	if _, _, code := u.unetes(t, "", "status", "--name", in.name); code != 0 {
		t.Fatal("unconfirmed reset stopped the instance")
	}
}

func TestForeignDataDirRefusedAndKept(t *testing.T) {
	u := asUser(t, *flagTestUser)
	name := newName()
	pki := filepath.Join(u.home, ".local/share/unetes", name, "pki")
	if err := os.MkdirAll(pki, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"ca.crt", "ca.key"} {
		if err := os.WriteFile(filepath.Join(pki, f), []byte("not ours\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	chownTree(t, filepath.Join(u.home, ".local"), u)
	_, errOut, code := u.unetes(t, "", "run", "--name", name, "--api-port", strconv.Itoa(freePort(t, "tcp")))
	if code == 0 || !strings.Contains(errOut, "corrupt or foreign") {
		t.Fatalf("run on a foreign data dir: code %d err %q", code, errOut)
	}
	if b, _ := os.ReadFile(filepath.Join(pki, "ca.crt")); string(b) != "not ours\n" {
		t.Fatal("the foreign CA was changed")
	}
}
