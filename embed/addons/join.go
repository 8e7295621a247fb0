package addons

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/unetes/unetes/embed"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"
	bootstraputil "k8s.io/cluster-bootstrap/token/util"
	"k8s.io/klog/v2"
)

// The server half of node join, on Kubernetes' own machinery (what
// kubeadm sets up): a bootstrap token authenticates a joining kubelet as
// system:bootstrap:<id> in JoinGroup; with it the kubelet may create a
// node client CSR, which the controller-manager's CSR approver approves and
// its signer signs (TLS bootstrap); cluster-info in kube-public, readable
// without credentials and signed with the token by the bootstrap signer,
// gives a joiner the CA it pins by hash. The token lives in the data dir
// (JoinTokenFile) and does not expire (like k3s's); `--disable join`
// deletes its Secret, which revokes it.
const (
	JoinTokenFile = "join-token"
	JoinGroup     = "system:bootstrappers:unetes:nodes"
	// clusterInfoCluster names the one cluster of cluster-info's kubeconfig.
	clusterInfoCluster = "unetes"
)

type joinAddon struct {
	cancel context.CancelFunc
	done   chan struct{}
	logf   io.Closer
}

// LoadJoinToken returns the instance's bootstrap token (ID.SECRET) from
// dataDir, making one the first time (made says so).
func LoadJoinToken(dataDir string) (tok string, made bool, err error) {
	path := filepath.Join(dataDir, JoinTokenFile)
	b, err := os.ReadFile(path)
	if err == nil {
		tok = strings.TrimSpace(string(b))
		if !bootstraputil.IsValidBootstrapToken(tok) {
			return "", false, fmt.Errorf("%s does not hold a bootstrap token (ID.SECRET, [a-z0-9]{6}.[a-z0-9]{16}): delete it and a new token is made at the next start", path)
		}
		return tok, false, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", false, fmt.Errorf("join token: %w", err)
	}
	tok, err = bootstraputil.GenerateBootstrapToken()
	if err != nil {
		return "", false, fmt.Errorf("join token: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) { // made meanwhile by another process
		return LoadJoinToken(dataDir)
	}
	if err != nil {
		return "", false, fmt.Errorf("join token: %w", err)
	}
	_, err = f.WriteString(tok + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return "", false, fmt.Errorf("join token: %w", err)
	}
	return tok, true, nil
}

func (*joinAddon) Objects(env Env, _ bool) ([]runtime.Object, error) {
	tok, _, err := LoadJoinToken(env.DataDir)
	if err != nil {
		return nil, err
	}
	id, secret, _ := strings.Cut(tok, ".")
	ca, err := os.ReadFile(filepath.Join(env.PKIDir, "ca.crt"))
	if err != nil {
		return nil, fmt.Errorf("cluster-info: %w", err)
	}
	info, err := clientcmd.Write(clientcmdapi.Config{Clusters: map[string]*clientcmdapi.Cluster{
		clusterInfoCluster: {Server: "https://" + env.APIEndpoint, CertificateAuthorityData: ca},
	}})
	if err != nil {
		return nil, fmt.Errorf("cluster-info: %w", err)
	}
	const ns = metav1.NamespacePublic
	return append(joinRBAC(),
		&corev1.Secret{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
			ObjectMeta: metav1.ObjectMeta{Name: bootstraputil.BootstrapTokenSecretName(id), Namespace: metav1.NamespaceSystem},
			Type:       bootstrapapi.SecretTypeBootstrapToken,
			Data: map[string][]byte{
				bootstrapapi.BootstrapTokenIDKey:               []byte(id),
				bootstrapapi.BootstrapTokenSecretKey:           []byte(secret),
				bootstrapapi.BootstrapTokenUsageAuthentication: []byte("true"),
				bootstrapapi.BootstrapTokenUsageSigningKey:     []byte("true"),
				bootstrapapi.BootstrapTokenExtraGroupsKey:      []byte(JoinGroup),
				bootstrapapi.BootstrapTokenDescriptionKey:      []byte("unetes: nodes join with it (`unetes token` prints it)"),
			},
		},
		&corev1.ConfigMap{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
			ObjectMeta: metav1.ObjectMeta{Name: bootstrapapi.ConfigMapClusterInfo, Namespace: ns},
			Data:       map[string]string{bootstrapapi.KubeConfigKey: string(info)},
		},
		role(ns, "unetes:cluster-info", rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"configmaps"},
			ResourceNames: []string{bootstrapapi.ConfigMapClusterInfo}, Verbs: []string{"get"}}),
		bindRole(ns, "unetes:cluster-info", "unetes:cluster-info", "system:anonymous"),
		// A joiner checks that no Ready node has its name (kubeadm's
		// kubeadm:get-nodes).
		clusterRole("unetes:join:get-nodes", rule([]string{""}, []string{"nodes"}, "get")),
		bindClusterRoleToGroup("unetes:join:get-nodes", "unetes:join:get-nodes", JoinGroup),
		// Joiners create node client CSRs, which are approved at once;
		// nodes renew their own certificates.
		bindClusterRoleToGroup("unetes:join:bootstrappers", "system:node-bootstrapper", JoinGroup),
		bindClusterRoleToGroup("unetes:join:approve-node-client", "system:certificates.k8s.io:certificatesigningrequests:nodeclient", JoinGroup),
		bindClusterRoleToGroup("unetes:join:renew-node-client", "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient", "system:nodes"),
		// Joined nodes run kube-proxy as the node (the kubelet's client
		// certificate).
		bindClusterRoleToGroup("unetes:join:node-proxier", "system:node-proxier", "system:nodes"),
	), nil
}

// Start runs the approver of joined kubelets' serving certificates
// (joinapprove.go); the rest is Kubernetes': the apiserver authenticates
// the token, the controller-manager approves client CSRs, signs, and
// signs cluster-info.
func (j *joinAddon) Start(ctx context.Context, env Env, failed func(error)) error {
	client, err := clientFor(env, joinIdentity)
	if err != nil {
		return err
	}
	rctx, cancel := context.WithCancel(context.Background())
	rctx, logf, err := embed.ComponentLogger(rctx, env.LogDir, Join)
	if err != nil {
		cancel()
		return err
	}
	j.cancel, j.logf, j.done = cancel, logf, make(chan struct{})
	synced := make(chan error, 1)
	go func() {
		defer close(j.done)
		synced <- approveServing(rctx, client, klog.FromContext(rctx))
		<-rctx.Done()
	}()
	select {
	case err = <-synced:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		j.Stop()
	}
	return err
}

// Ready waits, where nodes can join (the overlay is on: the API is
// published beyond loopback), until the bootstrap signer has signed
// cluster-info with the token, so that a join right after the start is not
// refused as unsigned.
func (*joinAddon) Ready(ctx context.Context, env Env, api dynamic.Interface) error {
	if env.OverlayIP == nil {
		return nil
	}
	tok, _, err := LoadJoinToken(env.DataDir)
	if err != nil {
		return err
	}
	id, _, _ := strings.Cut(tok, ".")
	gvr := schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	return poll(ctx, "cluster-info signed with the join token", 50*time.Millisecond, func(ctx context.Context) error {
		u, err := api.Resource(gvr).Namespace(metav1.NamespacePublic).Get(ctx, bootstrapapi.ConfigMapClusterInfo, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if _, ok, _ := unstructured.NestedString(u.Object, "data", bootstrapapi.JWSSignatureKeyPrefix+id); !ok {
			return errors.New("not signed yet")
		}
		return nil
	})
}

func (j *joinAddon) Stop() {
	if j.cancel == nil {
		return
	}
	j.cancel()
	<-j.done
	j.logf.Close()
	j.cancel = nil
}
