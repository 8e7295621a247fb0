package e2e

import (
	"bufio"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/unetes/unetes/testing/internal/fakedns"
)

// tcpEchoServer echoes one line per connection on addr ("ip:0").
func tcpEchoServer(t *testing.T, addr string) string {
	t.Helper()
	l, err := net.Listen(family("tcp", addr), addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				line, err := bufio.NewReader(c).ReadString('\n')
				if err == nil {
					c.Write([]byte(line))
				}
			}()
		}
	}()
	return l.Addr().String()
}

// family is proto with the IP version of addr's host: "tcp4", "udp6" …
func family(proto, addr string) string {
	if ap, err := netip.ParseAddrPort(addr); err == nil && ap.Addr().Is6() {
		return proto + "6"
	}
	return proto + "4"
}

// udpEchoServer echoes every datagram on addr ("ip:0").
func udpEchoServer(t *testing.T, addr string) string {
	t.Helper()
	c, err := net.ListenPacket(family("udp", addr), addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			c.WriteTo(buf[:n], from)
		}
	}()
	return c.LocalAddr().String()
}

// blackhole returns a TCP address on ip whose SYNs are dropped: a listener
// with a full accept queue. The kernel drops SYNs to it, like a firewall would.
func blackhole(t *testing.T, ip net.IP) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	sa := &syscall.SockaddrInet4{}
	copy(sa.Addr[:], ip.To4())
	if err := syscall.Bind(fd, sa); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	got, _ := syscall.Getsockname(fd)
	addr := net.JoinHostPort(ip.String(), strconv.Itoa(got.(*syscall.SockaddrInet4).Port))
	// Fill the accept queue; nobody ever accepts.
	for i := 0; i < 4; i++ {
		c, err := net.DialTimeout("tcp4", addr, 300e6)
		if err != nil {
			break
		}
		t.Cleanup(func() { c.Close() })
	}
	return addr
}

// hostResolver starts dnsServer on addr and writes a resolv.conf naming it
// (plus extra lines) in u's home, for `run --resolv-conf`; it returns its path.
func hostResolver(t *testing.T, u *testUser, addr, name string, answer [4]byte, extra string) string {
	t.Helper()
	dnsServer(t, addr, name, answer)
	rc := filepath.Join(u.home, "resolv.conf")
	if err := os.WriteFile(rc, []byte("nameserver "+addr+"\n"+extra), 0o644); err != nil {
		t.Fatal(err)
	}
	return rc
}

// dnsServer answers A queries for name with answer on addr:53 (UDP).
func dnsServer(t *testing.T, addr, name string, answer [4]byte) *fakedns.Server {
	t.Helper()
	s, err := fakedns.Start(addr, name, answer)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
