// Package e2e holds unetes' end-to-end tests and benchmarks. The tests build
// nothing of unetes themselves: they drive the real binary (make builds it)
// as an unprivileged user, in real namespaces, against servers they run on
// this host's own addresses.
package e2e
