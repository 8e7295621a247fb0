// Command mkimage writes the end-to-end suite's busybox image (from the
// host's busybox-static) as a docker-save tarball, for the cgroup v2 guest
// of testing/vm, which has no registry. It is not part of unetes.
package main

import (
	"fmt"
	"os"

	"github.com/unetes/unetes/testing/internal/testimage"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: mkimage NAME:TAG OUT.tar")
		os.Exit(2)
	}
	img, err := testimage.New()
	if err == nil {
		var b []byte
		if b, err = img.DockerSave(os.Args[1]); err == nil {
			err = os.WriteFile(os.Args[2], b, 0o644)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
}
