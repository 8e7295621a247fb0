package addons

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"net"
	"strings"
	"testing"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func servingCSR(t *testing.T, cn, user string, orgs []string, ips []string, dns []string, usages ...certificatesv1.KeyUsage) *certificatesv1.CertificateSigningRequest {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn, Organization: orgs}, DNSNames: dns}
	for _, ip := range ips {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.ParseIP(ip))
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	if usages == nil {
		usages = []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageServerAuth}
	}
	return &certificatesv1.CertificateSigningRequest{Spec: certificatesv1.CertificateSigningRequestSpec{
		Request:    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}),
		SignerName: certificatesv1.KubeletServingSignerName, Username: user, Groups: []string{"system:nodes", "system:authenticated"}, Usages: usages,
	}}
}

func TestServingCSROK(t *testing.T) {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "b"}, Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{
		{Type: corev1.NodeInternalIP, Address: "192.168.77.2"}, {Type: corev1.NodeHostName, Address: "b"}}}}
	nodes := []string{"system:nodes"}
	for _, tc := range []struct {
		name string
		csr  *certificatesv1.CertificateSigningRequest
		want string // "" approves; else part of the refusal
	}{
		{"its own addresses", servingCSR(t, "system:node:b", "system:node:b", nodes, []string{"192.168.77.2"}, []string{"b"}), ""},
		{"another node's address", servingCSR(t, "system:node:b", "system:node:b", nodes, []string{"192.168.77.1"}, []string{"b"}), "is not one node b reports"},
		{"another name", servingCSR(t, "system:node:b", "system:node:b", nodes, []string{"192.168.77.2"}, []string{"kubernetes"}), "is not one node b reports"},
		{"for another node", servingCSR(t, "system:node:a", "system:node:b", nodes, []string{"192.168.77.2"}, nil), "CN"},
		{"not O=system:nodes", servingCSR(t, "system:node:b", "system:node:b", nil, []string{"192.168.77.2"}, nil), "system:nodes"},
		{"client usage", servingCSR(t, "system:node:b", "system:node:b", nodes, []string{"192.168.77.2"}, nil,
			certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth), "usages"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := servingCSROK(tc.csr, node)
			if tc.want == "" && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("got %v, want a refusal saying %q", err, tc.want)
			}
		})
	}
}
