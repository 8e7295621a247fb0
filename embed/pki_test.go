package embed

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func testPKIConfig(t *testing.T) PKIConfig {
	return PKIConfig{Dir: filepath.Join(t.TempDir(), "pki"), ServiceIP: net.ParseIP("10.96.0.1"), NodeIP: net.ParseIP("10.0.2.100"), ClusterDNS: "cluster.local", NodeName: "unetes-test"}
}

func loadCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestPKIServingCertSANsAndChain(t *testing.T) {
	cfg := testPKIConfig(t)
	p, err := EnsurePKI(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ca := loadCert(t, p.Path("ca.crt"))
	srv := loadCert(t, p.Path("apiserver.crt"))
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	for _, name := range []string{"127.0.0.1", "localhost", "10.0.2.100", "10.96.0.1", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"} {
		if _, err := srv.Verify(x509.VerifyOptions{DNSName: name, Roots: roots}); err != nil {
			t.Errorf("apiserver cert does not verify for %s: %v", name, err)
		}
	}
	admin := loadCert(t, p.Path("admin.crt"))
	if !slices.Contains(admin.Subject.Organization, "system:masters") {
		t.Errorf("admin cert orgs %v lack system:masters", admin.Subject.Organization)
	}
	if _, err := admin.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("admin cert: %v", err)
	}
	fp := x509.NewCertPool()
	fp.AddCert(loadCert(t, p.Path("front-proxy-ca.crt")))
	if _, err := loadCert(t, p.Path("front-proxy-client.crt")).Verify(x509.VerifyOptions{Roots: fp, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("front-proxy client: %v", err)
	}
	if _, err := tls.LoadX509KeyPair(p.Path("apiserver.crt"), p.Path("apiserver.key")); err != nil {
		t.Errorf("apiserver pair: %v", err)
	}
	if d := time.Until(srv.NotAfter); d < 360*24*time.Hour || d > 366*24*time.Hour {
		t.Errorf("apiserver cert lifetime %s, want a year", d)
	}
}

func TestPKIKeyModes(t *testing.T) {
	p, err := EnsurePKI(testPKIConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(p.Dir)
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("pki dir mode %v", fi.Mode().Perm())
	}
	ents, _ := os.ReadDir(p.Dir)
	for _, e := range ents {
		fi, _ := e.Info()
		if strings.HasSuffix(e.Name(), ".key") && fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", e.Name(), fi.Mode().Perm())
		}
	}
}

func TestPKIReuseAndRenewal(t *testing.T) {
	cfg := testPKIConfig(t)
	first, err := EnsurePKI(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(first.Created) == 0 {
		t.Fatal("first run created nothing")
	}
	caBefore, _ := os.ReadFile(first.Path("ca.crt"))
	again, err := EnsurePKI(cfg)
	if err != nil || len(again.Created) != 0 {
		t.Fatalf("second run created %v, %v; want reuse", again.Created, err)
	}
	// A new address to cover reissues the serving certs (apiserver, kubelet, metrics-server), not the CA.
	cfg.NodeIP = net.ParseIP("10.0.2.101")
	moved, err := EnsurePKI(cfg)
	if err != nil || !slices.Equal(moved.Created, []string{"apiserver.crt", "apiserver.key", "kubelet.crt", "kubelet.key", "metrics-server.crt", "metrics-server.key"}) {
		t.Fatalf("new node IP created %v, %v", moved.Created, err)
	}
	// A host address other nodes use (run --api-address) reissues the
	// apiserver's only; without it again, the wider certificate is kept.
	cfg.ExtraIPs = []net.IP{net.ParseIP("192.0.2.7")}
	wider, err := EnsurePKI(cfg)
	if err != nil || !slices.Equal(wider.Created, []string{"apiserver.crt", "apiserver.key"}) {
		t.Fatalf("extra IP created %v, %v", wider.Created, err)
	}
	cfg.ExtraIPs = nil
	if narrower, err := EnsurePKI(cfg); err != nil || len(narrower.Created) != 0 {
		t.Fatalf("without the extra IP created %v, %v", narrower.Created, err)
	}
	// Eleven months later every leaf is renewed; the CA stays.
	cfg.Now = time.Now().Add(340 * 24 * time.Hour)
	later, err := EnsurePKI(cfg)
	if err != nil || !slices.Contains(later.Created, "admin.crt") || slices.Contains(later.Created, "ca.crt") {
		t.Fatalf("renewal created %v, %v", later.Created, err)
	}
	if caAfter, _ := os.ReadFile(first.Path("ca.crt")); string(caAfter) != string(caBefore) {
		t.Fatal("CA changed")
	}
}

func TestPKIForeignDataRefused(t *testing.T) {
	cfg := testPKIConfig(t)
	os.MkdirAll(cfg.Dir, 0o700)
	os.WriteFile(filepath.Join(cfg.Dir, "ca.crt"), []byte("not a cert"), 0o644)
	os.WriteFile(filepath.Join(cfg.Dir, "ca.key"), []byte("not a key"), 0o600)
	_, err := EnsurePKI(cfg)
	if err == nil || !strings.Contains(err.Error(), "corrupt or foreign") {
		t.Fatalf("err = %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(cfg.Dir, "ca.crt")); string(b) != "not a cert" {
		t.Fatal("foreign CA was overwritten")
	}
}

func TestKubeconfig(t *testing.T) {
	p, err := EnsurePKI(testPKIConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "cfg", "kubeconfig")
	if err := WriteAdminKubeconfig(p, "default", "https://127.0.0.1:6443", path); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("kubeconfig mode %v", fi.Mode().Perm())
	}
	b, _ := os.ReadFile(path)
	for _, want := range []string{"server: https://127.0.0.1:6443", "current-context: unetes-default", "client-key-data: ", "certificate-authority-data: "} {
		if !strings.Contains(string(b), want) {
			t.Errorf("kubeconfig lacks %q", want)
		}
	}
}

func TestCorruptEtcdDataRefusedAndKept(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "member", "snap", "db")
	os.MkdirAll(filepath.Dir(db), 0o700)
	garbage := []byte(strings.Repeat("not a bolt database ", 300))
	os.WriteFile(db, garbage, 0o600)
	err := checkEtcdData(dir)
	if err == nil || !strings.Contains(err.Error(), "corrupt or foreign") || !strings.Contains(err.Error(), "unetes reset") {
		t.Fatalf("err = %v", err)
	}
	if b, _ := os.ReadFile(db); string(b) != string(garbage) {
		t.Fatal("the database was changed")
	}
	if err := checkEtcdData(t.TempDir()); err != nil {
		t.Fatalf("fresh dir: %v", err)
	}
}
