package hostfwd

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestStoreRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), storeFile)
	if got, err := load(path); err != nil || got != nil {
		t.Fatalf("missing file: %v %v", got, err)
	}
	a, _ := ParseSpec("8080:80")
	b, _ := ParseSpec("0.0.0.0:5353:53/udp")
	if err := save(path, []Spec{a, b}); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", fi.Mode().Perm())
	}
	got, err := load(path)
	if err != nil || len(got) != 2 || got[0] != a || got[1] != b {
		t.Fatalf("load = %v, %v", got, err)
	}
	os.WriteFile(path, []byte("{not json"), 0o600)
	if _, err := load(path); err == nil || !strings.Contains(err.Error(), "fix or remove the file") {
		t.Fatalf("corrupt file: %v", err)
	}
}

func TestWithSpecReplacesSameHostSide(t *testing.T) {
	a, _ := ParseSpec("8080:80")
	a2, _ := ParseSpec("8080:81")
	u, _ := ParseSpec("8080:80/udp")
	got := withSpec([]Spec{a, u}, a2)
	if len(got) != 2 || got[0] != u || got[1] != a2 {
		t.Fatalf("withSpec = %v", got)
	}
	if got := withoutKey(got, a.Key()); len(got) != 1 || got[0] != u {
		t.Fatalf("withoutKey = %v", got)
	}
}

func TestStoreKeepsServiceNotItsAddress(t *testing.T) {
	path := filepath.Join(t.TempDir(), storeFile)
	s, _ := ParseSpec("18080:80")
	s.Service, s.To = "shop/web", netip.MustParseAddr("10.96.0.9")
	if err := save(path, []Spec{s}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if strings.Contains(string(b), "10.96.0.9") || !strings.Contains(string(b), `"service": "shop/web"`) {
		t.Fatalf("saved %s", b)
	}
	got, err := load(path)
	s.To = netip.Addr{}
	if err != nil || len(got) != 1 || got[0] != s {
		t.Fatalf("load = %v, %v", got, err)
	}
	os.WriteFile(path, []byte(`[{"proto":"tcp","parentPort":1,"childPort":1,"service":"Bad/x"}]`), 0o600)
	if _, err := load(path); err == nil || !strings.Contains(err.Error(), "fix or remove the file") {
		t.Fatalf("bad service: %v", err)
	}
}
