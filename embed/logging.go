package embed

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"k8s.io/klog/v2"
	"k8s.io/klog/v2/textlogger"
)

// klogFile is <logs>/kubernetes.log, opened once.
var klogFile struct {
	once sync.Once
	f    *os.File
	err  error
}

// setupKlog points the process-wide klog at <logs>/kubernetes.log, before
// any component starts, and again once containerd has started: its CRI
// plugin points klog at stderr as it initialises. Each component also gets
// its own contextual logger (ComponentLogger), so what it logs through its
// context goes to <logs>/<component>.log; what it logs through the global
// klog functions still lands in kubernetes.log, because klog is one per
// process. etcd has its own file.
func setupKlog(logDir string) error {
	klogFile.once.Do(func() {
		if klogFile.err = os.MkdirAll(logDir, 0o700); klogFile.err == nil {
			klogFile.f, klogFile.err = os.OpenFile(filepath.Join(logDir, "kubernetes.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		}
	})
	if klogFile.err != nil {
		return klogFile.err
	}
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	for k, v := range map[string]string{"logtostderr": "false", "alsologtostderr": "false", "one_output": "true", "stderrthreshold": "FATAL", "v": "1"} {
		if err := fs.Set(k, v); err != nil {
			return fmt.Errorf("klog flag %s: %w", k, err)
		}
	}
	klog.SetOutput(klogFile.f)
	return nil
}

// ComponentLogger returns ctx carrying a logger that writes to <logs>/<name>.log,
// and the file to close when the component has stopped.
func ComponentLogger(ctx context.Context, logDir, name string) (context.Context, io.Closer, error) {
	f, err := os.OpenFile(filepath.Join(logDir, name+".log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return ctx, nil, fmt.Errorf("open %s log: %w", name, err)
	}
	l := textlogger.NewLogger(textlogger.NewConfig(textlogger.Output(f), textlogger.Verbosity(1)))
	return klog.NewContext(ctx, l), f, nil
}
