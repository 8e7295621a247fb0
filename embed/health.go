package embed

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// apiReady asks the apiserver's /readyz as the admin; over data the
// bootstrap completed on in an earlier run, without the bootstrap hooks
// (APIServingPath).
func (cp *ControlPlane) apiReady(ctx context.Context) error {
	c, err := AdminClient(cp.pki)
	if err != nil {
		return err
	}
	path := "/readyz"
	if cp.warm {
		path = APIServingPath
	}
	return GetOK(ctx, c, "https://127.0.0.1:"+strconv.Itoa(cp.cfg.APIPort)+path)
}

// healthz probes a component's secure port on 127.0.0.1 (/healthz needs
// no credentials; readiness only, so the certificate is not checked).
func healthz(port int) func(context.Context) error {
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	return func(ctx context.Context) error {
		return GetOK(ctx, c, "https://127.0.0.1:"+strconv.Itoa(port)+"/healthz")
	}
}

// GetOK fetches url with c and fails unless the answer is 200 OK.
func GetOK(ctx context.Context, c *http.Client, url string) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s: %s", url, resp.Status, b)
	}
	return nil
}

// AdminClient is an HTTPS client with the admin certificate, trusting the cluster CA.
func AdminClient(p *PKI) (*http.Client, error) {
	pair, err := tls.LoadX509KeyPair(p.Path("admin.crt"), p.Path("admin.key"))
	if err != nil {
		return nil, err
	}
	ca, err := os.ReadFile(p.Path("ca.crt"))
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: pool}}}, nil
}

// AdminConfig is a client configuration for the admin (system:masters),
// from a kubeconfig written to the state dir.
func (cp *ControlPlane) AdminConfig() (*rest.Config, error) {
	kc, err := cp.WriteKubeconfig("admin")
	if err != nil {
		return nil, err
	}
	rc, err := clientcmd.BuildConfigFromFlags("", kc)
	if err != nil {
		return nil, fmt.Errorf("admin client: %w", err)
	}
	return rc, nil
}

// WriteKubeconfig writes a kubeconfig for the PKI identity user (its own
// client certificate) into the state dir and returns its path.
func (cp *ControlPlane) WriteKubeconfig(user string) (string, error) {
	return cp.writeKubeconfigTo(user, "127.0.0.1:"+strconv.Itoa(cp.cfg.APIPort))
}

// writeKubeconfigTo is writeKubeconfig with the apiserver at addr.
func (cp *ControlPlane) writeKubeconfigTo(user, addr string) (string, error) {
	server := "https://" + addr
	b, err := cp.pki.KubeconfigFor(user, user, server)
	if err != nil {
		return "", err
	}
	path := filepath.Join(cp.cfg.StateDir, user+".kubeconfig")
	if err := writeFileAtomic(path, b, 0o600); err != nil {
		return "", err
	}
	return path, nil
}

// UnixClient is an HTTP client whose every request goes to the unix socket
// sock (the host part of its URLs is ignored).
func UnixClient(sock string, timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}},
	}
}
