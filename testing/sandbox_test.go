package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/unetes/unetes/testing/internal/hostaddr"
)

func TestOutboundTCPAndUDPToHostAddress(t *testing.T) {
	ip := hostIP(t)
	tcpAddr := tcpEchoServer(t, ip.String()+":0")
	udpAddr := udpEchoServer(t, ip.String()+":0")
	in := startInstance(t, asUser(t, *flagTestUser))

	out, errOut, code := in.nettool("tcp", tcpAddr)
	if code != 0 || strings.TrimSpace(out) != "ping" {
		t.Fatalf("TCP %s from inside: code %d out %q err %q", tcpAddr, code, out, errOut)
	}
	out, errOut, code = in.nettool("udp", udpAddr)
	if code != 0 || strings.TrimSpace(out) != "ping-udp" {
		t.Fatalf("UDP %s from inside: code %d out %q err %q", udpAddr, code, out, errOut)
	}
}

// Where the host has IPv6 (a default route and a global address), the
// namespace has it through the NAT: a ULA address and a default route, and
// flows to the host's own IPv6 address as on the host. Where it has none,
// the namespace has no global IPv6 address.
func TestIPv6AsTheHostHasIt(t *testing.T) {
	route, _ := exec.Command("ip", "-6", "route", "show", "default").Output()
	ip6, addrErr := hostaddr.IPv6()
	hasV6 := addrErr == nil && strings.HasPrefix(string(route), "default via ")
	var tcpAddr, udpAddr, closed string
	if hasV6 {
		tcpAddr = tcpEchoServer(t, net.JoinHostPort(ip6.String(), "0"))
		udpAddr = udpEchoServer(t, net.JoinHostPort(ip6.String(), "0"))
		closed = net.JoinHostPort(ip6.String(), strconv.Itoa(freePort(t, "tcp")))
	}
	in := startInstance(t, asUser(t, *flagTestUser))
	global, _, code := in.exec("", "ip", "-6", "-o", "addr", "show", "scope", "global")
	if code != 0 {
		t.Fatalf("ip -6 addr inside: exit %d", code)
	}
	if !hasV6 {
		if strings.TrimSpace(global) != "" {
			t.Fatalf("the host has no IPv6 (route %q, %v), the namespace has:\n%s", route, addrErr, global)
		}
		return
	}
	if !strings.Contains(global, "inet6 fd75:6e65:7465::100/64") {
		t.Fatalf("no ULA address inside:\n%s", global)
	}
	if out, _, _ := in.exec("", "ip", "-6", "route", "show", "default"); !strings.HasPrefix(out, "default via fd75:6e65:7465::2 dev tap0") {
		t.Fatalf("IPv6 default route inside: %q", out)
	}
	if out, errOut, code := in.nettool("tcp", tcpAddr); code != 0 || strings.TrimSpace(out) != "ping" {
		t.Fatalf("TCP %s from inside: code %d out %q err %q", tcpAddr, code, out, errOut)
	}
	if out, errOut, code := in.nettool("udp", udpAddr); code != 0 || strings.TrimSpace(out) != "ping-udp" {
		t.Fatalf("UDP %s from inside: code %d out %q err %q", udpAddr, code, out, errOut)
	}
	if out, _, _ := in.nettool("dial", closed, "10"); !strings.HasPrefix(out, "refused after 0s") {
		t.Fatalf("a closed IPv6 port of the host from inside: %q", out)
	}
	// ICMPv6: echo to the gateway (answered by the NAT) and to the host (a
	// ping socket of the host's), and the errors the host's kernel reports
	// come back as ICMPv6 the namespace's kernel turns into the same errno.
	for _, dst := range []string{"fd75:6e65:7465::2", ip6.String()} {
		if out, errOut, code := in.exec("", "busybox", "ping", "-6", "-c", "1", "-W", "3", dst); code != 0 || !strings.Contains(out, "1 packets received") {
			t.Errorf("ping -6 %s from inside: code %d out %q err %q", dst, code, out, errOut)
		}
	}
	u, err := net.ListenUDP("udp6", &net.UDPAddr{IP: ip6})
	if err != nil {
		t.Fatal(err)
	}
	uclosed := u.LocalAddr().String()
	u.Close()
	if out, errOut, code := in.nettool("uprobe", uclosed); code != 0 || strings.TrimSpace(out) != "refused" {
		t.Errorf("datagrams to a closed IPv6 UDP port: %q %q %d; want refused (ICMPv6 port unreachable)", out, errOut, code)
	}
	hostRoute(t, "unreachable", "2001:db8:dead::/48")
	hostRoute(t, "throw", "2001:db8:beef::/48")
	for addr, want := range map[string]string{"[2001:db8:dead::7]:80": "host unreachable after 0s", "[2001:db8:beef::7]:80": "net unreachable after 0s"} {
		if out, errOut, code := in.nettool("dial", addr, "5"); code != 0 || !strings.HasPrefix(out, want) {
			t.Errorf("dial to %s: %q %q %d; want %q (an ICMPv6 unreachable, as the host got EHOSTUNREACH / ENETUNREACH)", addr, out, errOut, code, want)
		}
	}
	// The echo is the destination's, not the NAT's: nothing answers for an
	// address the host cannot reach.
	if out, _, code := in.exec("", "busybox", "ping", "-6", "-c", "1", "-W", "2", "2001:db8:dead::7"); code == 0 || strings.Contains(out, "1 packets received") {
		t.Errorf("ping -6 of an address the host cannot reach was answered: %q", out)
	}
	// kube-proxy reads IPv6's `all` switch: it stays off.
	if out, _, _ := in.exec("", "cat", "/proc/sys/net/ipv6/conf/all/disable_ipv6"); strings.TrimSpace(out) != "1" {
		t.Fatalf("net.ipv6.conf.all.disable_ipv6 inside = %q, want 1", out)
	}
}

func TestInsideIsANewRootlessNamespace(t *testing.T) {
	u := asUser(t, *flagTestUser)
	in := startInstance(t, u)
	out, errOut, code := in.exec("", "sh", "-c", "id -u; cat /proc/self/uid_map; ip -o -4 addr show dev tap0; cat /etc/resolv.conf; echo $$")
	if code != 0 {
		t.Fatalf("exec: %d %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if lines[0] != "0" {
		t.Errorf("uid inside = %q, want 0", lines[0])
	}
	m := strings.Fields(lines[1])
	if len(m) != 3 || m[0] != "0" || m[1] != strconv.Itoa(u.uid) {
		t.Errorf("uid_map first line %q: want 0 -> %d", lines[1], u.uid)
	}
	if u.uid != 0 && (len(lines) < 3 || !strings.Contains(out, "1 ")) {
		t.Errorf("sub-ID range not mapped:\n%s", out)
	}
	if !strings.Contains(out, "10.0.2.100/24") {
		t.Errorf("tap0 has no 10.0.2.100/24:\n%s", out)
	}
	if !strings.Contains(out, "nameserver 10.0.2.3") {
		t.Errorf("resolv.conf does not point at 10.0.2.3:\n%s", out)
	}
	localCongestion(t, in)
}

// localCongestion checks the instance's default TCP congestion control and
// returns it with the host's. TCP inside only reaches local peers: a host
// default that paces (BBR) is replaced by one that does not (cubic or
// reno); any other is kept.
func localCongestion(t *testing.T, in *instance) (host, inside string) {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/net/ipv4/tcp_congestion_control")
	if err != nil {
		t.Fatal(err)
	}
	host = strings.TrimSpace(string(b))
	out, _, _ := in.exec("", "cat", "/proc/sys/net/ipv4/tcp_congestion_control")
	inside = strings.TrimSpace(out)
	if strings.HasPrefix(host, "bbr") && inside != "cubic" && inside != "reno" {
		t.Fatalf("TCP congestion control inside = %q with %q on the host; want cubic or reno (no pacing on local hops)", inside, host)
	}
	if !strings.HasPrefix(host, "bbr") && inside != host {
		t.Fatalf("TCP congestion control inside = %q, want the host's %q", inside, host)
	}
	return host, inside
}

func TestHostLoopbackClosedByDefaultOpenWithFlag(t *testing.T) {
	loop := tcpEchoServer(t, "127.0.0.1:0")
	_, port, _ := net.SplitHostPort(loop)
	u := asUser(t, *flagTestUser)

	closed := startInstance(t, u)
	if out, _, code := closed.nettool("tcp", "10.0.2.2:"+port); code == 0 {
		t.Fatalf("host loopback reachable without --allow-host-loopback: %q", out)
	}
	open := startInstance(t, u, "--allow-host-loopback")
	if out, errOut, code := open.nettool("tcp", "10.0.2.2:"+port); code != 0 || strings.TrimSpace(out) != "ping" {
		t.Fatalf("host loopback with --allow-host-loopback: code %d out %q err %q", code, out, errOut)
	}
}

func TestDNSRelayToHostStubResolver(t *testing.T) {
	// 127.0.0.53 is where systemd-resolved's stub listens: the relay must
	// reach it even though host loopback is closed to the namespace.
	u := asUser(t, *flagTestUser)
	rc := hostResolver(t, u, "127.0.0.53", "probe.unetes.test.", [4]byte{203, 0, 113, 7}, "options edns0\n")
	in := startInstance(t, u, "--resolv-conf", rc)
	out, errOut, code := in.nettool("dns", "10.0.2.3", "probe.unetes.test.")
	if code != 0 || strings.TrimSpace(out) != "203.0.113.7" {
		t.Fatalf("DNS through 10.0.2.3: code %d out %q err %q", code, out, errOut)
	}
}

func TestBlackholedDestinationsDoNotStallOthers(t *testing.T) {
	ip := hostIP(t)
	healthy := tcpEchoServer(t, ip.String()+":0")
	hole := blackhole(t, ip)
	in := startInstance(t, asUser(t, *flagTestUser))
	start := time.Now()
	out, errOut, code := in.nettool("storm", healthy, "200", hole, "50")
	took := time.Since(start)
	if code != 0 {
		t.Fatalf("storm: code %d out %q err %q", code, out, errOut)
	}
	// The NAT's connect timeout is 30s: a stall behind the black-holed
	// handshakes would show as healthy connections taking that long.
	if took > 15*time.Second {
		t.Fatalf("200 healthy connections next to 50 black-holed ones took %s (%s): stalled", took, out)
	}
	t.Logf("%s", strings.TrimSpace(out))
}

func TestExecPassesStdioAndExitStatus(t *testing.T) {
	in := startInstance(t, asUser(t, *flagTestUser))
	out, errOut, code := in.exec("hello\n", "sh", "-c", "read x; echo got $x; echo oops >&2; exit 3")
	if code != 3 || strings.TrimSpace(out) != "got hello" || strings.TrimSpace(errOut) != "oops" {
		t.Fatalf("exec: code %d out %q err %q", code, out, errOut)
	}
	_, errOut, code = in.exec("", "no-such-command-here")
	if code != 127 || !strings.Contains(errOut, "not found") {
		t.Fatalf("missing command: code %d err %q", code, errOut)
	}
	_, errOut, code = in.exec("", "/no/such/binary")
	if code != 127 || !strings.Contains(errOut, "no such file") {
		t.Fatalf("missing path: code %d err %q", code, errOut)
	}
}

func TestStatusStopAndSecondRun(t *testing.T) {
	u := asUser(t, *flagTestUser)
	in := startInstance(t, u)
	out, errOut, code := u.unetes(t, "", "status", "--name", in.name)
	if code != 0 || !strings.Contains(out, in.name) || !strings.Contains(out, "10.0.2.100") {
		t.Fatalf("status: code %d out %q err %q", code, out, errOut)
	}
	_, errOut, code = u.unetes(t, "", "run", "--no-kubernetes", "--name", in.name)
	pid := strconv.Itoa(in.cmd.Process.Pid)
	if code == 0 || !strings.Contains(errOut, "already running") || !strings.Contains(errOut, pid) {
		t.Fatalf("second run: code %d err %q, want refusal naming pid %s", code, errOut, pid)
	}
	in.stop()
	_, errOut, code = u.unetes(t, "", "status", "--name", in.name)
	if code == 0 || !strings.Contains(errOut, "not running") || !strings.Contains(errOut, "unetes run --name "+in.name+" --no-kubernetes`") {
		t.Fatalf("status after stop: code %d err %q", code, errOut)
	}
	_, errOut, code = u.unetes(t, "", "exec", "--name", in.name, "--", "true")
	if code == 0 || !strings.Contains(errOut, "not running") {
		t.Fatalf("exec after stop: code %d err %q", code, errOut)
	}
}

func TestSIGKILLOfParentLeavesNoProcess(t *testing.T) {
	u := asUser(t, *flagTestUser)
	in := startInstance(t, u)
	// A long-running process inside, started in the background.
	bg := u.command(work.unetes, "exec", "--name", in.name, "--", "sleep", "613")
	if err := bg.Start(); err != nil {
		t.Fatal(err)
	}
	go bg.Wait()
	waitFor(t, 10*time.Second, "sleep inside", func() bool { return len(procsOf(u.uid, "sleep 613")) > 0 })
	if err := in.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-in.done
	left := func() []int {
		// run and exec name the instance; _child and _sandbox name its state dir.
		return append(procsOf(u.uid, in.name), procsOf(u.uid, "sleep 613")...)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(left()) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("processes of the instance survived SIGKILL of its parent:\n%s", describe(left()))
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The next run of the same name recovers.
	startInstanceNamed(t, u, in.name)
}

func TestRunAsRoot(t *testing.T) {
	ip := hostIP(t)
	tcpAddr := tcpEchoServer(t, ip.String()+":0")
	in := startInstance(t, rootUser(t))
	out, errOut, code := in.nettool("tcp", tcpAddr)
	if code != 0 || strings.TrimSpace(out) != "ping" {
		t.Fatalf("TCP from a root-run instance: code %d out %q err %q", code, out, errOut)
	}
}

func TestUserWithoutSubIDsGetsDoctorFix(t *testing.T) {
	u := asUser(t, *flagNoSubIDUser)
	_, errOut, code := u.unetes(t, "", "run", "--name", "nosubid")
	if code == 0 {
		t.Fatal("unetes run succeeded for a user without sub-IDs")
	}
	if _, err := os.Stat(filepath.Join(u.home, ".local/share/unetes", "nosubid")); !os.IsNotExist(err) {
		t.Fatalf("a run refused for its prerequisites wrote the data dir (%v)", err)
	}
	for _, want := range []string{"sub-IDs", "/etc/subuid", "usermod --add-subuids", u.name} {
		if !strings.Contains(errOut, want) {
			t.Errorf("run error lacks %q:\n%s", want, errOut)
		}
	}
	out, _, code := u.unetes(t, "", "doctor")
	if code == 0 || !strings.Contains(out, "FAIL") || !strings.Contains(out, "usermod --add-subuids") {
		t.Fatalf("doctor: code %d\n%s", code, out)
	}
}

func TestBadInput(t *testing.T) {
	u := asUser(t, *flagTestUser)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"bad name", []string{"run", "--no-kubernetes", "--name", "Bad/Name"}, "invalid instance name"},
		{"bad mtu", []string{"run", "--no-kubernetes", "--mtu", "100"}, "mtu 100 out of range"},
		{"bad api port", []string{"run", "--api-port", "0"}, "--api-port 0"},
		{"unknown command", []string{"frobnicate"}, "unknown command"},
		{"exec without command", []string{"exec"}, "no command"},
		{"stop not running", []string{"stop", "--name", "never-started"}, `"never-started" is not running`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errOut, code := u.unetes(t, "", tc.args...)
			if code == 0 || !strings.Contains(errOut, tc.want) {
				t.Fatalf("unetes %v: code %d, stderr %q, want it to contain %q", tc.args, code, errOut, tc.want)
			}
		})
	}
}

func TestPingGatewayAndHost(t *testing.T) {
	u := asUser(t, *flagTestUser)
	b, err := os.ReadFile("/proc/sys/net/ipv4/ping_group_range")
	if err != nil {
		t.Fatal(err)
	}
	var lo, hi int
	if _, err := fmt.Sscan(string(b), &lo, &hi); err != nil || u.gid < lo || u.gid > hi {
		t.Fatalf("net.ipv4.ping_group_range %q excludes gid %d: run `sudo make setup` (it allows ping sockets)", strings.TrimSpace(string(b)), u.gid)
	}
	in := startInstance(t, u)
	for _, dst := range []string{"10.0.2.2", hostIP(t).String()} {
		out, errOut, code := in.exec("", "busybox", "ping", "-c", "1", "-W", "3", dst)
		if code != 0 || !strings.Contains(out, "1 packets received") {
			t.Errorf("ping %s from inside: code %d out %q err %q", dst, code, out, errOut)
		}
	}
}

// Failures inside look as they do on the host. A destination that never
// answers is not refused by the NAT after its 30 s connect timeout: the
// program's own connect times out; a closed TCP port is refused at once; a
// datagram to a closed UDP port comes back as port unreachable; a host or
// network the host has no route to is unreachable inside too (routes of
// type unreachable and throw, for documentation prefixes: nothing is sent).
func TestFailuresAsOnTheHost(t *testing.T) {
	hostRoute(t, "unreachable", "203.0.113.0/24")
	hostRoute(t, "throw", "198.51.100.0/24")
	ip := hostIP(t)
	hole := blackhole(t, ip)
	l, err := net.Listen("tcp4", ip.String()+":0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	in := startInstance(t, asUser(t, *flagTestUser))
	out, errOut, code := in.nettool("dial", closed, "5")
	if code != 0 || !strings.HasPrefix(out, "refused after 0s") {
		t.Fatalf("dial to a closed port: %q %q %d; want refused at once", out, errOut, code)
	}
	u, err := net.ListenUDP("udp4", &net.UDPAddr{IP: ip})
	if err != nil {
		t.Fatal(err)
	}
	uclosed := u.LocalAddr().String()
	u.Close()
	out, errOut, code = in.nettool("uprobe", uclosed)
	if code != 0 || strings.TrimSpace(out) != "refused" {
		t.Fatalf("datagrams to a closed UDP port: %q %q %d; want refused (ICMP port unreachable)", out, errOut, code)
	}
	for addr, want := range map[string]string{"203.0.113.7:80": "host unreachable after 0s", "198.51.100.7:80": "net unreachable after 0s"} {
		out, errOut, code = in.nettool("dial", addr, "5")
		if code != 0 || !strings.HasPrefix(out, want) {
			t.Fatalf("dial to %s: %q %q %d; want %q (an ICMP unreachable, as on the host)", addr, out, errOut, code, want)
		}
	}
	out, errOut, code = in.nettool("dial", hole, "36")
	if code != 0 || !strings.HasPrefix(out, "timeout after 3") {
		t.Fatalf("dial to a black hole with a 36 s timeout: %q %q %d; want the program's own timeout, past the NAT's 30 s", out, errOut, code)
	}
}

// hostRoute adds a route of typ (unreachable, throw) for prefix on the host
// for the test's time.
func hostRoute(t *testing.T, typ, prefix string) {
	t.Helper()
	if out, err := exec.Command("ip", "route", "replace", typ, prefix).CombinedOutput(); err != nil {
		t.Fatalf("ip route replace %s %s: %v: %s", typ, prefix, err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "route", "del", typ, prefix).Run() })
}
