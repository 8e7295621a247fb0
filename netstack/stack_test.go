package netstack

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/fdbased"
	"gvisor.dev/gvisor/pkg/tcpip/network/arp"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
)

// testNet is the NAT on one end of a socketpair and a guest stack (playing the
// namespace's kernel) on the other.
type testNet struct {
	nat       *Stack
	guest     *stack.Stack
	guestLink stack.LinkEndpoint
	fds       [2]int
}

func newTestNet(t *testing.T, cfg Config) *testNet {
	t.Helper()
	tn := buildTestNet(t, cfg)
	t.Cleanup(tn.close)
	return tn
}

// buildTestNet is newTestNet without the cleanup, for start/stop cycles.
func buildTestNet(t *testing.T, cfg Config) *testNet {
	t.Helper()
	return buildTestNetLinks(t, cfg, false)
}

// buildTestNetLinks builds the test net; with vnet both ends frame with a
// virtio-net header, as the NAT and the kernel do on the real TAP, and the
// guest is gVisor on a tapLink too, which, unlike the kernel, gets GSO.
func buildTestNetLinks(t *testing.T, cfg Config, vnet bool) *testNet {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		// Room for bursts: a full socket buffer drops frames like a busy link.
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 4<<20)
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20)
	}
	tn := &testNet{fds: fds}
	const guestMAC = "\x52\x55\x0a\x00\x02\x64"
	var link stack.LinkEndpoint
	if vnet {
		natLink, err := newTAPLink(fds[0], uint32(cfg.MTU), gatewayMAC, true)
		if err != nil {
			t.Fatal(err)
		}
		if tn.nat, err = newOnLink(cfg, natLink, slog.New(slog.DiscardHandler)); err != nil {
			t.Fatal(err)
		}
		link, err = newTAPLink(fds[1], uint32(cfg.MTU), guestMAC, true)
	} else {
		if tn.nat, err = New(cfg, fds[0], slog.New(slog.DiscardHandler)); err != nil {
			t.Fatal(err)
		}
		link, err = fdbased.New(&fdbased.Options{FDs: []int{fds[1]}, MTU: uint32(cfg.MTU), EthernetHeader: true, Address: guestMAC})
	}
	if err != nil {
		t.Fatal(err)
	}
	nets := []stack.NetworkProtocolFactory{ipv4.NewProtocol, arp.NewProtocol}
	if cfg.Guest6.IsValid() {
		nets = append(nets, ipv6.NewProtocol)
	}
	g := stack.New(stack.Options{
		NetworkProtocols:   nets,
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol, udp.NewProtocol},
	})
	if e := g.CreateNIC(1, link); e != nil {
		t.Fatal(e)
	}
	g.AddProtocolAddress(1, tcpip.ProtocolAddress{Protocol: ipv4.ProtocolNumber,
		AddressWithPrefix: tcpip.AddressWithPrefix{Address: tcpip.AddrFrom4(cfg.Guest.As4()), PrefixLen: 24}}, stack.AddressProperties{})
	routes := []tcpip.Route{{Destination: header.IPv4EmptySubnet, Gateway: tcpip.AddrFrom4(cfg.Gateway.As4()), NIC: 1}}
	if cfg.Guest6.IsValid() {
		g.AddProtocolAddress(1, tcpip.ProtocolAddress{Protocol: ipv6.ProtocolNumber,
			AddressWithPrefix: tcpip.AddressWithPrefix{Address: tcpip.AddrFrom16(cfg.Guest6.As16()), PrefixLen: 64}}, stack.AddressProperties{})
		routes = append(routes, tcpip.Route{Destination: header.IPv6EmptySubnet, Gateway: tcpip.AddrFrom16(cfg.Gateway6.As16()), NIC: 1})
	}
	g.SetRouteTable(routes)
	tn.guest, tn.guestLink = g, link
	return tn
}

func (tn *testNet) close() {
	tn.nat.Close()
	tn.guest.Close()
	tn.guest.Wait()
	// The link's reader must be gone before its fd number can be reused by
	// the next test's socketpair, or it would steal that pair's frames.
	tn.guestLink.Attach(nil)
	tn.guestLink.Wait()
	unix.Close(tn.fds[0])
	unix.Close(tn.fds[1])
}

func (tn *testNet) dialTCP(ctx context.Context, dst netip.AddrPort) (*gonet.TCPConn, error) {
	if dst.Addr().Is6() {
		return gonet.DialContextTCP(ctx, tn.guest, tcpip.FullAddress{NIC: 1, Addr: tcpip.AddrFrom16(dst.Addr().As16()), Port: dst.Port()}, ipv6.ProtocolNumber)
	}
	return gonet.DialContextTCP(ctx, tn.guest, tcpip.FullAddress{NIC: 1, Addr: tcpip.AddrFrom4(dst.Addr().As4()), Port: dst.Port()}, ipv4.ProtocolNumber)
}

func testConfig(t *testing.T, allowLoopback bool, upstream netip.AddrPort) Config {
	c, err := Resolve(Args{MTU: 1500, AllowHostLoopback: allowLoopback}, []byte("nameserver 127.0.0.1\n"))
	if err != nil {
		t.Fatal(err)
	}
	c.DNSUpstreams = []netip.AddrPort{upstream}
	c.ConnectTimeout = 2 * time.Second
	return c
}

func echoListener(t *testing.T) netip.AddrPort {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return echoOn(t, l)
}

// echoOn echoes every connection l accepts until the test ends.
func echoOn(t *testing.T, l net.Listener) netip.AddrPort {
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	return l.Addr().(*net.TCPAddr).AddrPort()
}

// gatewayPort is the gateway address of ap's family with ap's port.
func gatewayPort(cfg Config, ap netip.AddrPort) netip.AddrPort {
	if ap.Addr().Is6() {
		return netip.AddrPortFrom(cfg.Gateway6, ap.Port())
	}
	return netip.AddrPortFrom(cfg.Gateway, ap.Port())
}

func TestTCPThroughGatewayToHostLoopback(t *testing.T) {
	srv := echoListener(t)
	cfg := testConfig(t, true, fakeUpstream(t, false))
	tn := newTestNet(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := tn.dialTCP(ctx, gatewayPort(cfg, srv))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	payload := make([]byte, 1<<20)
	for i := range payload {
		payload[i] = byte(i)
	}
	go func() { c.Write(payload); c.CloseWrite() }()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(payload) || got[12345] != payload[12345] {
		t.Fatalf("echoed %d bytes, want %d", len(got), len(payload))
	}
}

// With the host's IPv6, the guest reaches IPv6 destinations: here the
// gateway's IPv6 address, which leads to the host's [::1] when allowed.
// TestVnetHeaderCarriesBulkBothWays sends 8 MiB each way through the NAT
// with virtio-net headers at MTU 1500: segments are GSO'd above the MTU and
// their TCP checksums left partial, and every byte still arrives in order.
func TestVnetHeaderCarriesBulkBothWays(t *testing.T) {
	echo := echoListener(t)
	cfg := testConfig(t, true, netip.MustParseAddrPort("127.0.0.1:1"))
	tn := buildTestNetLinks(t, cfg, true)
	t.Cleanup(tn.close)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := tn.dialTCP(ctx, netip.AddrPortFrom(cfg.Gateway, echo.Port()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	want := make([]byte, 8<<20)
	for i := range want {
		want[i] = byte(i*7 + i>>13)
	}
	go func() { c.Write(want); c.CloseWrite() }()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read back after %d bytes: %v", len(got), err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("echo through the NAT returned %d bytes, not the %d sent, or different ones", len(got), len(want))
	}
}

func TestIPv6TCPThroughGatewayToHostLoopback(t *testing.T) {
	l, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("this host has no IPv6 loopback: %v", err)
	}
	srv := echoOn(t, l)
	cfg := withIPv6(testConfig(t, true, fakeUpstream(t, false)))
	tn := newTestNet(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := tn.dialTCP(ctx, netip.AddrPortFrom(cfg.Gateway6, srv.Port()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	go func() { c.Write([]byte("over-ipv6")); c.CloseWrite() }()
	if got, err := io.ReadAll(c); err != nil || string(got) != "over-ipv6" {
		t.Fatalf("echo over IPv6: %q, %v", got, err)
	}
}

func TestTCPToHostLoopbackRefusedByDefault(t *testing.T) {
	srv := echoListener(t)
	cfg := testConfig(t, false, fakeUpstream(t, false))
	tn := newTestNet(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if c, err := tn.dialTCP(ctx, gatewayPort(cfg, srv)); err == nil {
		c.Close()
		t.Fatal("connection to the gateway reached host loopback without AllowHostLoopback")
	}
}

func TestUDPDNSThroughRelay(t *testing.T) {
	cfg := testConfig(t, false, fakeUpstream(t, false))
	tn := newTestNet(t, cfg)
	c, err := gonet.DialUDP(tn.guest, nil, &tcpip.FullAddress{NIC: 1, Addr: tcpip.AddrFrom4(cfg.DNS.As4()), Port: 53}, ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(query(0x33)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 512)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	if n != 12 || buf[0] != 0x33 || buf[2]&0x80 == 0 {
		t.Fatalf("answer % x", buf[:n])
	}
}

func TestCloseLeavesNoGoroutines(t *testing.T) {
	srv := echoListener(t)
	up := fakeUpstream(t, false)
	before := runtime.NumGoroutine()
	for i := 0; i < 3; i++ {
		cfg := testConfig(t, true, up)
		tn := buildTestNet(t, cfg)
		// Leave a flow open: Close must end it.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, err := tn.dialTCP(ctx, gatewayPort(cfg, srv))
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte("x"))
		bufio.NewReader(c).ReadByte()
		tn.close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before+2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before+2 {
		buf := make([]byte, 1<<20)
		t.Fatalf("goroutines %d before, %d after 3 start/stop cycles:\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}

func TestOpenFlowsCountsEachFlowOnce(t *testing.T) {
	srv := echoListener(t)
	cfg := testConfig(t, true, fakeUpstream(t, false))
	tn := newTestNet(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var conns []*gonet.TCPConn
	for i := 0; i < 3; i++ {
		c, err := tn.dialTCP(ctx, gatewayPort(cfg, srv))
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte("x"))
		bufio.NewReader(c).ReadByte() // the relay is up once the echo is back
		conns = append(conns, c)
	}
	if n := tn.nat.OpenFlows(); n != 3 {
		t.Fatalf("OpenFlows = %d with 3 connections, want 3", n)
	}
	for _, c := range conns {
		c.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for tn.nat.OpenFlows() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := tn.nat.OpenFlows(); n != 0 {
		t.Fatalf("OpenFlows = %d after closing, want 0", n)
	}
}

// blackholeListener is a host address that never answers a SYN: a listener
// whose accept queue is full and never accepted from.
func blackholeListener(t *testing.T) netip.AddrPort {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, _ := unix.Getsockname(fd)
	ap := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(sa.(*unix.SockaddrInet4).Port))
	for i := 0; i < 4; i++ {
		c, err := net.DialTimeout("tcp4", ap.String(), 300*time.Millisecond)
		if err != nil {
			break
		}
		t.Cleanup(func() { c.Close() })
	}
	if c, err := net.DialTimeout("tcp4", ap.String(), 500*time.Millisecond); err == nil {
		c.Close()
		t.Fatal("the full listener still answers")
	}
	return ap
}

// failedDial dials dst through the gateway from the guest, allowing 3 s,
// and returns how long it took to fail and how.
func failedDial(t *testing.T, cfg Config, dst netip.AddrPort) (time.Duration, error) {
	tn := newTestNet(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	start := time.Now()
	c, err := tn.dialTCP(ctx, gatewayPort(cfg, dst))
	if err == nil {
		c.Close()
		t.Fatalf("connected to %s", dst)
	}
	return time.Since(start), err
}

func TestTCPBlackholeTimesOutAtTheGuestNotRefused(t *testing.T) {
	hole := blackholeListener(t)
	cfg := testConfig(t, true, fakeUpstream(t, false))
	cfg.ConnectTimeout = 300 * time.Millisecond
	// The guest waits out several NAT connect timeouts: every SYN it sends
	// is dialled again, none is answered.
	if took, err := failedDial(t, cfg, hole); took < 2500*time.Millisecond || strings.Contains(err.Error(), "refused") {
		t.Fatalf("after %s: %v; want the guest's own timeout (3 s), no reset", took, err)
	}
}

func TestTCPClosedPortRefusedAtOnce(t *testing.T) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().(*net.TCPAddr).AddrPort()
	l.Close()
	cfg := testConfig(t, true, fakeUpstream(t, false))
	if took, err := failedDial(t, cfg, closed); took > time.Second || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("after %s: %v; want connection refused at once", took, err)
	}
}

// withIPv6 gives cfg the IPv6 subnet the NAT uses where the host has IPv6.
func withIPv6(cfg Config) Config {
	v6, _ := Resolve(Args{MTU: 1500, HostIPv6: true}, []byte("nameserver 127.0.0.1\n"))
	cfg.Subnet6, cfg.Guest6, cfg.Gateway6 = v6.Subnet6, v6.Guest6, v6.Gateway6
	return cfg
}

// TestIPv6UnreachableAndRefusedAreICMPv6 checks the IPv6 counterparts of
// the ICMPv4 cases below: a host dial failing with ENETUNREACH, and UDP to a
// closed port on the host's [::1]. (EHOSTUNREACH becomes "address
// unreachable", which gVisor playing the guest ignores; Linux reads it as
// EHOSTUNREACH, which the end-to-end tests check.)
func TestIPv6UnreachableAndRefusedAreICMPv6(t *testing.T) {
	cfg := withIPv6(testConfig(t, true, fakeUpstream(t, false)))
	cfg.dialTCP = func(context.Context, string) (net.Conn, error) {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ENETUNREACH)}
	}
	took, err := failedDial(t, cfg, netip.AddrPortFrom(cfg.Gateway6, 80))
	if took > time.Second || !strings.Contains(err.Error(), "network is unreachable") {
		t.Errorf("IPv6, host dial failing with ENETUNREACH: the guest got %v after %s; want it at once (an ICMPv6 no-route unreachable)", err, took)
	}

	l, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		t.Skipf("this host has no IPv6 loopback: %v", err)
	}
	closed := l.LocalAddr().(*net.UDPAddr).AddrPort()
	l.Close()
	cfg = withIPv6(testConfig(t, true, fakeUpstream(t, false)))
	tn := newTestNet(t, cfg)
	c, err := gonet.DialUDP(tn.guest, nil, &tcpip.FullAddress{NIC: 1, Addr: tcpip.AddrFrom16(cfg.Gateway6.As16()), Port: closed.Port()}, ipv6.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := probeUDP(c); got == nil || !strings.Contains(got.Error(), "refused") {
		t.Fatalf("IPv6 UDP to a closed port: %v; want connection refused (ICMPv6 port unreachable)", got)
	}
}

func TestUDPToClosedPortIsPortUnreachable(t *testing.T) {
	l, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	closed := l.LocalAddr().(*net.UDPAddr).AddrPort()
	l.Close()
	cfg := testConfig(t, true, fakeUpstream(t, false))
	tn := newTestNet(t, cfg)
	dst := gatewayPort(cfg, closed)
	c, err := gonet.DialUDP(tn.guest, nil, &tcpip.FullAddress{NIC: 1, Addr: tcpip.AddrFrom4(dst.Addr().As4()), Port: dst.Port()}, ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := probeUDP(c); got == nil || !strings.Contains(got.Error(), "refused") {
		t.Fatalf("UDP to a closed port: %v; want connection refused (ICMP port unreachable)", got)
	}
}

// probeUDP sends up to three datagrams on c, each followed by a short read,
// and returns the first error other than the reads' timeouts, or nil. The
// first datagram opens the flow; the refusal of any of them comes back as an
// ICMP port unreachable, which a connected socket reads as ECONNREFUSED.
func probeUDP(c *gonet.UDPConn) error {
	c.SetDeadline(time.Now().Add(3 * time.Second))
	for i := 0; i < 3; i++ {
		if _, err := c.Write([]byte("anyone?")); err != nil {
			return err
		}
		c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		if _, err := c.Read(make([]byte, 64)); err != nil && !strings.Contains(err.Error(), "timeout") {
			return err
		}
	}
	return nil
}

func TestTCPUnreachableIsICMPUnreachable(t *testing.T) {
	for _, tc := range []struct {
		errno syscall.Errno
		want  string
	}{
		{syscall.EHOSTUNREACH, "no route to host"},
		{syscall.ENETUNREACH, "network is unreachable"},
	} {
		cfg := testConfig(t, true, fakeUpstream(t, false))
		cfg.dialTCP = func(context.Context, string) (net.Conn, error) {
			return nil, &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", tc.errno)}
		}
		took, err := failedDial(t, cfg, netip.MustParseAddrPort("10.0.2.2:80"))
		if took > time.Second || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("host dial failing with %v: the guest got %v after %s; want %q at once (an ICMP unreachable, not a reset)", tc.errno, err, took, tc.want)
		}
	}
}
