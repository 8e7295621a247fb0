package main

import (
	"fmt"
	"io"

	"github.com/unetes/unetes/nsinit"
)

func runDoctor(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("doctor", "doctor", stderr)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	u, _ := currentUser()
	checks := nsinit.Doctor(nsinit.LiveHost{}, u)
	nsinit.Print(stdout, checks)
	fmt.Fprintln(stdout, "\ndocker clients (which builder their builds get):")
	nsinit.Print(stdout, dockerClientChecks())
	if failed := nsinit.Failed(checks); len(failed) > 0 {
		fmt.Fprintf(stdout, "\n%d prerequisite(s) missing: apply the fixes above, then run `unetes doctor` again.\n", len(failed))
		return 1
	}
	fmt.Fprintln(stdout, "\nthis host can run unetes.")
	return 0
}
