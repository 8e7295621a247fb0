package netstack

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"
)

// fakeUpstream answers each query by flipping the QR bit; with stray set it
// first sends a datagram with a wrong ID.
func fakeUpstream(t *testing.T, stray bool) netip.AddrPort {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := c.ReadFromUDP(buf)
			if err != nil {
				return
			}
			if stray {
				bad := append([]byte(nil), buf[:n]...)
				bad[0] ^= 0xff
				c.WriteToUDP(bad, from)
			}
			resp := append([]byte(nil), buf[:n]...)
			resp[2] |= 0x80
			c.WriteToUDP(resp, from)
		}
	}()
	return c.LocalAddr().(*net.UDPAddr).AddrPort()
}

// deadUpstream is a port with nothing listening: queries are refused.
func deadUpstream(t *testing.T) netip.AddrPort {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	ap := c.LocalAddr().(*net.UDPAddr).AddrPort()
	c.Close()
	return ap
}

func query(id byte) []byte {
	return []byte{id, 0x42, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0}
}

func TestDNSRelay(t *testing.T) {
	ctx := context.Background()
	t.Run("answers from first upstream, ignoring stray IDs", func(t *testing.T) {
		r := newDNSRelay([]netip.AddrPort{fakeUpstream(t, true)}, time.Second)
		resp, err := r.exchange(ctx, query(7))
		if err != nil {
			t.Fatal(err)
		}
		if resp[0] != 7 || resp[1] != 0x42 || resp[2]&0x80 == 0 {
			t.Fatalf("resp % x", resp)
		}
	})
	t.Run("falls over to the next upstream", func(t *testing.T) {
		r := newDNSRelay([]netip.AddrPort{deadUpstream(t), fakeUpstream(t, false)}, 500*time.Millisecond)
		if _, err := r.exchange(ctx, query(9)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("all upstreams dead", func(t *testing.T) {
		r := newDNSRelay([]netip.AddrPort{deadUpstream(t)}, 200*time.Millisecond)
		if _, err := r.exchange(ctx, query(1)); err == nil {
			t.Fatal("want error")
		}
	})
	t.Run("short query rejected", func(t *testing.T) {
		r := newDNSRelay([]netip.AddrPort{fakeUpstream(t, false)}, time.Second)
		if _, err := r.exchange(ctx, []byte{1, 2, 3}); err == nil {
			t.Fatal("want error")
		}
	})
}
