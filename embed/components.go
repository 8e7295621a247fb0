package embed

import (
	"context"
	"fmt"

	"github.com/spf13/pflag"
	"k8s.io/client-go/tools/cache"
	"k8s.io/component-base/cli"
	apiapp "k8s.io/kubernetes/cmd/kube-apiserver/app"
	apioptions "k8s.io/kubernetes/cmd/kube-apiserver/app/options"
	cmapp "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	cmoptions "k8s.io/kubernetes/cmd/kube-controller-manager/app/options"
	proxyapp "k8s.io/kubernetes/cmd/kube-proxy/app"
	schedapp "k8s.io/kubernetes/cmd/kube-scheduler/app"
	schedoptions "k8s.io/kubernetes/cmd/kube-scheduler/app/options"
	kubeletapp "k8s.io/kubernetes/cmd/kubelet/app"
)

// Each run* is one component's cobra RunE without the parts that belong to
// a whole process (signal handlers, log configuration, os.Exit): it parses
// the flags, completes the options and runs until ctx is done.

func parseFlags(name string, sets map[string]*pflag.FlagSet, args []string) error {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	for _, f := range sets {
		fs.AddFlagSet(f)
	}
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%s flags: %w", name, err)
	}
	return nil
}

func runAPIServer(ctx context.Context, args []string) error {
	s := apioptions.NewServerRunOptions()
	if err := parseFlags("kube-apiserver", s.Flags().FlagSets, args); err != nil {
		return err
	}
	if err := s.GenericServerRunOptions.ComponentGlobalsRegistry.Set(); err != nil {
		return fmt.Errorf("kube-apiserver feature gates: %w", err)
	}
	completed, err := s.Complete(ctx)
	if err != nil {
		return fmt.Errorf("kube-apiserver options: %w", err)
	}
	if errs := completed.Validate(); len(errs) != 0 {
		return fmt.Errorf("kube-apiserver options: %v", errs)
	}
	return apiapp.Run(ctx, completed)
}

func runControllerManager(ctx context.Context, args []string) error {
	s, err := cmoptions.NewKubeControllerManagerOptions()
	if err != nil {
		return err
	}
	known, off, aliases := cmapp.KnownControllers(), cmapp.ControllersDisabledByDefault(), cmapp.ControllerAliases()
	nfs := s.Flags(known, off, aliases)
	s.ParsedFlags = &nfs
	if err := parseFlags("kube-controller-manager", nfs.FlagSets, args); err != nil {
		return err
	}
	if err := s.ComponentGlobalsRegistry.Set(); err != nil {
		return fmt.Errorf("kube-controller-manager feature gates: %w", err)
	}
	c, err := s.Config(ctx, known, off, aliases)
	if err != nil {
		return fmt.Errorf("kube-controller-manager config: %w", err)
	}
	return cmapp.Run(ctx, c.Complete())
}

func runScheduler(ctx context.Context, args []string) error {
	opts := schedoptions.NewOptions()
	if err := parseFlags("kube-scheduler", opts.Flags.FlagSets, args); err != nil {
		return err
	}
	if err := opts.ComponentGlobalsRegistry.Set(); err != nil {
		return fmt.Errorf("kube-scheduler feature gates: %w", err)
	}
	name, err := cache.NewInformerName("kube-scheduler")
	if err != nil {
		return err
	}
	opts.InformerName = name
	cc, sched, err := schedapp.Setup(ctx, opts)
	if err != nil {
		return fmt.Errorf("kube-scheduler setup: %w", err)
	}
	return schedapp.Run(ctx, cc, sched)
}

// runKubeProxy is kube-proxy's RunE without its process scaffolding.
func runKubeProxy(ctx context.Context, args []string) error {
	opts := proxyapp.NewOptions()
	fs := pflag.NewFlagSet("kube-proxy", pflag.ContinueOnError)
	opts.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("kube-proxy flags: %w", err)
	}
	if err := opts.Complete(fs); err != nil {
		return fmt.Errorf("kube-proxy config: %w", err)
	}
	if err := opts.Validate(); err != nil {
		return fmt.Errorf("kube-proxy config: %w", err)
	}
	// Options.Run returns only on an error: a clean stop of the proxy (ctx
	// done) sends nil, which its loop ignores. So stop waiting on ctx; the
	// loop goroutine is left parked until the process exits.
	errc := make(chan error, 1)
	go func() { errc <- opts.Run(ctx) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		return nil
	}
}

// RunKubelet is the kubelet process (hidden role `_kubelet`): the stock
// kubelet command, which handles its own signals, with args.
func RunKubelet(args []string) int {
	cmd := kubeletapp.NewKubeletCommand(context.Background())
	cmd.SetArgs(args)
	return cli.Run(cmd)
}
