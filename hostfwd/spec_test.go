package hostfwd

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/rootless-containers/rootlesskit/v3/pkg/port"
)

func TestParseSpec(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	for _, tc := range []struct {
		in   string
		want Spec
		err  bool
	}{
		{in: "8080:80", want: Spec{lo, 8080, 80, "tcp", netip.Addr{}, ""}},
		{in: "8080:80/tcp", want: Spec{lo, 8080, 80, "tcp", netip.Addr{}, ""}},
		{in: "5353:53/udp", want: Spec{lo, 5353, 53, "udp", netip.Addr{}, ""}},
		{in: "0.0.0.0:8080:80", want: Spec{netip.MustParseAddr("0.0.0.0"), 8080, 80, "tcp", netip.Addr{}, ""}},
		{in: "192.0.2.2:1:65535/udp", want: Spec{netip.MustParseAddr("192.0.2.2"), 1, 65535, "udp", netip.Addr{}, ""}},
		{in: "[::1]:8080:80", want: Spec{netip.MustParseAddr("::1"), 8080, 80, "tcp", netip.Addr{}, ""}},
		{in: "[::]:8080:80/udp", want: Spec{netip.MustParseAddr("::"), 8080, 80, "udp", netip.Addr{}, ""}},
		{in: "", err: true},
		{in: "8080", err: true},
		{in: "8080:", err: true},
		{in: ":80", err: true},
		{in: "0:80", err: true},
		{in: "8080:0", err: true},
		{in: "65536:80", err: true},
		{in: "8080:80/sctp", err: true},
		{in: "8080:80/", err: true},
		{in: "+80:80", err: true},
		{in: "080:80", err: true},
		{in: "localhost:8080:80", err: true},
		{in: "1.2.3:8080:80", err: true},
		{in: "::1:8080:80", err: true},
		{in: "[127.0.0.1]:8080:80", err: true},
		{in: "[fe80::1%eth0]:8080:80", err: true},
		{in: "1.2.3.4:5:6:7", err: true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseSpec(tc.in)
			if tc.err {
				if err == nil || !errors.Is(err, ErrSpecSyntax) {
					t.Fatalf("ParseSpec(%q) = %v, %v; want a syntax error", tc.in, got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseSpec(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
			}
			again, err := ParseSpec(got.String())
			if err != nil || again != got {
				t.Fatalf("round trip %q -> %q -> %+v, %v", tc.in, got.String(), again, err)
			}
		})
	}
}

func TestParseKey(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
		err  bool
	}{
		{in: "8080", want: "127.0.0.1:8080/tcp"},
		{in: "8080/udp", want: "127.0.0.1:8080/udp"},
		{in: "0.0.0.0:8080", want: "0.0.0.0:8080/tcp"},
		{in: "[::1]:53/udp", want: "[::1]:53/udp"},
		{in: "8080:80", err: true},
		{in: "x", err: true},
	} {
		k, err := ParseKey(tc.in)
		if tc.err != (err != nil) || (!tc.err && k.String() != tc.want) {
			t.Errorf("ParseKey(%q) = %v, %v; want %q", tc.in, k, err, tc.want)
		}
	}
}

func TestFromRK(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   port.Spec
		want string
		err  bool
	}{
		{"empty host address means loopback", port.Spec{Proto: "tcp", ParentPort: 8080, ChildPort: 80}, "127.0.0.1:8080:80/tcp", false},
		{"tcp4 is tcp", port.Spec{Proto: "tcp4", ParentIP: "0.0.0.0", ParentPort: 8080, ChildPort: 80}, "0.0.0.0:8080:80/tcp", false},
		{"udp6", port.Spec{Proto: "udp6", ParentIP: "::1", ParentPort: 53, ChildPort: 53}, "[::1]:53:53/udp", false},
		{"sctp refused", port.Spec{Proto: "sctp", ParentPort: 1, ChildPort: 1}, "", true},
		{"child ip is the target", port.Spec{Proto: "tcp", ParentPort: 1, ChildPort: 1, ChildIP: "10.96.0.7"}, "127.0.0.1:1:1/tcp", false},
		{"child loopback is no target", port.Spec{Proto: "tcp", ParentPort: 1, ChildPort: 1, ChildIP: "127.0.0.1"}, "127.0.0.1:1:1/tcp", false},
		{"child ipv6 refused", port.Spec{Proto: "tcp", ParentPort: 1, ChildPort: 1, ChildIP: "::1"}, "", true},
		{"port range", port.Spec{Proto: "tcp", ParentPort: 70000, ChildPort: 1}, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := FromRK(tc.in)
			if tc.err != (err != nil) || (!tc.err && s.String() != tc.want) {
				t.Fatalf("FromRK = %v, %v; want %q", s, err, tc.want)
			}
			if !tc.err {
				if back, err := FromRK(s.rkSpec()); err != nil || back != s {
					t.Fatalf("rkSpec round trip: %v %v", back, err)
				}
			}
		})
	}
}

func TestLongInputIsShownOnceAndShort(t *testing.T) {
	long := strings.Repeat("9", 100000) + ":80"
	for _, in := range []string{long, "1.2.3.4" + long, long + "/" + long} {
		_, err := ParseSpec(in)
		if err == nil || len(err.Error()) > 400 {
			t.Fatalf("ParseSpec(%d bytes): %d-byte error", len(in), len(err.Error()))
		}
	}
}

func TestParseService(t *testing.T) {
	for in, want := range map[string]string{"svc/web": "default/web", "service/web.shop": "shop/web", "svc/a-1.b-2": "b-2/a-1",
		"svc/Web": "", "pod/web": "", "svc/": "", "svc/web.": "default/web", "svc/-x": "", "web": ""} {
		got, err := ParseService(in)
		if (want == "") != (err != nil) || got != want {
			t.Errorf("ParseService(%q) = %q, %v; want %q", in, got, err, want)
		}
		if err != nil && !errors.Is(err, ErrSpecSyntax) {
			t.Errorf("ParseService(%q): %v is not ErrSpecSyntax", in, err)
		}
	}
}

// FuzzParseSpec: parsing never panics, and what parses round-trips exactly.
func FuzzParseSpec(f *testing.F) {
	for _, s := range []string{"8080:80", "0.0.0.0:8080:80/udp", "[::1]:1:2/tcp", "1.2.3.4:5:6:7", "[", "::::", "/udp"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, err := ParseSpec(in)
		if err != nil {
			if !errors.Is(err, ErrSpecSyntax) {
				t.Fatalf("ParseSpec(%q) error %v is not ErrSpecSyntax", in, err)
			}
			return
		}
		if s.HostPort == 0 || s.Port == 0 || (s.Proto != "tcp" && s.Proto != "udp") || !s.HostIP.IsValid() {
			t.Fatalf("ParseSpec(%q) accepted an invalid spec %+v", in, s)
		}
		again, err := ParseSpec(s.String())
		if err != nil || again != s {
			t.Fatalf("round trip %q -> %q -> %+v, %v", in, s.String(), again, err)
		}
		if k, err := ParseKey(s.Key().String()); err != nil || k != s.Key() {
			t.Fatalf("key round trip %q: %v %v", s.Key().String(), k, err)
		}
	})
}
