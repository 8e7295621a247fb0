// Package lazyi18n loads kubectl's translations only in the process that
// runs `unetes kubectl`. kubectl loads them at the first i18n.T call, which
// its packages make in their variable initialisers: every process of unetes
// (run, the child, the sandbox, the kubelet, each shim-free CLI call) paid
// ~27 ms to parse a catalogue it never shows.
//
// It must initialise before any package that calls i18n.T: Go initialises,
// among the packages whose imports are done, the first by import path, and
// this one needs only i18n; github.com/unetes sorts before k8s.io.
package lazyi18n

import (
	"os"

	"k8s.io/kubectl/pkg/util/i18n"
)

func init() {
	i18n.SetLoadTranslationsFunc(func() error {
		if len(os.Args) > 1 && os.Args[1] == "kubectl" {
			return i18n.LoadTranslations("kubectl", nil)
		}
		return nil
	})
}
