package embed

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"k8s.io/klog/v2"
)

var logOnce sync.Once

// setupKlog points the process-wide klog at <logs>/kubernetes.log, once,
// before any component starts. Components log there (klog is global to the
// process); etcd has its own file.
func setupKlog(logDir string) error {
	var err error
	logOnce.Do(func() {
		if err = os.MkdirAll(logDir, 0o700); err != nil {
			return
		}
		var f *os.File
		f, err = os.OpenFile(filepath.Join(logDir, "kubernetes.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return
		}
		fs := flag.NewFlagSet("klog", flag.ContinueOnError)
		klog.InitFlags(fs)
		for k, v := range map[string]string{"logtostderr": "false", "alsologtostderr": "false", "one_output": "true", "stderrthreshold": "FATAL", "v": "1"} {
			if e := fs.Set(k, v); e != nil {
				err = fmt.Errorf("klog flag %s: %w", k, e)
				return
			}
		}
		klog.SetOutput(f)
	})
	return err
}
