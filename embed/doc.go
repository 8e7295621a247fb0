// Package embed hosts the Kubernetes control plane in-process: etcd,
// kube-apiserver, kube-controller-manager and kube-scheduler, each behind one
// lifecycle (start, ready, stop), started in dependency order and stopped in
// reverse. It also owns the cluster's PKI (made on first start, reused after)
// and kubeconfig rendering. kube-proxy, containerd and the kubelet child
// belong here too and are not built yet.
package embed
