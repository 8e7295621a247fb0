package main

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestServiceAddr(t *testing.T) {
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"},
		Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.9", Ports: []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP}, {Port: 53, Protocol: corev1.ProtocolUDP}}}}
	if ip, err := serviceAddr(svc, "shop/web", 53, "udp"); err != nil || ip.String() != "10.96.0.9" {
		t.Fatalf("53/udp: %v %v", ip, err)
	}
	if _, err := serviceAddr(svc, "shop/web", 53, "tcp"); err == nil || !strings.Contains(err.Error(), "its ports are 80/tcp, 53/udp") {
		t.Fatalf("53/tcp: %v", err)
	}
	svc.Spec.ClusterIP = "None"
	if _, err := serviceAddr(svc, "shop/web", 80, "tcp"); err == nil || !strings.Contains(err.Error(), "headless") {
		t.Fatalf("headless: %v", err)
	}
}
