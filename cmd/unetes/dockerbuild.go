package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/unetes/unetes/nsinit"
)

// Which builder `docker build` gets. dockerd (moby 29's engine) has both
// BuildKit and the legacy builder; what a build uses is the CLI's choice:
//   - CLIs before 23.0 (Debian 12's docker.io 20.10) carry BuildKit's client
//     and use it because dockerd advertises BuildKit;
//   - CLIs from 23.0 on use BuildKit only through the buildx plugin. Without
//     it they fall back to the legacy builder, and fail outright ("BuildKit
//     is enabled but the buildx component is missing or broken") where
//     DOCKER_BUILDKIT=1 is set;
//   - docker-compose 1.x builds through the API, with the legacy builder.
// unetes sets DOCKER_BUILDKIT=0 for a buildx-less CLI from 23.0 on (the
// legacy builder by choice, not by a fallback a later CLI may drop; `docker
// compose` v2 honours it too), leaves an explicit DOCKER_BUILDKIT alone, and
// refuses a build that neither builder can run.

// dockerCLI is what unetes reads of a docker CLI.
type dockerCLI struct {
	Path    string
	Version string // as the CLI prints it: "28.2.2", "20.10.24+dfsg1"; "" when unread
	Buildx  bool   // `docker buildx version` answers
}

// dockerBuildkitEnv is the variable through which users and unetes choose
// the builder.
const dockerBuildkitEnv = "DOCKER_BUILDKIT"

// buildxFix is how a user gets BuildKit on a CLI from 23.0 on.
const buildxFix = "install the buildx plugin (Debian 13, Ubuntu: apt-get install docker-buildx; Docker's packages: docker-buildx-plugin; or its release binary as ~/.docker/cli-plugins/docker-buildx)"

// builderChoice is the builder a CLI's builds get, and why.
type builderChoice struct {
	Builder string // "BuildKit (buildx)", "BuildKit (built into the CLI)", "legacy builder"
	SetEnv  string // what unetes adds to the CLI's environment ("DOCKER_BUILDKIT=0"), or ""
	Why     string
	Err     error // neither builder can run this CLI's builds
}

// chooseBuilder decides, purely, the builder of cli's builds given the
// user's DOCKER_BUILDKIT (userSet says whether it is set at all).
func chooseBuilder(cli dockerCLI, userValue string, userSet bool) builderChoice {
	major, known := cliMajor(cli.Version)
	needsBuildx := known && major >= 23
	if userSet && userValue != "" {
		on, err := strconv.ParseBool(userValue)
		switch {
		case err != nil:
			return builderChoice{Err: fmt.Errorf("%s=%q is not a boolean: the docker CLI refuses every build with it; set %s=0 (legacy builder) or 1 (BuildKit), or unset it", dockerBuildkitEnv, userValue, dockerBuildkitEnv)}
		case !on:
			return builderChoice{Builder: "legacy builder", Why: dockerBuildkitEnv + "=" + userValue + " is set"}
		case needsBuildx && !cli.Buildx:
			return builderChoice{Err: fmt.Errorf("%s=%s asks for BuildKit, but the docker CLI at %s (%s) has no buildx plugin, without which it cannot use BuildKit: %s, or unset %s to build with dockerd's legacy builder",
				dockerBuildkitEnv, userValue, cli.Path, cli.Version, buildxFix, dockerBuildkitEnv)}
		case needsBuildx:
			return builderChoice{Builder: "BuildKit (buildx)", Why: dockerBuildkitEnv + "=" + userValue + " is set and the buildx plugin answers"}
		default:
			return builderChoice{Builder: "BuildKit (built into the CLI)", Why: dockerBuildkitEnv + "=" + userValue + " is set"}
		}
	}
	switch {
	case !known:
		return builderChoice{Builder: "the CLI's default", Why: "unetes could not read its version and leaves the choice to it"}
	case !needsBuildx:
		return builderChoice{Builder: "BuildKit (built into the CLI)", Why: "CLIs before 23.0 carry BuildKit's client, and dockerd offers BuildKit"}
	case cli.Buildx:
		return builderChoice{Builder: "BuildKit (buildx)", Why: "its buildx plugin answers"}
	default:
		return builderChoice{Builder: "legacy builder", SetEnv: dockerBuildkitEnv + "=0",
			Why: "it has no buildx plugin, which CLIs from 23.0 on need for BuildKit: `unetes docker` and `unetes docker-env` set " + dockerBuildkitEnv + "=0"}
	}
}

var cliVersionRE = regexp.MustCompile(`^Docker version (\S+?),? `)

// parseCLIVersion reads the version out of `docker --version`.
func parseCLIVersion(out string) string {
	m := cliVersionRE.FindStringSubmatch(strings.TrimSpace(out) + " ")
	if m == nil {
		return ""
	}
	return m[1]
}

// cliMajor is the major version of a CLI version string.
func cliMajor(v string) (int, bool) {
	head, _, _ := strings.Cut(v, ".")
	n, err := strconv.Atoi(head)
	return n, err == nil && v != ""
}

// readDockerCLI asks the CLI at path for its version and, where it matters
// (23.0 on), whether its buildx plugin answers. It runs in the caller's
// environment: DOCKER_CONFIG says where the CLI looks for plugins.
func readDockerCLI(path string) dockerCLI {
	cli := dockerCLI{Path: path}
	out, err := cliOutput(path, "--version")
	if err != nil {
		return cli
	}
	cli.Version = parseCLIVersion(out)
	if major, ok := cliMajor(cli.Version); ok && major >= 23 {
		_, err := cliOutput(path, "buildx", "version")
		cli.Buildx = err == nil
	}
	return cli
}

// cliOutput runs a quick query of the CLI, one that needs no daemon.
func cliOutput(path string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = withoutEnv(os.Environ(), "DOCKER_HOST")
	out, err := cmd.Output()
	return string(out), err
}

// withoutEnv is env without the variable name.
func withoutEnv(env []string, name string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// setEnv is env with kv ("NAME=value") in place of any NAME already there:
// a program reading its environment with Go's os.Getenv (as the docker CLI
// does) takes the first of two.
func setEnv(env []string, kv string) []string {
	name, _, _ := strings.Cut(kv, "=")
	return append(withoutEnv(env, name), kv)
}

// hostBuilder is the builder the docker CLI on PATH gives builds from this
// process's environment, or an error when there is no CLI.
func hostBuilder() (dockerCLI, builderChoice, error) {
	path, err := exec.LookPath("docker")
	if err != nil {
		return dockerCLI{}, builderChoice{}, errNoDockerCLI
	}
	cli := readDockerCLI(path)
	v, set := os.LookupEnv(dockerBuildkitEnv)
	return cli, chooseBuilder(cli, v, set), nil
}

var errNoDockerCLI = errors.New("`unetes docker` runs the docker CLI, which is not on PATH: install it (Debian: apt-get install docker.io; no daemon is needed) or use another Docker API client with `eval \"$(unetes docker-env)\"`")

// isBuild says whether docker's arguments run a build: `build`, `image
// build`, `builder build` (after the CLI's global flags).
func isBuild(args []string) bool {
	var words []string
	for i := 0; i < len(args) && len(words) < 2; i++ {
		a := args[i]
		if a == "--" {
			break
		}
		if strings.HasPrefix(a, "-") {
			if !strings.Contains(a, "=") && dockerValueFlags[a] {
				i++ // its value
			}
			continue
		}
		words = append(words, a)
	}
	switch {
	case len(words) >= 1 && words[0] == "build":
		return true
	case len(words) == 2 && (words[0] == "image" || words[0] == "builder") && words[1] == "build":
		return true
	}
	return false
}

// dockerValueFlags are the docker CLI's global flags that take a value.
var dockerValueFlags = map[string]bool{
	"--config": true, "-c": true, "--context": true, "-H": true, "--host": true, "-l": true, "--log-level": true,
	"--tlscacert": true, "--tlscert": true, "--tlskey": true,
}

// dockerClientChecks says, for `unetes doctor`, which builder the host's
// docker clients get from the instance's dockerd and why. None of them
// stops unetes from running.
func dockerClientChecks() []nsinit.Check {
	var cs []nsinit.Check
	cli, choice, err := hostBuilder()
	switch {
	case err != nil:
		cs = append(cs, nsinit.Check{Name: "docker CLI", Level: nsinit.Info,
			Detail: "not on PATH: `unetes docker` needs it; other Docker API clients work with `eval \"$(unetes docker-env)\"`",
			Fix:    "sudo apt-get install docker.io (the CLI; no daemon is started)"})
	case choice.Err != nil:
		cs = append(cs, nsinit.Check{Name: "docker build", Level: nsinit.Warn,
			Detail: fmt.Sprintf("%s %s: neither builder can run its builds", cli.Path, cli.Version), Fix: choice.Err.Error()})
	default:
		c := nsinit.Check{Name: "docker build", Level: nsinit.OK, Detail: fmt.Sprintf("%s %s: %s (%s)", cli.Path, cli.Version, choice.Builder, choice.Why)}
		if choice.SetEnv != "" {
			c.Level, c.Fix = nsinit.Info, "for BuildKit, "+buildxFix
		}
		cs = append(cs, c)
	}
	if path, err := exec.LookPath("docker-compose"); err == nil {
		cs = append(cs, composeCheck(path, composeVersion(path)))
	}
	return cs
}

// composeCheck says which builder docker-compose (at path, of version v)
// gets.
func composeCheck(path, v string) nsinit.Check {
	c := nsinit.Check{Name: "docker-compose build", Level: nsinit.OK}
	switch major, ok := cliMajor(v); {
	case !ok:
		c.Level, c.Detail = nsinit.Info, path+": unetes could not read its version"
	case major < 2:
		c.Detail = fmt.Sprintf("%s %s: legacy builder: docker-compose 1 builds through the Docker API, which gives it dockerd's legacy builder (COMPOSE_DOCKER_CLI_BUILD=1 hands builds to the docker CLI above)", path, v)
	default:
		c.Detail = fmt.Sprintf("%s %s: BuildKit, through its own client, unless DOCKER_BUILDKIT=0", path, v)
	}
	return c
}

// composeVersion is docker-compose's version ("1.29.2", "2.29.7"), or "".
func composeVersion(path string) string {
	out, err := cliOutput(path, "version", "--short")
	if err != nil {
		return ""
	}
	return strings.TrimPrefix(strings.TrimSpace(out), "v")
}
