// Command pause is the process of every pod sandbox: it holds the pod's
// namespaces open, reaps orphans when it is the pod's PID 1, and exits on
// SIGINT or SIGTERM. The Makefile builds it static and embeds it in unetes,
// which packs it as the pause image at start.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range sigs {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			var ws syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
