package nsinit

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// setIDMaps writes the uid and gid maps of the child pid. An ordinary user
// goes through the setuid newuidmap/newgidmap with the sub-ID ranges; root
// writes the maps directly and maps the whole ID space.
func setIDMaps(pid int, u User, subuid, subgid []IDRange) error {
	if u.UID == 0 {
		for _, f := range []string{"uid_map", "gid_map"} {
			p := fmt.Sprintf("/proc/%d/%s", pid, f)
			if err := os.WriteFile(p, []byte("0 0 4294967295\n"), 0); err != nil {
				return fmt.Errorf("write %s: %w", p, err)
			}
		}
		return nil
	}
	for _, m := range []struct {
		tool string
		args []string
	}{
		{"newuidmap", MapArgs(u.UID, subuid)},
		{"newgidmap", MapArgs(u.GID, subgid)},
	} {
		path, err := LiveHost{}.LookPath(m.tool)
		if err != nil {
			return fmt.Errorf("find %s: %w (fix: sudo apt-get install uidmap)", m.tool, err)
		}
		args := append([]string{strconv.Itoa(pid)}, m.args...)
		out, err := exec.Command(path, args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s %s: %w: %s", m.tool, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}
