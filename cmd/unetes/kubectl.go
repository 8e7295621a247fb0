package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/component-base/cli"
	kubectlcmd "k8s.io/kubectl/pkg/cmd"
	"k8s.io/kubectl/pkg/cmd/plugin"
	"k8s.io/kubectl/pkg/cmd/util"
)

// runKubectl is kubectl, built in, pointed at the instance's admin kubeconfig.
// Only a leading --name N (or --name=N) is unetes' own; the rest is kubectl's.
func runKubectl(args []string, stdout, stderr io.Writer) int {
	inst, args := leadingName(args)
	paths, err := inst.paths()
	if err != nil {
		return fail(stderr, err)
	}
	kc := filepath.Join(paths.ConfigDir, "kubeconfig")
	if _, err := os.Stat(kc); errors.Is(err, os.ErrNotExist) {
		return fail(stderr, fmt.Errorf("instance %q has no kubeconfig at %s yet: start it with `unetes run --name %s`", inst.name, kc, inst.name))
	}
	streams := genericiooptions.IOStreams{In: os.Stdin, Out: stdout, ErrOut: stderr}
	full := append([]string{"kubectl", "--kubeconfig", kc}, args...)
	c := kubectlcmd.NewDefaultKubectlCommandWithArgs(kubectlcmd.KubectlOptions{
		PluginHandler: kubectlcmd.NewDefaultPluginHandler(plugin.ValidPluginFilenamePrefixes),
		Arguments:     full,
		ConfigFlags:   genericclioptions.NewConfigFlags(true).WithDiscoveryBurst(300).WithDiscoveryQPS(50.0).WithWarningPrinter(streams),
		IOStreams:     streams,
	})
	c.SetArgs(full[1:])
	if err := cli.RunNoErrOutput(c); err != nil {
		util.CheckErr(err) // prints kubectl's way and exits 1
	}
	return 0
}
