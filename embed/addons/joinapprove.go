package addons

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	k8scert "k8s.io/kubernetes/pkg/apis/certificates"
)

// The join add-on approves joined kubelets' serving certificates (signer
// kubernetes.io/kubelet-serving), which Kubernetes leaves to the cluster:
// the apiserver checks kubelets against the cluster CA, so a kubelet on
// another host needs one for logs, exec and port-forward. A request is
// approved when it is Kubernetes' kubelet-serving shape (O=system:nodes,
// CN=system:node:NAME, server-auth usages, DNS or IP names only), made by
// that very node, and names only the addresses its Node reports (so a node
// cannot get a certificate for another's address). Anything else is left
// pending, for an admin to decide (`kubectl certificate approve`).

const joinIdentity = "join" // user system:unetes:join

// How long the approver keeps looking at a request it cannot approve yet.
const (
	approveAttempts = 30
	approveRetry    = 2 * time.Second
)

// joinRBAC lets the approver read CSRs and Nodes and approve for the
// kubelet-serving signer only.
func joinRBAC() []runtime.Object {
	user := "system:unetes:" + joinIdentity
	return []runtime.Object{
		clusterRole(user,
			rule([]string{"certificates.k8s.io"}, []string{"certificatesigningrequests"}, "get", "list", "watch"),
			rule([]string{"certificates.k8s.io"}, []string{"certificatesigningrequests/approval"}, "update"),
			namedRule([]string{"certificates.k8s.io"}, []string{"signers"}, []string{certificatesv1.KubeletServingSignerName}, "approve"),
			rule([]string{""}, []string{"nodes"}, "get")),
		bindClusterRole(user, user, user),
	}
}

// approveServing watches CSRs until ctx ends and approves kubelet-serving
// requests that servingCSROK accepts.
func approveServing(ctx context.Context, client kubernetes.Interface, log klog.Logger) error {
	f := informers.NewSharedInformerFactory(client, 0)
	inf := f.Certificates().V1().CertificateSigningRequests().Informer()
	var handle func(name string, attempt int)
	handle = func(name string, attempt int) {
		obj, ok, _ := inf.GetStore().GetByKey(name)
		csr, _ := obj.(*certificatesv1.CertificateSigningRequest)
		if !ok || csr == nil || csr.Spec.SignerName != certificatesv1.KubeletServingSignerName || decided(csr) || ctx.Err() != nil {
			return
		}
		node, err := nodeOf(ctx, client, csr)
		if err == nil {
			err = servingCSROK(csr, node)
		}
		if err != nil {
			// A kubelet may ask before its Node shows its addresses: look
			// again for a while before leaving the request to an admin.
			if attempt < approveAttempts {
				time.AfterFunc(approveRetry, func() { handle(name, attempt+1) })
				return
			}
			log.Info("CSR left pending for an admin (kubectl certificate approve|deny)", "csr", csr.Name, "why", err.Error())
			return
		}
		csr = csr.DeepCopy()
		csr.Status.Conditions = append(csr.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
			Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue, Reason: "UnetesJoinApprove",
			Message: "the node's serving certificate for the addresses its Node reports", LastUpdateTime: metav1.Now()})
		if _, err := client.CertificatesV1().CertificateSigningRequests().UpdateApproval(ctx, csr.Name, csr, metav1.UpdateOptions{}); err != nil {
			log.Error(err, "approve CSR", "csr", csr.Name)
			return
		}
		log.Info("approved a serving certificate", "csr", csr.Name, "node", csr.Spec.Username)
	}
	key := func(obj any) string { k, _ := cache.MetaNamespaceKeyFunc(obj); return k }
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: func(o any) { go handle(key(o), 0) }}); err != nil {
		return err
	}
	f.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return fmt.Errorf("join: CSR informer did not sync: %w", ctx.Err())
	}
	return nil
}

func decided(csr *certificatesv1.CertificateSigningRequest) bool {
	for _, c := range csr.Status.Conditions {
		if c.Type == certificatesv1.CertificateApproved || c.Type == certificatesv1.CertificateDenied || c.Type == certificatesv1.CertificateFailed {
			return true
		}
	}
	return false
}

// nodeOf is the Node whose kubelet made csr.
func nodeOf(ctx context.Context, client kubernetes.Interface, csr *certificatesv1.CertificateSigningRequest) (*corev1.Node, error) {
	name, ok := strings.CutPrefix(csr.Spec.Username, "system:node:")
	if !ok || !slices.Contains(csr.Spec.Groups, "system:nodes") {
		return nil, fmt.Errorf("requested by %q, not by a node", csr.Spec.Username)
	}
	return client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
}

// servingCSROK says whether csr is node's own kubelet-serving request for
// addresses node has. Pure.
func servingCSROK(csr *certificatesv1.CertificateSigningRequest, node *corev1.Node) error {
	block, _ := pem.Decode(csr.Spec.Request)
	if block == nil {
		return errors.New("the request is not PEM")
	}
	req, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return err
	}
	usages := sets.NewString() // the helper's type
	for _, u := range csr.Spec.Usages {
		usages.Insert(string(u))
	}
	if err := k8scert.ValidateKubeletServingCSR(req, usages); err != nil {
		return err
	}
	if req.Subject.CommonName != csr.Spec.Username || csr.Spec.Username != "system:node:"+node.Name {
		return fmt.Errorf("CN %q requested by %q for node %q", req.Subject.CommonName, csr.Spec.Username, node.Name)
	}
	ips, names := sets.New[string](), sets.New(node.Name)
	for _, a := range node.Status.Addresses {
		switch a.Type {
		case corev1.NodeHostName, corev1.NodeInternalDNS, corev1.NodeExternalDNS:
			names.Insert(a.Address)
		case corev1.NodeInternalIP, corev1.NodeExternalIP:
			if ip := net.ParseIP(a.Address); ip != nil {
				ips.Insert(ip.String())
			}
		}
	}
	for _, ip := range req.IPAddresses {
		if !ips.Has(ip.String()) {
			return fmt.Errorf("address %s is not one node %s reports", ip, node.Name)
		}
	}
	for _, n := range req.DNSNames {
		if !names.Has(n) {
			return fmt.Errorf("name %q is not one node %s reports", n, node.Name)
		}
	}
	return nil
}
