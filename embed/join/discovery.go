// Package join is the node half of joining a cluster: discovery, which
// finds and checks the cluster a node is told to join before it trusts or
// writes anything (kubeadm's token discovery: cluster-info signed with the
// bootstrap token, its CA checked against a pin). The server half is the
// join add-on (embed/addons/join.go).
package join

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"
	"k8s.io/cluster-bootstrap/token/jws"
	bootstraputil "k8s.io/cluster-bootstrap/token/util"
)

// MaxClockSkew is how far this host's clock may be from the server's: the
// certificates the server signs are valid from its now.
const MaxClockSkew = 2 * time.Minute

// Request is what a node is told to join with: the API's HOST:PORT, the
// bootstrap token and the pin of the cluster's CA.
type Request struct {
	Endpoint   string
	Token      string
	CACertHash string
	// Now is this host's clock (time.Now when nil).
	Now func() time.Time
}

// Cluster is what discovery found and checked: the API's URL and the CA
// that signs its certificate.
type Cluster struct {
	Server string
	CA     []byte // PEM
}

var pinRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// Check validates the request's form, before any connection.
func (r Request) Check() error {
	host, port, err := net.SplitHostPort(r.Endpoint)
	if err != nil || host == "" || port == "" {
		return fmt.Errorf("%q is not HOST:PORT of the cluster's API (`unetes token` on the server prints it as api:)", r.Endpoint)
	}
	if !bootstraputil.IsValidBootstrapToken(r.Token) {
		return errors.New("--token is not a bootstrap token (ID.SECRET, [a-z0-9]{6}.[a-z0-9]{16}): `unetes token` on the server prints it")
	}
	if !pinRE.MatchString(r.CACertHash) {
		return fmt.Errorf("--ca-cert-hash %q is not sha256: and 64 hex digits: `unetes token` on the server prints it", r.CACertHash)
	}
	return nil
}

// CACertHash is kubeadm's pin of a CA: "sha256:" and the hex SHA-256 of
// its certificate's SubjectPublicKeyInfo.
func CACertHash(caPEM []byte) (string, error) {
	block, _ := pem.Decode(caPEM)
	if block == nil {
		return "", errors.New("the CA certificate is not PEM")
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return "", fmt.Errorf("the CA certificate: %w", err)
	}
	sum := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// Discover fetches cluster-info from the endpoint without trusting it,
// checks that it is signed with the token and that its CA has the pin, that
// the clocks agree, and that the API it names answers with a certificate
// of that CA. Every refusal says what to do.
func Discover(ctx context.Context, r Request) (Cluster, error) {
	if err := r.Check(); err != nil {
		return Cluster{}, err
	}
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	id, secret, _ := strings.Cut(r.Token, ".")
	// Nothing is trusted yet: what comes back is checked below.
	blind := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	infoURL := "https://" + r.Endpoint + "/api/v1/namespaces/kube-public/configmaps/" + bootstrapapi.ConfigMapClusterInfo
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, infoURL, nil)
	resp, err := blind.Do(req)
	if err != nil {
		return Cluster{}, fmt.Errorf("cannot reach the cluster's API at %s: %w (is the server's `unetes run` up with --api-address, and the port open between the hosts?)", r.Endpoint, err)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if err != nil {
		return Cluster{}, fmt.Errorf("read cluster-info from %s: %w", r.Endpoint, err)
	}
	if d, err := http.ParseTime(resp.Header.Get("Date")); err == nil {
		// Date has whole seconds: allow one more.
		if skew := now().Sub(d); skew > MaxClockSkew+time.Second || skew < -MaxClockSkew-time.Second {
			return Cluster{}, fmt.Errorf("this host's clock is %s %s the server's (at most %s allowed): the certificates it signs would not be valid here; set the clock (NTP) and join again",
				skew.Abs().Round(time.Second), map[bool]string{true: "ahead of", false: "behind"}[skew > 0], MaxClockSkew)
		}
	}
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound, http.StatusForbidden, http.StatusUnauthorized:
		return Cluster{}, fmt.Errorf("%s has no readable cluster-info (%s): its join add-on is off (`--disable join`) or it is no unetes/kubeadm cluster", r.Endpoint, resp.Status)
	default:
		return Cluster{}, fmt.Errorf("cluster-info from %s: %s", r.Endpoint, resp.Status)
	}
	var cm struct {
		Data map[string]string `json:"data"`
	}
	if err := json.Unmarshal(body, &cm); err != nil {
		return Cluster{}, fmt.Errorf("cluster-info from %s is not a ConfigMap: %w", r.Endpoint, err)
	}
	kubeconfig := cm.Data[bootstrapapi.KubeConfigKey]
	sig, signed := cm.Data[bootstrapapi.JWSSignatureKeyPrefix+id]
	if !signed || !jws.DetachedTokenIsValid(sig, kubeconfig, id, secret) {
		return Cluster{}, errors.New("the cluster's cluster-info is not signed with this token: the token is wrong, revoked, or the server started a moment ago (`unetes token` on the server prints the current one)")
	}
	kc, err := clientcmd.Load([]byte(kubeconfig))
	if err != nil || len(kc.Clusters) != 1 {
		return Cluster{}, fmt.Errorf("cluster-info's kubeconfig does not name one cluster (%v)", err)
	}
	var c Cluster
	for _, cl := range kc.Clusters {
		c = Cluster{Server: cl.Server, CA: cl.CertificateAuthorityData}
	}
	pin, err := CACertHash(c.CA)
	if err != nil {
		return Cluster{}, fmt.Errorf("cluster-info: %w", err)
	}
	if pin != r.CACertHash {
		return Cluster{}, fmt.Errorf("the cluster's CA has the pin %s, not %s: refusing to trust it (check --ca-cert-hash against `unetes token` on the server)", pin, r.CACertHash)
	}
	u, err := url.Parse(c.Server)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return Cluster{}, fmt.Errorf("cluster-info names the API %q, which is no https URL", c.Server)
	}
	// A loopback API is fine for a node on the same host's network only.
	if isLoopback(u.Hostname()) && !isLoopback(endpointHost(r.Endpoint)) {
		return Cluster{}, fmt.Errorf("the server publishes its API on loopback only (%s): start it with `unetes run --api-address 0.0.0.0` (or the address this host reaches it at)", c.Server)
	}
	if err := checkServes(ctx, c); err != nil {
		return Cluster{}, err
	}
	return c, nil
}

// checkServes asks the API cluster-info names for /version, trusting only
// its CA: its certificate must name the address.
func checkServes(ctx context.Context, c Cluster) error {
	pinned, err := trusting(c.CA)
	if err != nil {
		return err
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.Server+"/version", nil)
	resp, err := pinned.Do(req)
	if err != nil {
		return fmt.Errorf("the API cluster-info names (%s) does not answer with the cluster's certificate: %w (was the server started with --api-address for this address?)", c.Server, err)
	}
	resp.Body.Close()
	return nil
}

func isLoopback(host string) bool {
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func endpointHost(endpoint string) string {
	h, _, _ := net.SplitHostPort(endpoint)
	return h
}

// trusting is an HTTP client that trusts the cluster's CA only.
func trusting(caPEM []byte) (*http.Client, error) {
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("the cluster's CA is not a PEM certificate")
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}, nil
}
