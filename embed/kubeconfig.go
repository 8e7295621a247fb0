package embed

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Kubeconfig renders a kubeconfig with one cluster, user and context, all
// named name, certificates embedded. It is pure.
func Kubeconfig(name, server string, caPEM, certPEM, keyPEM []byte) []byte {
	b64 := base64.StdEncoding.EncodeToString
	var s strings.Builder
	fmt.Fprintf(&s, `apiVersion: v1
kind: Config
clusters:
- name: %[1]s
  cluster:
    server: %[2]s
    certificate-authority-data: %[3]s
users:
- name: %[1]s-admin
  user:
    client-certificate-data: %[4]s
    client-key-data: %[5]s
contexts:
- name: %[1]s
  context:
    cluster: %[1]s
    user: %[1]s-admin
current-context: %[1]s
`, name, server, b64(caPEM), b64(certPEM), b64(keyPEM))
	return []byte(s.String())
}

// KubeconfigFor renders a kubeconfig for the PKI identity user ("admin",
// "scheduler", …), named name, talking to server.
func (p *PKI) KubeconfigFor(user, name, server string) ([]byte, error) {
	var parts [3][]byte
	for i, f := range []string{"ca.crt", user + ".crt", user + ".key"} {
		b, err := os.ReadFile(p.Path(f))
		if err != nil {
			return nil, fmt.Errorf("kubeconfig for %s: %w", user, err)
		}
		parts[i] = b
	}
	return Kubeconfig(name, server, parts[0], parts[1], parts[2]), nil
}

// WriteAdminKubeconfig writes the admin kubeconfig of p to path, mode 0600.
func WriteAdminKubeconfig(p *PKI, name, server, path string) error {
	b, err := p.KubeconfigFor("admin", "unetes-"+name, server)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	return writeFileAtomic(path, b, 0o600)
}
