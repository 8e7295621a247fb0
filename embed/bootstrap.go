package embed

import (
	"os"
	"path/filepath"
	"strings"

	"k8s.io/component-base/version"
)

// APIServingPath is /readyz without the two post-start hooks that reconcile
// the bootstrap RBAC roles and priority classes. Each sleeps 1 s before its
// first attempt (wait.Poll), then competes for the CPU with everything that
// starts: they held every start's readiness for 1–2 s. Over data an earlier
// run of this Kubernetes version bootstrapped, the objects
// exist, so the controllers and the node go on while the hooks confirm them.
// A cold start waits for the full /readyz before the controllers.
const APIServingPath = "/readyz?exclude=poststarthook/rbac/bootstrap-roles&exclude=poststarthook/scheduling/bootstrap-system-priority-classes"

// bootstrapFile, in the data dir, holds the Kubernetes version whose
// apiserver passed the full /readyz over this etcd data.
const bootstrapFile = "apiserver-bootstrapped"

// bootstrapped tells whether an apiserver of this Kubernetes version passed
// its full /readyz over the etcd data in dataDir in an earlier run (or in
// this one): its bootstrap roles and priority classes are stored.
func bootstrapped(dataDir string) bool {
	b, err := os.ReadFile(filepath.Join(dataDir, bootstrapFile))
	return err == nil && strings.TrimSpace(string(b)) == version.Get().GitVersion &&
		etcdHasData(filepath.Join(dataDir, "etcd"))
}

// markBootstrapped records, once the apiserver passed its full /readyz over
// the etcd data in dataDir, that it did (bootstrapped).
func markBootstrapped(dataDir string) error {
	return writeFileAtomic(filepath.Join(dataDir, bootstrapFile), []byte(version.Get().GitVersion+"\n"), 0o600)
}
