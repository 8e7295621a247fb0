package embed

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Lifetimes of what PKI issues; leaves are renewed at start when less than
// renewBefore is left.
const (
	caLifetime   = 10 * 365 * 24 * time.Hour
	leafLifetime = 365 * 24 * time.Hour
	renewBefore  = 30 * 24 * time.Hour
)

// PKIConfig says what the certificates must cover.
type PKIConfig struct {
	Dir        string    // <data>/pki
	ServiceIP  net.IP    // first IP of the Service range (the kubernetes Service)
	NodeIP     net.IP    // the namespace's address
	ClusterDNS string    // cluster domain, e.g. "cluster.local"
	NodeName   string    // the kubelet's node name
	ExtraIPs   []net.IP  // more addresses the apiserver is reached at (a host address other nodes use)
	Now        time.Time // for tests; zero means time.Now()
}

// PKI is the set of files the components read.
type PKI struct {
	Dir string
	// Created lists the files written by this call (empty when all were reused).
	Created []string
}

// Path returns the path of a PKI file, e.g. Path("ca.crt").
func (p *PKI) Path(name string) string { return filepath.Join(p.Dir, name) }

// leaf is one issued certificate.
type leaf struct {
	name     string // file stem
	ca       string // issuing CA stem
	cn       string
	orgs     []string
	server   bool
	peer     bool // server and client (etcd's peer and client listeners)
	dnsNames []string
	ips      []net.IP
}

func (c PKIConfig) leaves() []leaf {
	dns := []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc." + c.ClusterDNS}
	ips := append([]net.IP{net.IPv4(127, 0, 0, 1), c.NodeIP, c.ServiceIP}, c.ExtraIPs...)
	return []leaf{
		{name: "apiserver", ca: "ca", cn: "kube-apiserver", server: true, dnsNames: dns, ips: ips},
		{name: "admin", ca: "ca", cn: "kubernetes-admin", orgs: []string{"system:masters"}},
		{name: "apiserver-kubelet-client", ca: "ca", cn: "kube-apiserver-kubelet-client", orgs: []string{"system:masters"}},
		{name: "controller-manager", ca: "ca", cn: "system:kube-controller-manager"},
		{name: "scheduler", ca: "ca", cn: "system:kube-scheduler"},
		// Their own HTTPS ports (/healthz): without these, each would make
		// itself an RSA key at every start (~0.2 s of CPU each).
		{name: "controller-manager-serving", ca: "ca", cn: "kube-controller-manager", server: true,
			dnsNames: []string{"localhost"}, ips: []net.IP{net.IPv4(127, 0, 0, 1)}},
		{name: "scheduler-serving", ca: "ca", cn: "kube-scheduler", server: true,
			dnsNames: []string{"localhost"}, ips: []net.IP{net.IPv4(127, 0, 0, 1)}},
		{name: "front-proxy-client", ca: "front-proxy-ca", cn: "front-proxy-client"},
		{name: "etcd-server", ca: "etcd-ca", cn: "unetes-etcd", server: true, peer: true,
			dnsNames: []string{"localhost"}, ips: []net.IP{net.IPv4(127, 0, 0, 1)}},
		{name: "apiserver-etcd-client", ca: "etcd-ca", cn: "kube-apiserver-etcd-client"},
		{name: "kubelet-client", ca: "ca", cn: "system:node:" + c.NodeName, orgs: []string{"system:nodes"}},
		{name: "kubelet", ca: "ca", cn: c.NodeName, server: true,
			dnsNames: []string{c.NodeName, "localhost"}, ips: []net.IP{net.IPv4(127, 0, 0, 1), c.NodeIP}},
		{name: "kube-proxy", ca: "ca", cn: "system:kube-proxy"},
		// The add-ons' identities; metrics-server's certificate also serves
		// the metrics API to the apiserver's aggregator.
		{name: "coredns", ca: "ca", cn: "system:coredns"},
		{name: "local-path-provisioner", ca: "ca", cn: "system:unetes:local-path-provisioner"},
		{name: "lb", ca: "ca", cn: "system:unetes:lb"},
		{name: "join", ca: "ca", cn: "system:unetes:join"},
		{name: "metrics-server", ca: "ca", cn: "system:metrics-server", peer: true,
			dnsNames: []string{"metrics-server.kube-system.svc", "localhost"}, ips: []net.IP{net.IPv4(127, 0, 0, 1), c.NodeIP}},
	}
}

// EnsurePKI creates what is missing in cfg.Dir and reuses what is valid: CAs
// are never replaced; a leaf is reissued when it is missing, expiring, or no
// longer covers the addresses asked for.
func EnsurePKI(cfg PKIConfig) (*PKI, error) {
	if cfg.Now.IsZero() {
		cfg.Now = time.Now()
	}
	if cfg.ServiceIP == nil || cfg.NodeIP == nil || cfg.ClusterDNS == "" || cfg.NodeName == "" {
		return nil, errors.New("pki: ServiceIP, NodeIP, ClusterDNS and NodeName are required")
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("create pki dir: %w", err)
	}
	p := &PKI{Dir: cfg.Dir}
	cas := map[string]*issuer{}
	for _, name := range []string{"ca", "front-proxy-ca", "etcd-ca"} {
		ca, created, err := ensureCA(p, name, cfg.Now)
		if err != nil {
			return nil, err
		}
		if created {
			p.Created = append(p.Created, name+".crt", name+".key")
		}
		cas[name] = ca
	}
	for _, l := range cfg.leaves() {
		created, err := ensureLeaf(p, l, cas[l.ca], cfg.Now)
		if err != nil {
			return nil, err
		}
		if created {
			p.Created = append(p.Created, l.name+".crt", l.name+".key")
		}
	}
	created, err := ensureSAKey(p)
	if err != nil {
		return nil, err
	}
	if created {
		p.Created = append(p.Created, "sa.key", "sa.pub")
	}
	return p, nil
}

type issuer struct {
	cert *x509.Certificate
	key  crypto.Signer
}

func ensureCA(p *PKI, name string, now time.Time) (*issuer, bool, error) {
	cert, key, err := readPair(p.Path(name+".crt"), p.Path(name+".key"))
	if err == nil {
		if !cert.IsCA || now.After(cert.NotAfter) {
			return nil, false, fmt.Errorf("pki: %s is not a valid CA (expired %s?): move %s away to start a new cluster", p.Path(name+".crt"), cert.NotAfter.Format(time.DateOnly), p.Dir)
		}
		return &issuer{cert, key}, false, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, false, fmt.Errorf("pki: read %s: %w: the data dir is corrupt or foreign; move it away or run `unetes reset`", name, err)
	}
	key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, false, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "unetes-" + name},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(caLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, false, fmt.Errorf("pki: create %s: %w", name, err)
	}
	cert, _ = x509.ParseCertificate(der)
	if err := writePair(p.Path(name+".crt"), p.Path(name+".key"), der, key); err != nil {
		return nil, false, err
	}
	return &issuer{cert, key}, true, nil
}

func ensureLeaf(p *PKI, l leaf, ca *issuer, now time.Time) (bool, error) {
	cert, _, err := readPair(p.Path(l.name+".crt"), p.Path(l.name+".key"))
	if err == nil && leafValid(cert, l, ca, now) {
		return false, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return false, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: l.cn, Organization: l.orgs},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(leafLifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		DNSNames:     l.dnsNames,
		IPAddresses:  l.ips,
	}
	if l.server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	if l.peer {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return false, fmt.Errorf("pki: issue %s: %w", l.name, err)
	}
	return true, writePair(p.Path(l.name+".crt"), p.Path(l.name+".key"), der, key)
}

// leafValid: signed by ca, not expiring soon, and covering every name asked for.
func leafValid(c *x509.Certificate, l leaf, ca *issuer, now time.Time) bool {
	if c.CheckSignatureFrom(ca.cert) != nil || now.Add(renewBefore).After(c.NotAfter) || c.Subject.CommonName != l.cn {
		return false
	}
	for _, d := range l.dnsNames {
		if !slices.Contains(c.DNSNames, d) {
			return false
		}
	}
	for _, ip := range l.ips {
		if !slices.ContainsFunc(c.IPAddresses, ip.Equal) {
			return false
		}
	}
	return true
}

func ensureSAKey(p *PKI) (bool, error) {
	if _, err := readKey(p.Path("sa.key")); err == nil {
		if _, err := os.Stat(p.Path("sa.pub")); err == nil {
			return false, nil
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return false, err
	}
	if err := writeKey(p.Path("sa.key"), key); err != nil {
		return false, err
	}
	pub, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return false, err
	}
	return true, writePEM(p.Path("sa.pub"), "PUBLIC KEY", pub, 0o644)
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	return n
}
