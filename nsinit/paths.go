package nsinit

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
)

// DefaultName is the instance name when --name is not given.
const DefaultName = "default"

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)

// Paths are the directories of one instance.
type Paths struct {
	StateDir  string // sockets, pid files, logs; gone on reboot
	DataDir   string // persistent data
	ConfigDir string // kubeconfig and user-facing configuration
}

// Env is what path resolution reads from the process environment.
type Env struct {
	UID           int
	Home          string
	XDGRuntimeDir string
	XDGDataHome   string
	XDGConfigHome string
}

// ValidateName checks an instance name.
func ValidateName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("invalid instance name %q: use 1-63 characters of a-z, 0-9, '.', '_' and '-', starting with a letter or digit", name)
	}
	return nil
}

// ResolvePaths returns the directories of instance name. It is pure.
func ResolvePaths(name string, env Env) (Paths, error) {
	if err := ValidateName(name); err != nil {
		return Paths{}, err
	}
	var p Paths
	switch {
	case env.XDGRuntimeDir != "":
		if !filepath.IsAbs(env.XDGRuntimeDir) {
			return Paths{}, fmt.Errorf("XDG_RUNTIME_DIR %q is not an absolute path: fix or unset it", env.XDGRuntimeDir)
		}
		p.StateDir = filepath.Join(env.XDGRuntimeDir, "unetes", name)
	default:
		p.StateDir = filepath.Join("/tmp", "unetes-"+strconv.Itoa(env.UID), name)
	}
	dataHome, err := xdgDir(env.XDGDataHome, env.Home, ".local/share", "XDG_DATA_HOME")
	if err != nil {
		return Paths{}, err
	}
	configHome, err := xdgDir(env.XDGConfigHome, env.Home, ".config", "XDG_CONFIG_HOME")
	if err != nil {
		return Paths{}, err
	}
	p.DataDir = filepath.Join(dataHome, "unetes", name)
	p.ConfigDir = filepath.Join(configHome, "unetes", name)
	return p, nil
}

func xdgDir(val, home, fallback, envName string) (string, error) {
	if val != "" {
		if !filepath.IsAbs(val) {
			return "", fmt.Errorf("%s %q is not an absolute path: fix or unset it", envName, val)
		}
		return val, nil
	}
	if home == "" || !filepath.IsAbs(home) {
		return "", fmt.Errorf("cannot place %s: HOME is unset or relative; set HOME or %s", fallback, envName)
	}
	return filepath.Join(home, fallback), nil
}
