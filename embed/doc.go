// Package embed hosts Kubernetes in-process: etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler, kube-proxy and containerd (with
// the CRI) run in the calling process, the kubelet as its child; each behind
// one lifecycle (start, ready, stop), started in dependency order and stopped
// in reverse. It also owns the cluster's PKI (made on first start, reused
// after), kubeconfig rendering, the node's configuration (kubelet, kube-proxy,
// CNI, containerd), the embedded helper binaries (runc, CNI plugins, pause),
// the pause image, image import, and the runc wrapper used where pod limits
// cannot be enforced.
package embed
