// Package embed will host etcd, kube-apiserver, controller-manager, scheduler,
// kube-proxy and containerd in-process, and kubelet as a child. It is a later
// milestone and holds no code yet.
package embed
