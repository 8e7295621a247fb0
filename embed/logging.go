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

var logOnce sync.Once

// setupKlog points the process-wide klog at <logs>/kubernetes.log, once,
// before any component starts. Each component also gets its own contextual
// logger (ComponentLogger), so what it logs through its context goes to
// <logs>/<component>.log; what it logs through the global klog functions still
// lands in kubernetes.log, because klog is one per process. etcd has its own file.
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
