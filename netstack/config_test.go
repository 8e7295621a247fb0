package netstack

import (
	"errors"
	"net/netip"
	"slices"
	"testing"
)

func TestResolve(t *testing.T) {
	rc := []byte("nameserver 192.0.2.53\n")
	for _, tc := range []struct {
		name    string
		args    Args
		rc      []byte
		wantMTU int
		wantErr string
	}{
		{name: "defaults", rc: rc, wantMTU: 65520},
		{name: "explicit mtu", args: Args{MTU: 1500}, rc: rc, wantMTU: 1500},
		{name: "mtu too small", args: Args{MTU: 576}, rc: rc, wantErr: "mtu 576 out of range: use a value from 1280 to 65520"},
		{name: "mtu too large", args: Args{MTU: 65521}, rc: rc, wantErr: "mtu 65521 out of range: use a value from 1280 to 65520"},
		{name: "no resolvers", rc: []byte("search example.com\n"), wantErr: ErrNoResolvers.Error()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Resolve(tc.args, tc.rc)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.MTU != tc.wantMTU || c.Guest.String() != "10.0.2.100" || c.Gateway.String() != "10.0.2.2" || c.DNS.String() != "10.0.2.3" {
				t.Fatalf("config %+v", c)
			}
			if c.MaxInFlight < 1024 {
				t.Fatalf("MaxInFlight %d < 1024", c.MaxInFlight)
			}
		})
	}
}

func TestParseResolvConf(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want []string
	}{
		{"stub resolver kept", "nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch .\n", []string{"127.0.0.53:53"}},
		{"order kept, ipv6 too", "# comment\nnameserver 192.0.2.1\nnameserver 2001:db8::1\n", []string{"192.0.2.1:53", "[2001:db8::1]:53"}},
		{"zoned link-local kept, junk skipped", "nameserver fe80::1%eth0\nnameserver bogus\nnameserver 192.0.2.9", []string{"[fe80::1%eth0]:53", "192.0.2.9:53"}},
		{"mapped v4 unmapped", "nameserver ::ffff:192.0.2.7\n", []string{"192.0.2.7:53"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseResolvConf([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			var s []string
			for _, a := range got {
				s = append(s, a.String())
			}
			if !slices.Equal(s, tc.want) {
				t.Fatalf("got %v, want %v", s, tc.want)
			}
		})
	}
	if _, err := ParseResolvConf(nil); !errors.Is(err, ErrNoResolvers) {
		t.Fatalf("empty: %v", err)
	}
}

func TestRoute(t *testing.T) {
	closed, _ := Resolve(Args{}, []byte("nameserver 192.0.2.53"))
	open, _ := Resolve(Args{AllowHostLoopback: true}, []byte("nameserver 192.0.2.53"))
	v6, _ := Resolve(Args{HostIPv6: true}, []byte("nameserver 192.0.2.53"))
	v6open, _ := Resolve(Args{HostIPv6: true, AllowHostLoopback: true}, []byte("nameserver 192.0.2.53"))
	for _, tc := range []struct {
		name    string
		cfg     Config
		dst     string
		verdict Verdict
		target  string
	}{
		{"public address forwarded", closed, "198.51.100.7:443", Forward, "198.51.100.7:443"},
		{"host LAN address forwarded", closed, "192.0.2.2:8080", Forward, "192.0.2.2:8080"},
		{"gateway refused by default", closed, "10.0.2.2:22", Refuse, ""},
		{"gateway to host loopback when allowed", open, "10.0.2.2:22", Forward, "127.0.0.1:22"},
		{"dns port served", closed, "10.0.2.3:53", ServeDNS, ""},
		{"dns address other port refused", closed, "10.0.2.3:80", Refuse, ""},
		{"own subnet refused", closed, "10.0.2.50:80", Refuse, ""},
		{"loopback refused", open, "127.0.0.1:80", Refuse, ""},
		{"unspecified refused", closed, "0.0.0.0:80", Refuse, ""},
		{"multicast refused", closed, "224.0.0.251:5353", Refuse, ""},
		{"broadcast refused", closed, "255.255.255.255:67", Refuse, ""},
		{"link-local refused", closed, "169.254.169.254:80", Refuse, ""},
		{"ipv6 refused where the host has none", closed, "[2001:db8::1]:443", Refuse, ""},
		{"ipv6 forwarded where the host has it", v6, "[2001:db8::1]:443", Forward, "[2001:db8::1]:443"},
		{"ipv6 host subnet forwarded", v6, "[fd00::2]:80", Forward, "[fd00::2]:80"},
		{"ipv6 gateway refused by default", v6, "[fd75:6e65:7465::2]:22", Refuse, ""},
		{"ipv6 gateway to host loopback when allowed", v6open, "[fd75:6e65:7465::2]:22", Forward, "[::1]:22"},
		{"ipv6 own subnet refused", v6, "[fd75:6e65:7465::50]:80", Refuse, ""},
		{"ipv6 loopback refused", v6open, "[::1]:80", Refuse, ""},
		{"ipv6 link-local refused", v6, "[fe80::1]:80", Refuse, ""},
		{"ipv6 multicast refused", v6, "[ff02::fb]:5353", Refuse, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, target := tc.cfg.Route(netip.MustParseAddrPort(tc.dst))
			if v != tc.verdict {
				t.Fatalf("verdict %v, want %v", v, tc.verdict)
			}
			if tc.target != "" && target.String() != tc.target {
				t.Fatalf("target %v, want %v", target, tc.target)
			}
		})
	}
}

func TestHostHasIPv6(t *testing.T) {
	const (
		prefix     = "fd000000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0\n"
		defaultVia = "00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd000000000000000000000000000001 00000400 00000002 00000000 00000003     eth0\n"
		rejectLo   = "00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo\n"
		rejectEth  = "00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 00000400 00000001 00000000 00000200     eth0\n"
	)
	for _, tc := range []struct {
		name, routes string
		want         bool
	}{
		{"default route", prefix + defaultVia + rejectLo, true},
		{"only the kernel's reject route on lo", prefix + rejectLo, false},
		{"a reject default route", prefix + rejectEth, false},
		{"no IPv6", "", false},
	} {
		if got := HostHasIPv6([]byte(tc.routes)); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
