package nsinit

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
)

// RemoveAllMapped deletes dirs like os.RemoveAll, but from a new user
// namespace with the user's sub-IDs mapped, as root there: containers leave
// files owned by sub-IDs (image layers, their writes) that the user cannot
// delete from outside. self is the unetes binary and role the hidden
// subcommand that calls RemoveTrees.
func RemoveAllMapped(u User, self, role string, dirs []string) error {
	if u.UID == 0 {
		return removeTrees(dirs)
	}
	subuid, subgid, err := subIDsOf(u)
	if err != nil {
		return err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	var out bytes.Buffer
	cmd := exec.Command(self, append([]string{role}, dirs...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = r, &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return fmt.Errorf("start the remover in a user namespace: %w", err)
	}
	r.Close()
	mapErr := setIDMaps(cmd.Process.Pid, u, subuid, subgid)
	w.Close() // the remover starts on EOF
	if mapErr != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return mapErr
	}
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("%s", strings.TrimSpace(out.String()))
	}
	return nil
}

// rmMappedEnv marks the remover's second exec, made once its maps exist.
const rmMappedEnv = "_UNETES_RM_MAPPED"

// RemoveTrees is the remover's side: it waits until its ID maps are written
// (stdin closes), executes itself again (capabilities are computed at exec,
// and only now is it root in the namespace), then deletes each dir.
func RemoveTrees(dirs []string) error {
	if os.Getenv(rmMappedEnv) == "" {
		io.Copy(io.Discard, os.Stdin)
		err := syscall.Exec("/proc/self/exe", os.Args, append(os.Environ(), rmMappedEnv+"=1"))
		return fmt.Errorf("re-exec the remover: %w", err)
	}
	return removeTrees(dirs)
}

func removeTrees(dirs []string) error {
	for _, d := range dirs {
		if err := os.RemoveAll(d); err != nil {
			return fmt.Errorf("delete %s: %w", d, err)
		}
	}
	return nil
}
