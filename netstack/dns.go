package netstack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"
)

// dnsRelay forwards DNS messages from the namespace to the host's resolvers,
// trying them in order. It does not parse or cache: the host's resolver
// (which may be a 127.0.0.53 stub) stays the single source of truth.
type dnsRelay struct {
	upstreams []netip.AddrPort
	timeout   time.Duration
}

func newDNSRelay(upstreams []netip.AddrPort, timeout time.Duration) *dnsRelay {
	return &dnsRelay{upstreams: upstreams, timeout: timeout}
}

// errNoAnswer is returned when every upstream failed or timed out.
var errNoAnswer = errors.New("no DNS upstream answered")

// exchange sends one UDP query and returns the first matching answer.
func (d *dnsRelay) exchange(ctx context.Context, query []byte) ([]byte, error) {
	if len(query) < 12 {
		return nil, fmt.Errorf("relay dns query: message of %d bytes is too short", len(query))
	}
	var errs []error
	for _, up := range d.upstreams {
		resp, err := d.exchangeOne(ctx, up, query)
		if err == nil {
			return resp, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("%w: %w", errNoAnswer, errors.Join(errs...))
}

func (d *dnsRelay) exchangeOne(ctx context.Context, up netip.AddrPort, query []byte) ([]byte, error) {
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(up))
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", up, err)
	}
	defer c.Close()
	deadline := time.Now().Add(d.timeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	c.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()
	if _, err := c.Write(query); err != nil {
		return nil, fmt.Errorf("send to %s: %w", up, err)
	}
	buf := make([]byte, 65535)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return nil, fmt.Errorf("read from %s: %w", up, err)
		}
		// Ignore stray datagrams whose ID does not match the query.
		if n >= 12 && buf[0] == query[0] && buf[1] == query[1] {
			return append([]byte(nil), buf[:n]...), nil
		}
	}
}

// dialTCP connects to the first upstream that accepts DNS over TCP; the guest's
// stream is then relayed as is.
func (d *dnsRelay) dialTCP(ctx context.Context) (net.Conn, error) {
	var errs []error
	for _, up := range d.upstreams {
		dctx, cancel := context.WithTimeout(ctx, d.timeout)
		var dl net.Dialer
		c, err := dl.DialContext(dctx, "tcp", up.String())
		cancel()
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("%w: %w", errNoAnswer, errors.Join(errs...))
}
