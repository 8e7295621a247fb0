// Package embed will host etcd, kube-apiserver, controller-manager, scheduler,
// kube-proxy and containerd in-process, and kubelet as a child. What exists
// now is the part without Kubernetes dependencies: the cluster's PKI
// (generated on first start, reused after) and admin kubeconfig rendering.
package embed
