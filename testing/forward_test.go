package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// freePort returns a host port that was free a moment ago.
func freePort(t *testing.T, network string) int {
	t.Helper()
	if strings.HasPrefix(network, "udp") {
		c, err := net.ListenPacket(network, "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	}
	l, err := net.Listen(network, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// background runs a long-lived command inside the instance until the test ends.
func (in *instance) background(argv ...string) *syncBuffer {
	in.t.Helper()
	out := &syncBuffer{}
	cmd := in.u.command(work.unetes, append([]string{"exec", "--name", in.name, "--"}, argv...)...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		in.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	in.t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
	})
	return out
}

// serveInside starts nettool's TCP greeter (or UDP echo) on port inside and
// waits until it listens.
func (in *instance) serveInside(mode string, port int) {
	in.t.Helper()
	out := in.background(work.nettool, mode, ":"+strconv.Itoa(port))
	waitFor(in.t, 10*time.Second, mode+" listening inside", func() bool { return strings.Contains(out.String(), "listening") })
}

func (in *instance) forward(args ...string) (stdout, stderr string, code int) {
	in.t.Helper()
	return in.u.unetes(in.t, "", append([]string{"forward", "--name", in.name}, args...)...)
}

func (in *instance) mustForward(args ...string) {
	in.t.Helper()
	if out, errOut, code := in.forward(args...); code != 0 {
		in.t.Fatalf("unetes forward %v: code %d out %q err %q", args, code, out, errOut)
	}
}

// greet connects to addr, expects the greeter's "from" line and an echo.
func greet(addr string) (from string, err error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("read greeting: %w", err)
	}
	if _, err := io.WriteString(c, "ping\n"); err != nil {
		return "", err
	}
	echo, err := r.ReadString('\n')
	if err != nil || echo != "ping\n" {
		return "", fmt.Errorf("echo %q: %v", echo, err)
	}
	return strings.TrimSpace(strings.TrimPrefix(line, "from ")), nil
}

func TestForwardHTTPServerFromHost(t *testing.T) {
	u := asUser(t, *flagTestUser)
	in := startInstance(t, u)
	in.background("sh", "-c", "mkdir -p /tmp/www && echo hello-from-inside > /tmp/www/index.html && exec busybox httpd -f -p 80 -h /tmp/www")
	hp := freePort(t, "tcp")
	in.mustForward(fmt.Sprintf("%d:80", hp))
	var body []byte
	waitFor(t, 10*time.Second, "HTTP through the forward", func() bool {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", hp))
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, _ = io.ReadAll(resp.Body)
		return resp.StatusCode == 200
	})
	if strings.TrimSpace(string(body)) != "hello-from-inside" {
		t.Fatalf("body %q", body)
	}
	// Forwards listen on 127.0.0.1 unless asked: the host's other address is closed.
	if c, err := net.DialTimeout("tcp", net.JoinHostPort(hostIP(t).String(), strconv.Itoa(hp)), time.Second); err == nil {
		c.Close()
		t.Fatalf("forward without an address listens beyond 127.0.0.1")
	}
}

func TestForwardUDPEcho(t *testing.T) {
	in := startInstance(t, asUser(t, *flagTestUser))
	in.serveInside("userve", 5353)
	hp := freePort(t, "udp")
	in.mustForward(fmt.Sprintf("%d:5353/udp", hp))
	var got string
	var err error
	waitFor(t, 10*time.Second, "a UDP echo through the forward", func() bool {
		got, err = udpRoundTrip(fmt.Sprintf("127.0.0.1:%d", hp))
		return err == nil
	})
	if got != "echo ping" {
		t.Fatalf("got %q", got)
	}
}

func TestForwardSourceAddressAndAllAddresses(t *testing.T) {
	in := startInstance(t, asUser(t, *flagTestUser))
	in.serveInside("serve", 81)
	hp := freePort(t, "tcp")
	in.mustForward(fmt.Sprintf("0.0.0.0:%d:81", hp))
	ip := hostIP(t).String()
	from, err := greet(net.JoinHostPort(ip, strconv.Itoa(hp)))
	if err != nil {
		t.Fatal(err)
	}
	// A client on the host's own address keeps its address inside (IP_TRANSPARENT).
	if host, _, _ := net.SplitHostPort(from); host != ip {
		t.Fatalf("target saw the client as %s, want %s", from, ip)
	}
}

func TestForwardListRemoveAndSurvivesRestart(t *testing.T) {
	u := asUser(t, *flagTestUser)
	in := startInstance(t, u)
	in.serveInside("serve", 81)
	a, b := freePort(t, "tcp"), freePort(t, "udp")
	in.mustForward(fmt.Sprintf("%d:81", a))
	in.mustForward(fmt.Sprintf("127.0.0.1:%d:53/udp", b))
	out, _, code := in.forward("--list")
	if code != 0 || !strings.Contains(out, "HOST ADDRESS") ||
		!regexpLine(out, fmt.Sprintf(`127.0.0.1\s+%d\s+81\s+tcp`, a)) || !regexpLine(out, fmt.Sprintf(`127.0.0.1\s+%d\s+53\s+udp`, b)) {
		t.Fatalf("list: code %d\n%s", code, out)
	}
	in.mustForward("--remove", fmt.Sprintf("%d/udp", b))
	if out, _, _ := in.forward("--list"); strings.Contains(out, strconv.Itoa(b)) {
		t.Fatalf("removed forward still listed:\n%s", out)
	}

	// Stop and run the same name again: the forward comes back.
	in.stop()
	again := startInstanceNamed(t, u, in.name)
	if !strings.Contains(again.out.String(), fmt.Sprintf("127.0.0.1:%d/tcp -> 81", a)) {
		t.Fatalf("run did not report the restored forward:\n%s", again.out.String())
	}
	again.serveInside("serve", 81)
	if _, err := greet(fmt.Sprintf("127.0.0.1:%d", a)); err != nil {
		t.Fatalf("restored forward: %v", err)
	}
	if out, _, _ := again.forward("--list"); strings.Contains(out, strconv.Itoa(b)) {
		t.Fatalf("removed forward came back after restart:\n%s", out)
	}
}

func TestForward200ConcurrentConnections(t *testing.T) {
	in := startInstance(t, asUser(t, *flagTestUser))
	in.serveInside("serve", 81)
	hp := freePort(t, "tcp")
	in.mustForward(fmt.Sprintf("%d:81", hp))
	addr := fmt.Sprintf("127.0.0.1:%d", hp)
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := greet(addr); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	var n int
	var first error
	for err := range errs {
		if first == nil {
			first = err
		}
		n++
	}
	if n > 0 {
		t.Fatalf("%d of 200 connections through one forward failed, first: %v", n, first)
	}
}

func TestPublishAtStart(t *testing.T) {
	u := asUser(t, *flagTestUser)
	hp := freePort(t, "tcp")
	in := startInstance(t, u, "-p", fmt.Sprintf("%d:81", hp))
	in.serveInside("serve", 81)
	if _, err := greet(fmt.Sprintf("127.0.0.1:%d", hp)); err != nil {
		t.Fatalf("-p forward: %v", err)
	}
	if out, _, _ := in.forward("--list"); !strings.Contains(out, strconv.Itoa(hp)) {
		t.Fatalf("-p forward not listed:\n%s", out)
	}
}

func TestForwardErrorsChangeNothing(t *testing.T) {
	u := asUser(t, *flagTestUser)
	in := startInstance(t, u)
	hp := freePort(t, "tcp")
	in.mustForward(fmt.Sprintf("%d:81", hp))
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := busy.Addr().(*net.TCPAddr).Port
	saved := filepath.Join(u.home, ".local/share/unetes", in.name, "forwards.json")
	before := snapshot(t, in, saved)

	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"malformed spec", []string{"80:80:80:80"}, []string{"malformed forward", "[IP:]HOSTPORT:PORT"}},
		{"bad protocol", []string{"8080:80/sctp"}, []string{"neither tcp nor udp"}},
		{"host port in use", []string{fmt.Sprintf("%d:81", busyPort)}, []string{"already taken", strconv.Itoa(busyPort)}},
		{"privileged port", []string{"81:81"}, []string{"net.ipv4.ip_unprivileged_port_start", "setcap cap_net_bind_service"}},
		{"duplicate", []string{fmt.Sprintf("%d:82", hp)}, []string{"already forwards to port 81", "--remove"}},
		{"remove missing", []string{"--remove", "65000"}, []string{"no such forward", "127.0.0.1:65000/tcp"}},
		{"remove malformed", []string{"--remove", "x:y"}, []string{"malformed forward"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errOut, code := in.forward(tc.args...)
			if code == 0 {
				t.Fatalf("unetes forward %v succeeded", tc.args)
			}
			for _, w := range tc.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr %q lacks %q", errOut, w)
				}
			}
			if after := snapshot(t, in, saved); after != before {
				t.Fatalf("a failed forward changed state:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
	_, errOut, code := u.unetes(t, "", "forward", "--name", "not-running-here", "8080:80")
	if code == 0 || !strings.Contains(errOut, `"not-running-here" is not running`) {
		t.Fatalf("forward to a stopped instance: code %d err %q", code, errOut)
	}
}

// snapshot is the listed and saved forwards, to prove an error changed nothing.
func snapshot(t *testing.T, in *instance, saved string) string {
	out, _, _ := in.forward("--list")
	b, _ := os.ReadFile(saved)
	return out + string(b)
}

func TestRootlessctlCompatibility(t *testing.T) {
	u := asUser(t, *flagTestUser)
	in := startInstance(t, u)
	ctl := filepath.Join(work.dir, "rootlessctl")
	if _, err := os.Stat(ctl); err != nil {
		out, err := exec.Command("go", "build", "-o", ctl, "github.com/rootless-containers/rootlesskit/v3/cmd/rootlessctl").CombinedOutput()
		if err != nil {
			t.Fatalf("build rootlessctl: %v\n%s", err, out)
		}
	}
	sock := filepath.Join(in.stateDir(), "api.sock")
	hp := freePort(t, "tcp")
	cmd := u.command(ctl, "--socket", sock, "add-ports", fmt.Sprintf("127.0.0.1:%d:81/tcp", hp))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("rootlessctl add-ports: %v\n%s", err, out)
	}
	out, err := u.command(ctl, "--socket", sock, "list-ports").CombinedOutput()
	if err != nil || !strings.Contains(string(out), strconv.Itoa(hp)) {
		t.Fatalf("rootlessctl list-ports: %v\n%s", err, out)
	}
	if out, _, _ := in.forward("--list"); !strings.Contains(out, strconv.Itoa(hp)) {
		t.Fatalf("port added by rootlessctl not listed by unetes:\n%s", out)
	}
	out, err = u.command(ctl, "--socket", sock, "info").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "unetes-netstack") {
		t.Fatalf("rootlessctl info: %v\n%s", err, out)
	}
}
