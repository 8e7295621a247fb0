// Package nsinit puts unetes into its namespaces without root: it re-executes
// the binary into new user, mount, network, pid, uts and ipc namespaces with
// the user's sub-IDs mapped (through newuidmap/newgidmap), copies up the
// directories Kubernetes writes, owns the instance's state and data paths and
// its lock, runs commands inside a running instance (`unetes exec`) and checks
// the host's prerequisites (`unetes doctor`).
//
// It knows nothing of Kubernetes. RootlessKit's pkg/child does the in-namespace
// work; its environment-variable protocol is confined to rootlesskit.go.
package nsinit
