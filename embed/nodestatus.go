package embed

import (
	"context"
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// markNodeStarting sets the node's Ready condition to Unknown before the
// kubelet starts, where the last run left it True. The kubelet polls for
// readiness every 100 ms after start only while its node is not Ready; a
// stale True made it skip that and report at its 10 s status period instead,
// which put a restart at ~6 s or ~16 s by chance (the node really is not
// ready until the kubelet runs; the node controller would say so itself
// after its grace period).
func (cp *ControlPlane) markNodeStarting(ctx context.Context) error {
	kc, err := cp.WriteKubeconfig("admin")
	if err != nil {
		return err
	}
	rc, err := clientcmd.BuildConfigFromFlags("", kc)
	if err != nil {
		return err
	}
	c, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return err
	}
	node, err := c.CoreV1().Nodes().Get(ctx, cp.cfg.NodeName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil // a first start: the kubelet registers it
	}
	if err != nil {
		return fmt.Errorf("get node %s: %w", cp.cfg.NodeName, err)
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
		if _, err := c.CoreV1().Nodes().PatchStatus(ctx, cp.cfg.NodeName, patch); err != nil {
			return fmt.Errorf("mark node %s not ready until the kubelet runs: %w", cp.cfg.NodeName, err)
		}
	}
	return nil
}
