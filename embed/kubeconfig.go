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

// WriteAdminKubeconfig writes the admin kubeconfig of p to path, mode 0600.
func WriteAdminKubeconfig(p *PKI, name, server, path string) error {
	var parts [3][]byte
	for i, f := range []string{"ca.crt", "admin.crt", "admin.key"} {
		b, err := os.ReadFile(p.Path(f))
		if err != nil {
			return fmt.Errorf("kubeconfig: %w", err)
		}
		parts[i] = b
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, Kubeconfig("unetes-"+name, server, parts[0], parts[1], parts[2]), 0o600); err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	return os.Rename(tmp, path)
}
