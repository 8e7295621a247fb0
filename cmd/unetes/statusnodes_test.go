package main

import (
	"bytes"
	"errors"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestNodeRows(t *testing.T) {
	node := func(name string, ready corev1.ConditionStatus, msg string) corev1.Node {
		n := corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
		n.Status.NodeInfo.KubeletVersion = "v1.37.2"
		n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: name}, {Type: corev1.NodeInternalIP, Address: "10.0.2.100"}}
		if ready != "" {
			n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse},
				{Type: corev1.NodeReady, Status: ready, Message: msg}}
		}
		return n
	}
	rows := nodeRows([]corev1.Node{node("a", corev1.ConditionTrue, "kubelet is posting ready status"),
		node("b", corev1.ConditionUnknown, "Kubelet stopped posting node status."), node("c", "", "")})
	var b bytes.Buffer
	writeNodes(&b, rows, nil)
	want := `nodes:       3
  a                   Ready (10.0.2.100, kubelet v1.37.2)
  b                   NotReady: Kubelet stopped posting node status. (10.0.2.100, kubelet v1.37.2)
  c                   NotReady (10.0.2.100, kubelet v1.37.2)
`
	if b.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", b.String(), want)
	}
	b.Reset()
	writeNodes(&b, nil, errors.New("list nodes: 503 Service Unavailable"))
	if b.String() != "nodes:       unknown (list nodes: 503 Service Unavailable)\n" {
		t.Fatalf("got %q", b.String())
	}
}
