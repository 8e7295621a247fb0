package embed

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// nodeClient talks to the API about this node, as the admin.
type nodeClient struct {
	c    kubernetes.Interface
	name string
}

func (cp *ControlPlane) nodeClient() (*nodeClient, error) {
	rc, err := cp.AdminConfig()
	if err != nil {
		return nil, err
	}
	c, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	return &nodeClient{c: c, name: cp.cfg.NodeName}, nil
}

// markStarting sets the node's Ready condition to Unknown before the
// kubelet starts, where the last run left it True, and reports whether the
// node exists. The kubelet polls for readiness every 100 ms after start only
// while its node is not Ready; a stale True made it skip that and report at
// its 10 s status period instead, which put a restart at ~6 s or ~16 s by
// chance (the node really is not ready until the kubelet runs; the node
// controller would say so itself after its grace period).
func (n *nodeClient) markStarting(ctx context.Context) (exists bool, err error) {
	node, err := n.c.CoreV1().Nodes().Get(ctx, n.name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false, nil // a first start: the kubelet registers it
	}
	if err != nil {
		return false, fmt.Errorf("get node %s: %w", n.name, err)
	}
	for _, cond := range node.Status.Conditions {
		if cond.Type != corev1.NodeReady || cond.Status != corev1.ConditionTrue {
			continue
		}
		patch, _ := json.Marshal(map[string]any{"status": map[string]any{"conditions": []corev1.NodeCondition{{
			Type: corev1.NodeReady, Status: corev1.ConditionUnknown, Reason: "KubeletStarting",
			Message:           "unetes is starting the kubelet",
			LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now(),
		}}}})
		if _, err := n.c.CoreV1().Nodes().PatchStatus(ctx, n.name, patch); err != nil {
			return true, fmt.Errorf("mark node %s not ready until the kubelet runs: %w", n.name, err)
		}
	}
	return true, nil
}

// waitExists returns once the kubelet has registered the node with an
// address. kube-proxy started before that polls for its node once a second,
// which put up to a second between registration and the first Service rules.
func (n *nodeClient) waitExists(ctx context.Context) error {
	for {
		node, err := n.c.CoreV1().Nodes().Get(ctx, n.name, metav1.GetOptions{})
		if err == nil && len(node.Status.Addresses) > 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("node %s not registered: %w", n.name, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
