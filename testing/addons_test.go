package e2e

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// dnsApp is the web Deployment and Service, a headless Service over the
// same pods, and an ExternalName Service for a name only the test's
// resolver knows.
const dnsApp = `apiVersion: v1
kind: Service
metadata: {name: web-headless}
spec:
  clusterIP: None
  selector: {app: web}
  ports: [{name: http, port: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: outside}
spec:
  type: ExternalName
  externalName: outside.unetes.test
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  containers:
  - {name: c, image: ` + testImage + `, imagePullPolicy: Never, command: ["sleep", "3600"]}
`

// dnsPolicies are pods with each non-default DNS policy.
const dnsPolicies = `apiVersion: v1
kind: Pod
metadata: {name: policy-default}
spec:
  dnsPolicy: Default
  containers: [{name: c, image: ` + testImage + `, imagePullPolicy: Never, command: ["sleep", "3600"]}]
---
apiVersion: v1
kind: Pod
metadata: {name: policy-none}
spec:
  dnsPolicy: None
  dnsConfig: {nameservers: [192.0.2.53], searches: [example.test]}
  containers: [{name: c, image: ` + testImage + `, imagePullPolicy: Never, command: ["sleep", "3600"]}]
---
apiVersion: v1
kind: Pod
metadata: {name: policy-hostnet}
spec:
  hostNetwork: true
  dnsPolicy: ClusterFirstWithHostNet
  containers: [{name: c, image: ` + testImage + `, imagePullPolicy: Never, command: ["sleep", "3600"]}]
`

// lookup runs busybox nslookup in pod and returns its output (which
// nslookup prints also when the name does not resolve).
func (in *instance) lookup(pod string, args ...string) string {
	in.t.Helper()
	out, errOut, _ := in.kubectl(append([]string{"exec", pod, "--", "nslookup"}, args...)...)
	return out + errOut
}

// resolves checks that name, looked up in pod with busybox nslookup, has
// the address want.
func (in *instance) resolves(pod, name, want string) {
	in.t.Helper()
	out := in.lookup(pod, name)
	if !regexp.MustCompile(`Address:\s+` + regexp.QuoteMeta(want) + `\s`).MatchString(out + "\n") {
		in.t.Errorf("nslookup %s in %s: want %s, got:\n%s", name, pod, want, out)
	}
}

// resolvesAll checks that name, resolved in pod as libc would (search list,
// ndots; nettool's Go resolver), has exactly the addresses want.
func (in *instance) resolvesAll(pod, name string, want ...string) {
	in.t.Helper()
	out, errOut, code := in.kubectl("exec", pod, "--", "nettool", "lookup", name)
	got := strings.Fields(out)
	slices.Sort(got)
	slices.Sort(want)
	if code != 0 || !slices.Equal(got, want) {
		in.t.Errorf("resolve %s in %s: want %v, got %v (code %d %s)", name, pod, want, got, code, errOut)
	}
}

func TestClusterDNS(t *testing.T) {
	// The test's resolver on the host knows outside.unetes.test; the
	// instance reaches it through the NAT's relay, as it would the host's.
	u := asUser(t, *flagTestUser)
	rc := hostResolver(t, u, "127.0.0.54", "outside.unetes.test.", [4]byte{192, 0, 2, 77}, "")
	name := newName()
	in, apiPort := startKubeWith(t, u, name, "--resolv-conf", rc)
	if out, errOut, code := in.apply(webApp(30080) + "---\n" + dnsApp + "---\n" + dnsPolicies); code != 0 {
		t.Fatalf("apply: %d %s %s", code, out, errOut)
	}
	_, podIPs := in.rollout()
	in.mustKubectl("wait", "--for=condition=Ready", "pod/client", "pod/policy-default", "pod/policy-none", "pod/policy-hostnet", "--timeout=120s")
	webIP := in.mustKubectl("get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}")

	t.Run("kube-dns contract", func(t *testing.T) {
		out := in.mustKubectl("-n", "kube-system", "get", "svc", "kube-dns", "-o",
			`jsonpath={.spec.clusterIP} {range .spec.ports[*]}{.port}/{.protocol} {end}`)
		if strings.TrimSpace(out) != "10.96.0.10 53/UDP 53/TCP 9153/TCP" {
			t.Fatalf("kube-dns Service: %q", out)
		}
		if conf := in.inPod("client", "cat", "/etc/resolv.conf"); !strings.Contains(conf, "nameserver 10.96.0.10") ||
			!strings.Contains(conf, "search default.svc.cluster.local svc.cluster.local cluster.local") {
			t.Fatalf("pod resolv.conf:\n%s", conf)
		}
		if ev := in.mustKubectl("get", "events", "--field-selector", "reason=MissingClusterDNS", "-o", "name"); ev != "" {
			t.Fatalf("MissingClusterDNS events: %s", ev)
		}
	})
	t.Run("service names", func(t *testing.T) {
		in.resolves("client", "web", webIP)
		in.resolves("client", "web.default.svc.cluster.local", webIP)
		for _, n := range []string{"web", "web.default", "web.default.svc", "web.default.svc.cluster.local"} {
			in.resolvesAll("client", n, webIP)
		}
		in.resolvesAll("client", "kubernetes.default", "10.96.0.1")
		if out := in.inPod("client", "nettool", "get", "http://web/"); !strings.HasPrefix(strings.TrimSpace(out), "hello-from-web-") {
			t.Fatalf("GET http://web/ = %q", out)
		}
	})
	t.Run("headless service has one record per ready pod", func(t *testing.T) {
		in.resolvesAll("client", "web-headless", podIPs...)
	})
	t.Run("SRV of a named port", func(t *testing.T) {
		out := in.lookup("client", "-type=SRV", "_http._tcp.web-headless.default.svc.cluster.local")
		if n := strings.Count(out, " 8080 "); n != 2 {
			t.Fatalf("want 2 SRV records on port 8080, got:\n%s", out)
		}
	})
	t.Run("PTR and pod records", func(t *testing.T) {
		if out := in.lookup("client", webIP); !strings.Contains(out, "web.default.svc.cluster.local") {
			t.Fatalf("PTR of %s:\n%s", webIP, out)
		}
		dashed := strings.ReplaceAll(podIPs[0], ".", "-") + ".default.pod.cluster.local"
		in.resolves("client", dashed, podIPs[0])
	})
	t.Run("names outside the cluster and ExternalName", func(t *testing.T) {
		in.resolves("client", "outside.unetes.test", "192.0.2.77")
		in.resolvesAll("client", "outside.unetes.test", "192.0.2.77")
		out := in.lookup("client", "outside.default.svc.cluster.local")
		if !strings.Contains(out, "outside.unetes.test") || !strings.Contains(out, "192.0.2.77") {
			t.Fatalf("ExternalName: want a CNAME to outside.unetes.test and its address:\n%s", out)
		}
	})
	t.Run("dns policies", func(t *testing.T) {
		for pod, want := range map[string]string{
			"policy-default": "nameserver 10.0.2.3",
			"policy-none":    "nameserver 192.0.2.53",
			"policy-hostnet": "nameserver 10.96.0.10",
		} {
			if conf := in.inPod(pod, "cat", "/etc/resolv.conf"); !strings.Contains(conf, want) {
				t.Errorf("%s resolv.conf lacks %q:\n%s", pod, want, conf)
			}
		}
		in.resolvesAll("policy-hostnet", "web", webIP)
	})
	t.Run("status and logs", func(t *testing.T) {
		out, _, _ := u.unetes(t, "", "status", "--name", name)
		for _, a := range []string{"dns", "storage", "metrics"} {
			if !regexpLine(out, a+`\s+ready`) {
				t.Errorf("status does not report %s ready:\n%s", a, out)
			}
		}
		if out, _, code := u.unetes(t, "", "logs", "--name", name, "dns"); code != 0 {
			t.Errorf("logs dns: code %d %q", code, out)
		}
	})

	// Right after a restart, names resolve through the Service address at
	// once: no window of NXDOMAIN or of no answer.
	in.stop()
	again := launch(t, u, name, []string{"--api-port", strconv.Itoa(apiPort), "--resolv-conf", rc})
	out, errOut, code := again.exec("", "busybox", "nslookup", "web.default.svc.cluster.local", "10.96.0.10")
	if code != 0 || !strings.Contains(out, webIP) {
		t.Fatalf("nslookup right after restart: code %d\n%s%s", code, out, errOut)
	}
	again.rollout()
	again.execWhenBack("client", "echo")
	again.resolvesAll("client", "web", webIP)
}

// execWhenBack runs argv in pod once the pod runs again after a restart
// (until then the API shows the last run's status, and exec finds no
// container), and returns its output.
func (in *instance) execWhenBack(pod string, argv ...string) string {
	in.t.Helper()
	var out string
	waitFor(in.t, 3*time.Minute, "pod "+pod+" running again", func() bool {
		var code int
		out, _, code = in.kubectl(append([]string{"exec", pod, "--"}, argv...)...)
		return code == 0
	})
	return out
}

// volumeApp is a claim of the default class, a StatefulSet of 2 with a
// claim template, and a pod (non-root) that fills the claim.
const volumeApp = `apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  replicas: 2
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers:
      - {name: c, image: ` + testImage + `, imagePullPolicy: Never, command: ["sh", "-c", "hostname > /data/owner; exec sleep 3600"],
         volumeMounts: [{name: v, mountPath: /data}]}
  volumeClaimTemplates:
  - metadata: {name: v}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 100Mi}}
`

// writerPod writes into the claim data as uid 1000, in a directory only
// that uid may change.
const writerPod = `apiVersion: v1
kind: Pod
metadata: {name: writer}
spec:
  securityContext: {runAsUser: 1000, runAsGroup: 1000}
  containers:
  - {name: c, image: ` + testImage + `, imagePullPolicy: Never,
     command: ["sh", "-c", "mkdir -p /data/d && echo kept > /data/d/f && chmod 500 /data/d && exec sleep 3600"],
     volumeMounts: [{name: v, mountPath: /data}]}
  volumes: [{name: v, persistentVolumeClaim: {claimName: data}}]
`

const readerPod = `apiVersion: v1
kind: Pod
metadata: {name: reader}
spec:
  containers:
  - {name: c, image: ` + testImage + `, imagePullPolicy: Never, command: ["sleep", "3600"], volumeMounts: [{name: v, mountPath: /data}]}
  volumes: [{name: v, persistentVolumeClaim: {claimName: data}}]
`

func TestStorageAndMetrics(t *testing.T) {
	u := asUser(t, *flagTestUser)
	name := newName()
	in, apiPort := startKubeWith(t, u, name)
	ready := time.Now()
	storage := filepath.Join(u.home, ".local/share/unetes", name, "storage")

	t.Run("default StorageClass", func(t *testing.T) {
		out := in.mustKubectl("get", "storageclass", "local-path", "-o",
			`jsonpath={.metadata.annotations.storageclass\.kubernetes\.io/is-default-class} {.volumeBindingMode} {.reclaimPolicy} {.metadata.annotations.unetes\.io/capacity}`)
		if !strings.HasPrefix(out, "true WaitForFirstConsumer Delete not enforced") {
			t.Fatalf("local-path StorageClass: %q", out)
		}
	})
	if _, errOut, code := in.apply(volumeApp); code != 0 {
		t.Fatalf("apply: %s", errOut)
	}
	// WaitForFirstConsumer: no pod, no volume.
	time.Sleep(2 * time.Second)
	if phase := in.mustKubectl("get", "pvc", "data", "-o", "jsonpath={.status.phase}"); phase != "Pending" {
		t.Fatalf("claim without a consumer is %q, want Pending", phase)
	}
	t.Run("claim binds for its pod and outlives it", func(t *testing.T) {
		if _, errOut, code := in.apply(writerPod); code != 0 {
			t.Fatalf("apply: %s", errOut)
		}
		in.mustKubectl("wait", "--for=condition=Ready", "pod/writer", "--timeout=120s")
		if phase := in.mustKubectl("get", "pvc", "data", "-o", "jsonpath={.status.phase}"); phase != "Bound" {
			t.Fatalf("claim is %q, want Bound", phase)
		}
		in.mustKubectl("delete", "pod", "writer", "--grace-period=1", "--wait=true")
		if _, errOut, code := in.apply(readerPod); code != 0 {
			t.Fatalf("apply: %s", errOut)
		}
		in.mustKubectl("wait", "--for=condition=Ready", "pod/reader", "--timeout=120s")
		if out := in.inPod("reader", "cat", "/data/d/f"); strings.TrimSpace(out) != "kept" {
			t.Fatalf("file written by the first pod: %q", out)
		}
	})
	t.Run("a StatefulSet gets a volume per replica", func(t *testing.T) {
		in.mustKubectl("rollout", "status", "statefulset/db", "--timeout=180s")
		for _, pvc := range []string{"v-db-0", "v-db-1"} {
			if phase := in.mustKubectl("get", "pvc", pvc, "-o", "jsonpath={.status.phase}"); phase != "Bound" {
				t.Fatalf("%s is %q", pvc, phase)
			}
		}
		if out := in.inPod("db-1", "cat", "/data/owner"); strings.TrimSpace(out) != "db-1" {
			t.Fatalf("db-1's volume holds %q", out)
		}
	})
	t.Run("kubectl top node within a minute", func(t *testing.T) {
		var out, errOut string
		var code int
		waitFor(t, time.Minute-time.Since(ready), "kubectl top node", func() bool {
			out, errOut, code = in.kubectl("top", "node")
			return code == 0
		})
		if !strings.Contains(out, "unetes-"+name) || !regexp.MustCompile(`\d+m\s+\d+%\s+\d+Mi`).MatchString(out) {
			t.Fatalf("top node: %s%s", out, errOut)
		}
	})
	t.Run("kubectl top pod: figures only where pods have cgroups, and status says so", func(t *testing.T) {
		status, _, _ := u.unetes(t, "", "status", "--name", name)
		if cgroupV2Delegated(u.uid) {
			waitFor(t, time.Minute, "kubectl top pod reader", func() bool {
				out, _, code := in.kubectl("top", "pod", "reader")
				return code == 0 && strings.Contains(out, "reader")
			})
			return
		}
		if !strings.Contains(status, "node figures only") {
			t.Errorf("status does not say that pods have no figures:\n%s", status)
		}
		// Two scrapes have happened (top node answered): a pod figure
		// would be there by now, and it would be the whole host's.
		if out, errOut, code := in.kubectl("top", "pod"); code == 0 || !strings.Contains(strings.ToLower(errOut), "metrics not available") {
			t.Fatalf("top pod without per-pod cgroups: code %d\n%s%s", code, out, errOut)
		}
	})

	// Volumes survive stop and run.
	in.stop()
	again := launch(t, u, name, []string{"--api-port", strconv.Itoa(apiPort)})
	if out := again.execWhenBack("reader", "cat", "/data/d/f"); strings.TrimSpace(out) != "kept" {
		t.Fatalf("volume after restart: %q", out)
	}

	t.Run("deleting a claim deletes its directory", func(t *testing.T) {
		pv := again.mustKubectl("get", "pvc", "data", "-o", "jsonpath={.spec.volumeName}")
		dir := filepath.Join(storage, pv+"_default_data")
		if _, err := os.Stat(filepath.Join(dir, "d", "f")); err != nil {
			t.Fatalf("volume directory: %v", err)
		}
		again.mustKubectl("delete", "pod", "reader", "--grace-period=1", "--wait=true")
		again.mustKubectl("delete", "pvc", "data", "--wait=true")
		waitFor(t, time.Minute, "the volume and its directory gone", func() bool {
			_, err := os.Stat(dir)
			out, _, _ := again.kubectl("get", "pv", pv, "-o", "name")
			return os.IsNotExist(err) && out == ""
		})
	})
}

// TestAddonsDisabled: `--disable` removes what the add-ons made and pods
// fall back as upstream does without cluster DNS.
func TestAddonsDisabled(t *testing.T) {
	u := asUser(t, *flagTestUser)
	name := newName()
	in, apiPort := startKubeWith(t, u, name)
	in.mustKubectl("-n", "kube-system", "get", "svc", "kube-dns")
	lbPort := freePort(t, "tcp")
	if _, errOut, code := in.apply(lbService("lb", "none", lbPort, 80, "TCP")); code != 0 {
		t.Fatalf("apply: %s", errOut)
	}
	waitFor(t, 30*time.Second, "the LoadBalancer's address", func() bool { return in.ingress("lb") == "127.0.0.1 Proxy" })
	// A user's edit of an add-on's object outlives the restart (another
	// StorageClass is to be the default), and status says it was kept.
	if st, _, _ := u.unetes(t, "", "status", "--name", name); strings.Contains(st, "kept as edited") {
		t.Fatalf("nothing was edited yet, status says:\n%s", st)
	}
	const defaultClass = `jsonpath={.metadata.annotations.storageclass\.kubernetes\.io/is-default-class}`
	in.mustKubectl("annotate", "--overwrite", "storageclass", "local-path", "storageclass.kubernetes.io/is-default-class=false")
	ti := joinToken(t, u, name)
	in.mustKubectl("-n", "kube-system", "get", "secret", "bootstrap-token-"+ti.id)
	in.stop()

	again := launch(t, u, name, []string{"--api-port", strconv.Itoa(apiPort), "--disable", "dns,metrics,lb,join"})
	if v := again.mustKubectl("get", "storageclass", "local-path", "-o", defaultClass); v != "false" {
		t.Fatalf("the user's is-default-class=false after a restart: %q", v)
	}
	if st, _, _ := u.unetes(t, "", "status", "--name", name); !regexpLine(st, `storage\s+ready.*kept as edited: StorageClass local-path \(.*is-default-class.*kubectl-annotate`) {
		t.Fatalf("status does not say the edited StorageClass was kept:\n%s", st)
	}
	if ing := again.ingress("lb"); ing != "" {
		t.Fatalf("with --disable lb the Service keeps the address %q", ing)
	}
	if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", lbPort), time.Second); err == nil {
		c.Close()
		t.Fatalf("with --disable lb port %d is still published", lbPort)
	}
	if out, _, code := again.kubectl("-n", "kube-system", "get", "svc", "kube-dns"); code == 0 {
		t.Fatalf("kube-dns left with --disable dns: %s", out)
	}
	if out, _, code := again.kubectl("get", "apiservice", "v1beta1.metrics.k8s.io"); code == 0 {
		t.Fatalf("metrics APIService left with --disable metrics: %s", out)
	}
	// --disable join revokes the token: its Secret is gone and the
	// apiserver no longer takes it.
	if out, _, code := again.kubectl("-n", "kube-system", "get", "secret", "bootstrap-token-"+ti.id); code == 0 {
		t.Fatalf("the bootstrap token's Secret left with --disable join: %s", out)
	}
	if out, _, code := again.kubectl("-n", "kube-public", "get", "configmap", "cluster-info"); code == 0 {
		t.Fatalf("cluster-info left with --disable join: %s", out)
	}
	insecure := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	if code, m := call(t, insecure, "GET", fmt.Sprintf("https://127.0.0.1:%d/apis/certificates.k8s.io/v1/certificatesigningrequests", apiPort), ti.token, nil); code != http.StatusUnauthorized {
		t.Fatalf("the join token with --disable join: %d %v, want 401", code, m)
	}
	again.mustKubectl("get", "storageclass", "local-path")
	out, _, _ := u.unetes(t, "", "status", "--name", name)
	if !regexpLine(out, `join\s+disabled`) || !regexpLine(out, `dns\s+disabled`) || !regexpLine(out, `metrics\s+disabled`) || !regexpLine(out, `lb\s+disabled`) || !regexpLine(out, `storage\s+ready`) {
		t.Fatalf("status:\n%s", out)
	}
	if _, errOut, code := again.apply(fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: nodns}
spec:
  containers: [{name: c, image: %s, imagePullPolicy: Never, command: ["sleep", "3600"]}]
`, testImage)); code != 0 {
		t.Fatalf("apply: %s", errOut)
	}
	again.mustKubectl("wait", "--for=condition=Ready", "pod/nodns", "--timeout=120s")
	if conf := again.inPod("nodns", "cat", "/etc/resolv.conf"); !strings.Contains(conf, "nameserver 10.0.2.3") {
		t.Fatalf("without cluster DNS the pod should use the node's resolver:\n%s", conf)
	}
	waitFor(t, 30*time.Second, "a MissingClusterDNS event", func() bool {
		out, _, _ := again.kubectl("get", "events", "--field-selector", "reason=MissingClusterDNS", "-o", "name")
		return out != ""
	})
}
