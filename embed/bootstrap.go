package embed

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"k8s.io/component-base/version"
)

// APIServingPath is /readyz without the two post-start hooks that reconcile
// the bootstrap RBAC roles and priority classes. Each sleeps 1 s before its
// first attempt (wait.Poll), then competes for the CPU with everything that
// starts: they held every start's readiness for 1–2 s. Over data an earlier
// run of this Kubernetes version bootstrapped (Bootstrapped), the objects
// exist, so the controllers and the node go on while the hooks confirm them.
const APIServingPath = "/readyz?exclude=poststarthook/rbac/bootstrap-roles&exclude=poststarthook/scheduling/bootstrap-system-priority-classes"

// bootstrapFile, in the data dir, holds the Kubernetes version whose
// apiserver passed the full /readyz over this etcd data.
const bootstrapFile = "apiserver-bootstrapped"

// Bootstrapped tells whether an apiserver of this Kubernetes version passed
// its full /readyz over the etcd data in dataDir in an earlier run (or in
// this one): its bootstrap roles and priority classes are stored.
func Bootstrapped(dataDir string) bool {
	b, err := os.ReadFile(filepath.Join(dataDir, bootstrapFile))
	return err == nil && strings.TrimSpace(string(b)) == version.Get().GitVersion &&
		etcdHasData(filepath.Join(dataDir, "etcd"))
}

// AwaitBootstrap waits for the apiserver's full /readyz and then records
// it (Bootstrapped). Warm starts went on without it.
func (cp *ControlPlane) AwaitBootstrap(ctx context.Context) error {
	c, err := AdminClient(cp.pki)
	if err != nil {
		return err
	}
	url := "https://127.0.0.1:" + strconv.Itoa(cp.cfg.APIPort) + "/readyz"
	deadline := time.Now().Add(3 * time.Minute)
	for {
		err := GetOK(ctx, c, url)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("apiserver bootstrap not done after 3m: %w (see %s)", err, filepath.Join(cp.cfg.LogDir(), "apiserver.log"))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	if Bootstrapped(cp.cfg.DataDir) {
		return nil
	}
	return writeFileAtomic(filepath.Join(cp.cfg.DataDir, bootstrapFile), []byte(version.Get().GitVersion+"\n"), 0o600)
}
