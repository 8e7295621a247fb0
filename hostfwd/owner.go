package hostfwd

import (
	"fmt"
	"strings"
)

// Forwards a user did not make have an owner: the instance itself (the
// Kubernetes API's port) or a Kubernetes object whose ports the cluster
// publishes (a LoadBalancer Service, a pod's hostPort). They are not saved:
// their owner sets them up again at every start, and only it removes them.
// Owners are "api", "docker" (`docker run -p`, through RootlessKit's port
// API), "service/NAMESPACE/NAME" (a LoadBalancer Service's ports) and
// "pod/NAMESPACE/NAME" (a pod's hostPorts).
const (
	OwnerAPI    = "api"
	OwnerDocker = "docker"
	OwnerNode   = "node" // a joined node's kubelet port, which the cluster's apiserver dials
)

// splitOwner reads "service/NS/NAME" and "pod/NS/NAME".
func splitOwner(o string) (kind, ref string, ok bool) {
	parts := strings.Split(o, "/")
	if len(parts) != 3 || (parts[0] != "service" && parts[0] != "pod") || parts[1] == "" || parts[2] == "" {
		return "", "", false
	}
	return parts[0], parts[1] + "/" + parts[2], true
}

// ValidOwner reports whether o is an owner this package knows.
func ValidOwner(o string) bool {
	_, _, ok := splitOwner(o)
	return ok || o == OwnerAPI || o == OwnerDocker || o == OwnerNode
}

// Origin says in a word where f came from, as `forward --list` shows it:
// user, api, service or hostPort.
func (f Forward) Origin() string {
	kind, _, _ := splitOwner(f.Owner)
	switch {
	case f.Owner == "":
		return "user"
	case f.Owner == OwnerAPI:
		return "api"
	case f.Owner == OwnerDocker:
		return "docker"
	case f.Owner == OwnerNode:
		return "node"
	case kind == "pod":
		return "hostPort"
	}
	return kind
}

// Leads says where f leads and, when it is not active, why.
func (f Forward) Leads() string {
	kind, ref, _ := splitOwner(f.Owner)
	var to string
	switch {
	case f.Owner == OwnerAPI:
		to = "Kubernetes API (cannot be removed)"
	case f.Owner == OwnerDocker:
		to = "a docker container's published port"
	case kind == "service":
		to = "LoadBalancer Service " + ref
	case kind == "pod":
		to = "hostPort of pod " + ref
	case f.Spec.Service != "":
		to = "Service " + f.Spec.Service
	case f.Spec.To.IsValid():
		to = f.Spec.To.String()
	default:
		to = "the namespace"
	}
	if !f.Active {
		to += " (not active: " + f.Problem + ")"
	}
	return to
}

// describeOwner names the owner of a forward for an error message: what
// holds the port and what to change instead.
func describeOwner(owner string) string {
	kind, ref, _ := splitOwner(owner)
	switch {
	case owner == OwnerAPI:
		return "is the Kubernetes API's port (`unetes run --api-port` moves it)"
	case owner == OwnerDocker:
		return "is published by docker (`docker run -p`; it goes with the container)"
	case owner == OwnerNode:
		return "is this joined node's kubelet port, which the cluster's apiserver dials (logs, exec)"
	case kind == "service":
		return fmt.Sprintf("is published for LoadBalancer Service %s (change that Service's port or type, or delete it)", ref)
	case kind == "pod":
		return fmt.Sprintf("is the hostPort of pod %s (it goes with the pod)", ref)
	}
	return "is held by " + owner
}
