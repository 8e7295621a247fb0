package e2e

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// lbService is a LoadBalancer Service on port (protocol TCP or UDP) in
// front of the pods labelled app=app, whose port is target.
func lbService(name, app string, port, target int, proto string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Service
metadata: {name: %s}
spec:
  type: LoadBalancer
  selector: {app: %s}
  ports: [{port: %d, targetPort: %d, protocol: %s}]
`, name, app, port, target, proto)
}

// refused waits until nothing listens on the host's 127.0.0.1:port.
func refused(t *testing.T, port int, what string) {
	t.Helper()
	waitFor(t, 30*time.Second, what+": 127.0.0.1:"+strconv.Itoa(port)+" closed", func() bool {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			c.Close()
		}
		return errors.Is(err, syscall.ECONNREFUSED)
	})
}

// ingress is a Service's status.loadBalancer.ingress as "IP MODE".
func (in *instance) ingress(svc string) string {
	out, _, _ := in.kubectl("get", "service", svc, "-o", `jsonpath={.status.loadBalancer.ingress[*].ip} {.status.loadBalancer.ingress[*].ipMode}`)
	return strings.TrimSpace(out)
}

// events lists the messages of the events of object name with reason.
func (in *instance) events(name, reason string) string {
	out, _, _ := in.kubectl("get", "events", "--field-selector", "involvedObject.name="+name+",reason="+reason,
		"-o", `jsonpath={range .items[*]}{.type}: {.message}{"\n"}{end}`)
	return out
}

// udpRoundTrip sends ping to addr and returns the answer.
func udpRoundTrip(addr string) (string, error) {
	c, err := net.Dial("udp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("ping")); err != nil {
		return "", err
	}
	buf := make([]byte, 100)
	n, err := c.Read(buf)
	return string(buf[:n]), err
}

// unprivilegedPortStart is the lowest port an ordinary user may bind.
func unprivilegedPortStart(t *testing.T) int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start")
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestLoadBalancerServicesAndHostPorts(t *testing.T) {
	u := asUser(t, *flagTestUser)
	name := newName()
	in, apiPort, _ := startWebApp(t, u, name, 30081)

	// A LoadBalancer Service serves on the host's 127.0.0.1 at its port;
	// its status has the address, in Proxy mode.
	p, p2 := freePort(t, "tcp"), freePort(t, "tcp")
	if _, errOut, code := in.apply(lbService("lb-a", "web", p, 8080, "TCP")); code != 0 {
		t.Fatalf("apply: %s", errOut)
	}
	serves(t, p, "LoadBalancer lb-a")
	waitFor(t, 30*time.Second, "lb-a's status", func() bool { return in.ingress("lb-a") == "127.0.0.1 Proxy" })
	list, _, _ := in.forward("--list")
	if !regexpLine(list, fmt.Sprintf(`127.0.0.1\s+%d\s+%d\s+tcp\s+service\s+LoadBalancer Service default/lb-a`, p, p)) {
		t.Fatalf("forward --list lacks lb-a:\n%s", list)
	}
	if out, _, _ := u.unetes(t, "", "status", "--name", name); !strings.Contains(out, fmt.Sprintf("127.0.0.1:%d/tcp -> LoadBalancer Service default/lb-a", p)) {
		t.Fatalf("status does not list lb-a's port:\n%s", out)
	}

	// UDP round trip through a LoadBalancer port.
	up := freePort(t, "udp")
	if _, errOut, code := in.apply(`apiVersion: v1
kind: Pod
metadata: {name: echo, labels: {app: echo}}
spec:
  containers:
  - {name: c, image: ` + testImage + `, imagePullPolicy: Never, command: ["/bin/nettool", "userve", ":5353"]}
---
` + lbService("lb-udp", "echo", up, 5353, "UDP")); code != 0 {
		t.Fatalf("apply: %s", errOut)
	}
	in.mustKubectl("wait", "--for=condition=Ready", "pod/echo", "--timeout=120s")
	var got string
	var err error
	waitFor(t, time.Minute, "UDP echo through lb-udp", func() bool {
		got, err = udpRoundTrip(fmt.Sprintf("127.0.0.1:%d", up))
		return err == nil && got == "echo ping"
	})

	// A second Service asking for the same port stays pending with a
	// Warning Event; others are unaffected.
	if _, errOut, code := in.apply(lbService("lb-b", "web", p, 8080, "TCP")); code != 0 {
		t.Fatalf("apply: %s", errOut)
	}
	waitFor(t, 30*time.Second, "a Warning Event on lb-b", func() bool {
		ev := in.events("lb-b", "SyncLoadBalancerFailed")
		return strings.Contains(ev, "Warning: ") && strings.Contains(ev, "LoadBalancer Service default/lb-a")
	})
	if ing := in.ingress("lb-b"); ing != "" {
		t.Fatalf("lb-b has an address while its port is taken: %q", ing)
	}
	// A privileged port: an Event with the fix, nothing crashes.
	if start := unprivilegedPortStart(t); start > 80 {
		if _, errOut, code := in.apply(lbService("lb-80", "web", 80, 8080, "TCP")); code != 0 {
			t.Fatalf("apply: %s", errOut)
		}
		waitFor(t, 30*time.Second, "a Warning Event on lb-80", func() bool {
			ev := in.events("lb-80", "SyncLoadBalancerFailed")
			return strings.Contains(ev, "net.ipv4.ip_unprivileged_port_start") && strings.Contains(ev, "setcap")
		})
	} else {
		t.Logf("ordinary users may bind port 80 on this host (ip_unprivileged_port_start %d): the privileged-port case cannot arise", start)
	}
	serves(t, p, "lb-a, next to the pending ones")

	// Editing lb-a's port moves it; the freed port goes to lb-b at once.
	in.mustKubectl("patch", "service", "lb-a", "--type=json", "-p", fmt.Sprintf(`[{"op":"replace","path":"/spec/ports/0/port","value":%d}]`, p2))
	serves(t, p2, "lb-a on its new port")
	waitFor(t, 30*time.Second, "lb-b's status", func() bool { return in.ingress("lb-b") == "127.0.0.1 Proxy" })
	serves(t, p, "lb-b on the port lb-a gave up")
	// Deleting a Service closes its port.
	in.mustKubectl("delete", "service", "lb-a")
	refused(t, p2, "lb-a deleted")

	// A pod's hostPort is reachable from the host, and goes with the pod.
	hp := freePort(t, "tcp")
	if _, errOut, code := in.apply(fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: hostport}
spec:
  containers:
  - name: c
    image: %s
    imagePullPolicy: Never
    command: ["sh", "-c", "echo hello-from-web-hostport > /tmp/index.html; exec httpd -f -p 8080 -h /tmp"]
    ports: [{containerPort: 8080, hostPort: %d}]
`, testImage, hp)); code != 0 {
		t.Fatalf("apply: %s", errOut)
	}
	serves(t, hp, "the hostPort")
	if list, _, _ := in.forward("--list"); !regexpLine(list, fmt.Sprintf(`127.0.0.1\s+%d\s+%d\s+tcp\s+hostPort\s+hostPort of pod default/hostport`, hp, hp)) {
		t.Fatalf("forward --list lacks the hostPort:\n%s", list)
	}
	in.mustKubectl("delete", "pod", "hostport", "--wait=false")
	refused(t, hp, "hostPort pod deleted")

	// The API forward and published ports cannot be removed, and no
	// message suggests removing the API's.
	for _, k := range []string{strconv.Itoa(apiPort), strconv.Itoa(p)} {
		_, errOut, code := in.forward("--remove", k)
		if code == 0 || !strings.Contains(errOut, "cannot be removed") {
			t.Fatalf("forward --remove %s: code %d err %q", k, code, errOut)
		}
	}
	if _, errOut, code := in.forward(fmt.Sprintf("%d:80", apiPort)); code == 0 || strings.Contains(errOut, "--remove") || !strings.Contains(errOut, "Kubernetes API") {
		t.Fatalf("forward onto the API port: code %d err %q", code, errOut)
	}

	// After stop/run the published ports serve again; nothing stale stays.
	in.stop()
	again := launch(t, u, name, []string{"--api-port", strconv.Itoa(apiPort)})
	again.rollout()
	serves(t, p, "lb-b after stop/run")
	waitFor(t, time.Minute, "UDP echo after stop/run", func() bool {
		got, err = udpRoundTrip(fmt.Sprintf("127.0.0.1:%d", up))
		return err == nil && got == "echo ping"
	})
	refused(t, p2, "deleted lb-a after stop/run")
}

func TestForwardToService(t *testing.T) {
	u := asUser(t, *flagTestUser)
	name := newName()
	in, apiPort, before := startWebApp(t, u, name, 30082)
	hp := freePort(t, "tcp")

	// Bad names are refused before anything changes.
	for _, tc := range []struct{ args, want []string }{
		{[]string{"svc/nope", fmt.Sprintf("%d:80", hp)}, []string{"Service default/nope does not exist"}},
		{[]string{"svc/web", fmt.Sprintf("%d:81", hp)}, []string{"has no port 81/tcp", "80/tcp"}},
		{[]string{"svc/Web", fmt.Sprintf("%d:80", hp)}, []string{"svc/NAME"}},
		{[]string{"svc/web"}, []string{"which ports?", "svc/web 8080:80"}},
	} {
		if _, errOut, code := in.forward(tc.args...); code == 0 || !strings.Contains(errOut, tc.want[0]) || !strings.Contains(errOut, tc.want[len(tc.want)-1]) {
			t.Fatalf("forward %v: code %d err %q", tc.args, code, errOut)
		}
	}
	in.mustForward("svc/web", fmt.Sprintf("%d:80", hp))
	serves(t, hp, "forward to svc/web")
	if list, _, _ := in.forward("--list"); !regexpLine(list, fmt.Sprintf(`127.0.0.1\s+%d\s+80\s+tcp\s+user\s+Service default/web`, hp)) {
		t.Fatalf("forward --list lacks the forward to svc/web:\n%s", list)
	}

	// It follows the Service to new pods.
	in.mustKubectl("rollout", "restart", "deployment/web")
	after, _ := in.rollout()
	for _, n := range after {
		for _, b := range before {
			if n == b {
				t.Fatalf("rollout restart kept pod %s", n)
			}
		}
	}
	waitFor(t, time.Minute, "the forward reaching the new pods", func() bool {
		out, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/", hp))
		return err == nil && (out == "hello-from-"+after[0] || out == "hello-from-"+after[1])
	})

	// It survives stop/run.
	in.stop()
	again := launch(t, u, name, []string{"--api-port", strconv.Itoa(apiPort)})
	again.rollout()
	serves(t, hp, "forward to svc/web after stop/run")
}
