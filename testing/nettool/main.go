// Command nettool is the end-to-end suite's client inside the namespaces: it
// connects, echoes and resolves, and reports what it saw. It is built by the
// tests; it is not part of unetes.
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: nettool tcp ADDR | udp ADDR | dns SERVER NAME | lookup NAME | get URL | dnsbench SERVER NAME SECONDS CONCURRENCY | storm HEALTHY N BLACKHOLE M | dial ADDR SECONDS | uprobe ADDR | hold ADDR N SECONDS | serve ADDR | userve ADDR | sink ADDR | blast ADDR SECONDS")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "tcp":
		err = tcpEcho(os.Args[2], 5*time.Second)
	case "udp":
		err = udpEcho(os.Args[2])
	case "dns":
		err = dns(os.Args[2], os.Args[3])
	case "lookup":
		err = lookup(os.Args[2])
	case "get":
		err = get(os.Args[2])
	case "dnsbench":
		secs, _ := strconv.Atoi(os.Args[4])
		conc, _ := strconv.Atoi(os.Args[5])
		err = dnsBench(os.Args[2], os.Args[3], time.Duration(secs)*time.Second, conc)
	case "serve":
		err = serveTCP(os.Args[2])
	case "userve":
		err = serveUDP(os.Args[2])
	case "dial":
		secs, _ := strconv.Atoi(os.Args[3])
		dial(os.Args[2], time.Duration(secs)*time.Second)
	case "hold":
		n, _ := strconv.Atoi(os.Args[3])
		secs, _ := strconv.Atoi(os.Args[4])
		err = hold(os.Args[2], n, time.Duration(secs)*time.Second)
	case "sink":
		err = sink(os.Args[2])
	case "blast":
		secs, _ := strconv.Atoi(os.Args[3])
		err = blast(os.Args[2], time.Duration(secs)*time.Second)
	case "uprobe":
		uprobe(os.Args[2])
	case "storm":
		n, _ := strconv.Atoi(os.Args[3])
		m, _ := strconv.Atoi(os.Args[5])
		err = storm(os.Args[2], n, os.Args[4], m)
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "nettool:", err)
		os.Exit(1)
	}
}

// tcpEcho sends a line and expects the server to echo it back.
func tcpEcho(addr string, timeout time.Duration) error {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(c, "ping\n"); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return fmt.Errorf("read echo: %w", err)
	}
	fmt.Print(line)
	return nil
}

func udpEcho(addr string) error {
	c, err := net.Dial("udp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	buf := make([]byte, 1500)
	for try := 0; try < 3; try++ {
		c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Write([]byte("ping-udp")); err != nil {
			return err
		}
		n, err := c.Read(buf)
		if err == nil {
			fmt.Println(string(buf[:n]))
			return nil
		}
	}
	return fmt.Errorf("no UDP echo from %s", addr)
}

// dns resolves name through server:53 only and prints the addresses.
func dns(server, name string) error {
	return lookupWith(&net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, net.JoinHostPort(server, "53"))
	}}, name)
}

// lookup resolves name as the system's resolver would (the Go resolver
// reads /etc/resolv.conf: nameservers, search list, ndots) and prints the
// addresses. A pod's busybox cannot: its nslookup skips the search list for
// dotted names, and its static libc crashes on names.
func lookup(name string) error { return lookupWith(net.DefaultResolver, name) }

func lookupWith(r *net.Resolver, name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	addrs, err := r.LookupHost(ctx, name)
	if err != nil {
		return err
	}
	for _, a := range addrs {
		fmt.Println(a)
	}
	return nil
}

// get prints the body of an HTTP GET of url, names resolved as lookup does.
func get(url string) error {
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(os.Stdout, resp.Body)
	return err
}

// dial connects to addr within timeout and prints how it went (connected,
// refused, host or net unreachable, or timeout) and after how long, in whole seconds.
func dial(addr string, timeout time.Duration) {
	start := time.Now()
	c, err := net.DialTimeout("tcp", addr, timeout)
	outcome := "connected"
	switch {
	case err == nil:
		c.Close()
	case errors.Is(err, syscall.ECONNREFUSED):
		outcome = "refused"
	case errors.Is(err, syscall.EHOSTUNREACH):
		outcome = "host unreachable"
	case errors.Is(err, syscall.ENETUNREACH):
		outcome = "net unreachable"
	case os.IsTimeout(err):
		outcome = "timeout"
	default:
		outcome = "error: " + err.Error()
	}
	fmt.Printf("%s after %ds\n", outcome, int(time.Since(start).Seconds()))
}

// hold opens n TCP connections to addr, says "open N" once they all are,
// and keeps them open for d.
func hold(addr string, n int, d time.Duration) error {
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < n; i++ {
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			return fmt.Errorf("connection %d: %w", i+1, err)
		}
		conns = append(conns, c)
	}
	fmt.Printf("open %d\n", n)
	time.Sleep(d)
	return nil
}

// uprobe sends up to three datagrams to addr on a connected UDP socket and
// prints "refused" once one is refused (an ICMP port unreachable came back),
// "answered" if one is answered, else "no answer".
func uprobe(addr string) {
	c, err := net.Dial("udp", addr)
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	defer c.Close()
	for i := 0; i < 3; i++ {
		c.Write([]byte("anyone?"))
		c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		_, err := c.Read(make([]byte, 64))
		switch {
		case err == nil:
			fmt.Println("answered")
			return
		case errors.Is(err, syscall.ECONNREFUSED):
			fmt.Println("refused")
			return
		}
	}
	fmt.Println("no answer")
}

// storm opens m connections to a black-holed address and, while they hang,
// n echo connections to a healthy one; it reports how long the healthy ones took.
func storm(healthy string, n int, blackhole string, m int) error {
	for i := 0; i < m; i++ {
		go net.DialTimeout("tcp", blackhole, time.Minute)
	}
	time.Sleep(200 * time.Millisecond) // let the black-holed handshakes reach the NAT first
	start := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failed []error
	var slowest time.Duration
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.Now()
			err := quietEcho(healthy)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed = append(failed, err)
			}
			slowest = max(slowest, time.Since(t))
		}()
	}
	wg.Wait()
	fmt.Printf("healthy=%d failed=%d slowest_ms=%d total_ms=%d\n", n, len(failed), slowest.Milliseconds(), time.Since(start).Milliseconds())
	if len(failed) > 0 {
		return fmt.Errorf("%d healthy connections failed, first: %v", len(failed), failed[0])
	}
	return nil
}

func quietEcho(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 20*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c, "ping\n"); err != nil {
		return err
	}
	_, err = bufio.NewReader(c).ReadString('\n')
	return err
}

// serveTCP greets each connection with the peer's address ("from IP:PORT"),
// then echoes lines until EOF.
func serveTCP(addr string) error {
	return serveEach(addr, true, func(c net.Conn) {
		fmt.Fprintf(c, "from %s\n", c.RemoteAddr())
		io.Copy(c, c)
	})
}

// serveEach listens on addr (saying so when announce is set) and hands
// each connection to handle in a goroutine of its own, closing it after.
func serveEach(addr string, announce bool, handle func(net.Conn)) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	if announce {
		fmt.Println("listening", l.Addr())
	}
	for {
		c, err := l.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			handle(c)
		}()
	}
}

// serveUDP echoes every datagram, prefixed with "echo ".
func serveUDP(addr string) error {
	c, err := net.ListenPacket("udp", addr)
	if err != nil {
		return err
	}
	fmt.Println("listening", c.LocalAddr())
	buf := make([]byte, 65536)
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			return err
		}
		c.WriteTo(append([]byte("echo "), buf[:n]...), from)
	}
}
