package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/unetes/unetes/embed/join"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/cluster-bootstrap/token/jws"
)

// tokenInfo is what `unetes token` prints.
type tokenInfo struct{ token, id, secret, hash, api, join string }

func joinToken(t *testing.T, u *testUser, name string) tokenInfo {
	t.Helper()
	out, errOut, code := u.unetes(t, "", "token", "--name", name)
	if code != 0 {
		t.Fatalf("unetes token: exit %d: %s", code, errOut)
	}
	var ti tokenInfo
	for _, line := range strings.Split(out, "\n") {
		k, v, _ := strings.Cut(line, ":")
		switch v = strings.TrimSpace(v); k {
		case "token":
			ti.token = v
		case "ca-cert-hash":
			ti.hash = v
		case "api":
			ti.api = v
		case "join":
			ti.join = v
		}
	}
	ti.id, ti.secret, _ = strings.Cut(ti.token, ".")
	if len(ti.id) != 6 || len(ti.secret) != 16 || !strings.HasPrefix(ti.hash, "sha256:") {
		t.Fatalf("unetes token printed %q", out)
	}
	return ti
}

// call sends one request and returns the status and the decoded JSON.
func call(t *testing.T, c *http.Client, method, url, bearer string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

// TestJoinToken: the server half of node join, as a joining node meets it.
// `unetes token` prints a bootstrap token and the CA's pin; cluster-info is
// readable without credentials, holds a CA with that pin and is signed with
// the token by the bootstrap signer; with the token a node client CSR is
// approved and signed at once, and its certificate is a node's identity
// (the Node authorizer lets it read its own Node, not Secrets). A wrong
// token is refused; the token stays the same across a restart. The API
// is published on every address (--api-address 0.0.0.0), and a joiner
// reaches it at the host's address, which the certificate names.
func TestJoinToken(t *testing.T) {
	u := asUser(t, *flagTestUser)
	name := newName()
	if _, errOut, code := u.unetes(t, "", "token", "--name", name); code == 0 || !strings.Contains(errOut, "unetes run --name "+name) {
		t.Fatalf("token before any run: exit %d, %q", code, errOut)
	}
	port := freePort(t, "tcp")
	in := launch(t, u, name, []string{"--api-port", strconv.Itoa(port), "--api-address", "0.0.0.0"})
	ti := joinToken(t, u, name)
	endpoint := net.JoinHostPort(hostIP(t).String(), strconv.Itoa(port))
	base := "https://" + endpoint
	if ti.api != endpoint {
		t.Fatalf("token names the API %q, want %s (the host's address)", ti.api, endpoint)
	}

	// Discovery: nothing trusted yet but the pin.
	insecure := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	var info map[string]any
	waitFor(t, 90*time.Second, "cluster-info signed with the token", func() bool {
		code, m := call(t, insecure, "GET", base+"/api/v1/namespaces/kube-public/configmaps/cluster-info", "", nil)
		info = m
		data, _ := m["data"].(map[string]any)
		return code == http.StatusOK && data["jws-kubeconfig-"+ti.id] != nil
	})
	data := info["data"].(map[string]any)
	kubeconfig, _ := data["kubeconfig"].(string)
	if !jws.DetachedTokenIsValid(data["jws-kubeconfig-"+ti.id].(string), kubeconfig, ti.id, ti.secret) {
		t.Fatal("cluster-info's signature does not verify with the token")
	}
	kc, err := clientcmd.Load([]byte(kubeconfig))
	if err != nil || len(kc.Clusters) != 1 {
		t.Fatalf("cluster-info kubeconfig: %v %v", kc, err)
	}
	var caPEM []byte
	for _, c := range kc.Clusters {
		caPEM = c.CertificateAuthorityData
		if c.Server != base {
			t.Fatalf("cluster-info names the server %q, want %q", c.Server, base)
		}
	}
	block, _ := pem.Decode(caPEM)
	ca, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(ca.RawSubjectPublicKeyInfo); "sha256:"+hex.EncodeToString(sum[:]) != ti.hash {
		t.Fatalf("the CA in cluster-info does not have the pin `unetes token` printed (%s)", ti.hash)
	}
	// unetes' own discovery (the node half's first step) finds the same,
	// and refuses the wrong pin and a wrong token.
	found, err := join.Discover(context.Background(), join.Request{Endpoint: endpoint, Token: ti.token, CACertHash: ti.hash})
	if err != nil || found.Server != base || !bytes.Equal(found.CA, caPEM) {
		t.Fatalf("discovery: %+v, %v", found, err)
	}
	if _, err := join.Discover(context.Background(), join.Request{Endpoint: endpoint, Token: ti.token, CACertHash: "sha256:" + strings.Repeat("0", 64)}); err == nil || !strings.Contains(err.Error(), "refusing to trust it") {
		t.Fatalf("discovery with another pin: %v", err)
	}
	if _, err := join.Discover(context.Background(), join.Request{Endpoint: endpoint, Token: ti.id + ".0123456789abcdef", CACertHash: ti.hash}); err == nil || !strings.Contains(err.Error(), "not signed with this token") {
		t.Fatalf("discovery with a wrong token: %v", err)
	}
	// A joiner may not take the name of a Ready node (the server's own);
	// a new name is free. Nothing is written either way.
	if err := join.CheckNodeName(context.Background(), found, ti.token, "unetes-"+name); err == nil || !strings.Contains(err.Error(), "is in the cluster and Ready") {
		t.Fatalf("joining as the server's Ready node: %v", err)
	}
	if err := join.CheckNodeName(context.Background(), found, ti.token, "joiner-"+name); err != nil {
		t.Fatalf("a new node name: %v", err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	pinned := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}

	// TLS bootstrap with the token.
	node := "joiner-" + name
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: "system:node:" + node, Organization: []string{"system:nodes"}}}, key)
	if err != nil {
		t.Fatal(err)
	}
	csr := map[string]any{
		"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
		"metadata": map[string]any{"generateName": "node-csr-"},
		"spec": map[string]any{
			"request":    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}),
			"signerName": "kubernetes.io/kube-apiserver-client-kubelet",
			"usages":     []string{"digital signature", "client auth"},
		},
	}
	csrURL := base + "/apis/certificates.k8s.io/v1/certificatesigningrequests"
	if code, m := call(t, pinned, "POST", csrURL, ti.id+".0123456789abcdef", csr); code != http.StatusUnauthorized {
		t.Fatalf("a wrong token: %d %v", code, m)
	}
	code, m := call(t, pinned, "POST", csrURL, ti.token, csr)
	if code != http.StatusCreated {
		t.Fatalf("create the node's CSR with the token: %d %v", code, m)
	}
	csrName := m["metadata"].(map[string]any)["name"].(string)
	var certPEM []byte
	waitFor(t, 90*time.Second, "the CSR approved and signed", func() bool {
		code, m := call(t, pinned, "GET", csrURL+"/"+csrName, ti.token, nil)
		status, _ := m["status"].(map[string]any)
		c, _ := status["certificate"].(string)
		certPEM = []byte(c)
		return code == http.StatusOK && c != ""
	})
	certs, err := base64.StdEncoding.DecodeString(string(certPEM))
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	pair, err := tls.X509KeyPair(certs, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	if err != nil {
		t.Fatalf("the signed certificate: %v", err)
	}
	asNode := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{pair}}}}
	if code, m := call(t, asNode, "GET", base+"/api/v1/nodes/"+node, "", nil); code != http.StatusNotFound {
		t.Fatalf("the node reads its own Node: %d %v (want 404: allowed, not there yet)", code, m)
	}
	if code, _ := call(t, asNode, "GET", base+"/api/v1/namespaces/kube-system/secrets", "", nil); code != http.StatusForbidden {
		t.Fatalf("a node lists kube-system's Secrets: %d, want 403", code)
	}

	// The same token after a restart, now with the API on loopback only
	// (the default): cluster-info names that.
	in.stop()
	launch(t, u, name, []string{"--api-port", strconv.Itoa(port)})
	local := "127.0.0.1:" + strconv.Itoa(port)
	again := joinToken(t, u, name)
	if again.token != ti.token || again.hash != ti.hash || again.api != local {
		t.Fatalf("after a restart on loopback: %+v, then %+v (want the same token and pin, api %s)", ti, again, local)
	}
	if code, m := call(t, pinned, "GET", "https://"+local+"/apis/certificates.k8s.io/v1/certificatesigningrequests/"+csrName, ti.token, nil); code != http.StatusOK {
		t.Fatalf("the token after a restart: %d %v", code, m)
	}
	waitFor(t, 60*time.Second, "cluster-info naming "+local, func() bool {
		code, m := call(t, insecure, "GET", "https://"+local+"/api/v1/namespaces/kube-public/configmaps/cluster-info", "", nil)
		data, _ := m["data"].(map[string]any)
		kc, err := clientcmd.Load([]byte(fmt.Sprint(data["kubeconfig"])))
		if code != http.StatusOK || err != nil {
			return false
		}
		for _, c := range kc.Clusters {
			return c.Server == "https://"+local
		}
		return false
	})
}
