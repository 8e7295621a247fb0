package main

import (
	"path/filepath"

	"github.com/unetes/unetes/embed"
)

// runcName is the name unetes answers to besides its own: containerd's shim
// runs runc by that name, and where limits cannot be enforced that is unetes
// (see embed.RuncWrapper).
const runcName = "runc"

// multiCall runs unetes as the runc wrapper when argv says so, and reports
// whether it did.
func multiCall(argv []string) (int, bool) {
	if filepath.Base(argv[0]) == runcName {
		return embed.RuncWrapper(argv[1:]), true
	}
	return 0, false
}
