package join

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/cluster-bootstrap/token/jws"
)

const testToken = "abcdef.0123456789abcdef"

// fakeCluster is an httptest TLS server with its own CA that serves
// cluster-info the way the apiserver does once the bootstrap signer signed
// it; server is what cluster-info names (the test server when empty).
type fakeCluster struct {
	srv    *httptest.Server
	caPEM  []byte
	pin    string
	server string
	signID string // the token the signature is made with
	status int
}

func newFakeCluster(t *testing.T) *fakeCluster {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test-ca"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "kube-apiserver"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, ca, key.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeCluster{caPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), signID: testToken, status: http.StatusOK}
	f.pin, _ = CACertHash(f.caPEM)
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	f.srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{leafDER}, PrivateKey: key}}}
	f.srv.StartTLS()
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeCluster) endpoint() string { return strings.TrimPrefix(f.srv.URL, "https://") }

func (f *fakeCluster) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/api/v1/nodes/ready" || r.URL.Path == "/api/v1/nodes/notready" {
		if r.Header.Get("Authorization") != "Bearer "+testToken {
			http.Error(w, "who", http.StatusUnauthorized)
			return
		}
		status := map[bool]string{true: "True", false: "False"}[r.URL.Path == "/api/v1/nodes/ready"]
		json.NewEncoder(w).Encode(map[string]any{"status": map[string]any{"conditions": []map[string]string{{"type": "MemoryPressure", "status": "True"}, {"type": "Ready", "status": status}}}})
		return
	}
	if r.URL.Path == "/version" {
		w.Write([]byte(`{"gitVersion":"v1.37.2"}`))
		return
	}
	if r.URL.Path != "/api/v1/namespaces/kube-public/configmaps/cluster-info" || f.status != http.StatusOK {
		code := f.status
		if code == http.StatusOK {
			code = http.StatusNotFound
		}
		http.Error(w, "no", code)
		return
	}
	server := f.server
	if server == "" {
		server = f.srv.URL
	}
	kc, _ := clientcmd.Write(clientcmdapi.Config{Clusters: map[string]*clientcmdapi.Cluster{"unetes": {Server: server, CertificateAuthorityData: f.caPEM}}})
	id, secret, _ := strings.Cut(f.signID, ".")
	sig, _ := jws.ComputeDetachedSignature(string(kc), id, secret)
	json.NewEncoder(w).Encode(map[string]any{"data": map[string]string{"kubeconfig": string(kc), "jws-kubeconfig-" + id: sig}})
}

func TestDiscover(t *testing.T) {
	f := newFakeCluster(t)
	ok := Request{Endpoint: f.endpoint(), Token: testToken, CACertHash: f.pin}
	c, err := Discover(context.Background(), ok)
	if err != nil {
		t.Fatal(err)
	}
	if c.Server != f.srv.URL || string(c.CA) != string(f.caPEM) {
		t.Fatalf("found %+v", c)
	}
	wrongPin := "sha256:" + strings.Repeat("0", 64)
	for _, tc := range []struct {
		name    string
		req     Request
		setup   func()
		wantErr string
	}{
		{name: "not HOST:PORT", req: Request{Endpoint: "server", Token: testToken, CACertHash: f.pin}, wantErr: `"server" is not HOST:PORT`},
		{name: "malformed token", req: Request{Endpoint: f.endpoint(), Token: "abc", CACertHash: f.pin}, wantErr: "--token is not a bootstrap token"},
		{name: "malformed pin", req: Request{Endpoint: f.endpoint(), Token: testToken, CACertHash: "md5:00"}, wantErr: `--ca-cert-hash "md5:00" is not sha256:`},
		{name: "another token", req: Request{Endpoint: f.endpoint(), Token: "abcdef.fedcba9876543210", CACertHash: f.pin}, wantErr: "not signed with this token"},
		{name: "another token id", req: Request{Endpoint: f.endpoint(), Token: "zzzzzz.0123456789abcdef", CACertHash: f.pin}, wantErr: "not signed with this token"},
		{name: "another CA", req: Request{Endpoint: f.endpoint(), Token: testToken, CACertHash: wrongPin}, wantErr: "refusing to trust it"},
		{name: "clock ahead", req: Request{Endpoint: f.endpoint(), Token: testToken, CACertHash: f.pin, Now: func() time.Time { return time.Now().Add(10 * time.Minute) }},
			wantErr: `this host's clock is (10m0s|10m1s|9m59s) ahead of the server's`},
		{name: "clock behind", req: Request{Endpoint: f.endpoint(), Token: testToken, CACertHash: f.pin, Now: func() time.Time { return time.Now().Add(-time.Hour) }},
			wantErr: `this host's clock is (1h0m0s|59m59s|1h0m1s) behind the server's`},
		{name: "join add-on off", req: ok, setup: func() { f.status = http.StatusNotFound }, wantErr: `no readable cluster-info \(404 Not Found\): its join add-on is off`},
		{name: "API on loopback only", req: Request{Endpoint: strings.Replace(f.endpoint(), "127.0.0.1", "localhost", 1), Token: testToken, CACertHash: f.pin}, setup: func() { f.server = "https://127.0.0.1:6443" }, wantErr: "publishes its API on loopback only"},
		{name: "certificate without the address", req: ok, setup: func() { f.server = "https://" + strings.Replace(f.endpoint(), "127.0.0.1", "localhost", 1) },
			wantErr: "does not answer with the cluster's certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.status, f.server = http.StatusOK, ""
			if tc.setup != nil {
				tc.setup()
			}
			_, err := Discover(context.Background(), tc.req)
			if err == nil || !regexp.MustCompile(tc.wantErr).MatchString(err.Error()) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestDiscoverUnreachable(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	_, err := Discover(context.Background(), Request{Endpoint: addr, Token: testToken, CACertHash: "sha256:" + strings.Repeat("a", 64)})
	if err == nil || !strings.Contains(err.Error(), "cannot reach the cluster's API at "+addr) {
		t.Fatalf("err = %v", err)
	}
}

func TestCheckNodeName(t *testing.T) {
	f := newFakeCluster(t)
	c := Cluster{Server: f.srv.URL, CA: f.caPEM}
	for _, tc := range []struct{ name, token, wantErr string }{
		{name: "fresh", token: testToken},
		{name: "notready", token: testToken},
		{name: "ready", token: testToken, wantErr: `a node named "ready" is in the cluster and Ready: join with another --name`},
		{name: "ready", token: "abcdef.fedcba9876543210", wantErr: "does not take this token (401)"},
	} {
		err := CheckNodeName(context.Background(), c, tc.token, tc.name)
		if (tc.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.wantErr)
		}
	}
}
