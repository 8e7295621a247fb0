// Package embed hosts Kubernetes in-process: etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler, kube-proxy and containerd (with
// the CRI) run in the calling process (the sandbox), the kubelet and dockerd
// as its supervised children; each behind one lifecycle (start, ready,
// stop), started in dependency order and stopped in reverse. It also owns
// the cluster's PKI (made on first start, reused after), kubeconfig
// rendering, the node's configuration (kubelet, kube-proxy, CNI,
// containerd, dockerd's daemon.json), the embedded helper programs (runc
// and its wrapper for hosts without enforced limits, containerd's runc shim,
// the CNI plugins, pause, dockerd: one zstd archive unpacked into the data
// dir), the pause image, image import, and the watch on the data dir's disk
// that warns before the kubelet evicts. The add-ons around the control plane
// are the subpackage addons.
package embed
