package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/rootless-containers/rootlesskit/v3/pkg/httputil"
	"github.com/unetes/unetes/hostfwd"
	"github.com/unetes/unetes/nsinit"
)

type forwardArgs struct {
	inst    instanceFlags
	list    bool
	remove  string
	spec    string
	service string // svc/NAME[.NAMESPACE]
}

func runForward(args []string, stdout, stderr io.Writer) int {
	var a forwardArgs
	fs := newFlagSet("forward", "forward [--name N] [svc/NAME[.NAMESPACE]] [IP:]HOSTPORT:PORT[/tcp|/udp]\n       unetes forward [--name N] --list\n       unetes forward [--name N] --remove [IP:]HOSTPORT[/tcp|/udp]", stderr)
	a.inst.register(fs)
	fs.BoolVar(&a.list, "list", false, "list the forwards")
	fs.StringVar(&a.remove, "remove", "", "remove the forward with this host side")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	switch {
	case a.list && a.remove == "" && fs.NArg() == 0:
	case !a.list && a.remove != "" && fs.NArg() == 0:
	case !a.list && a.remove == "" && fs.NArg() == 1:
		a.spec = fs.Arg(0)
		if _, err := hostfwd.ParseService(a.spec); err == nil {
			return fail(stderr, fmt.Errorf("%s: which ports? e.g. unetes forward %s 8080:80 (host port 8080 to the Service's port 80)", a.spec, a.spec))
		}
	case !a.list && a.remove == "" && fs.NArg() == 2:
		a.service, a.spec = fs.Arg(0), fs.Arg(1)
	default:
		fs.Usage()
		return 2
	}
	paths, err := a.inst.paths()
	if err != nil {
		return fail(stderr, err)
	}
	// Validate before looking for the instance: bad input is reported as such.
	var spec hostfwd.Spec
	var key hostfwd.Key
	if a.spec != "" {
		if spec, err = hostfwd.ParseSpec(a.spec); err != nil {
			return fail(stderr, err)
		}
	}
	if a.service != "" {
		if spec.Service, err = hostfwd.ParseService(a.service); err != nil {
			return fail(stderr, err)
		}
	}
	if a.remove != "" {
		if key, err = hostfwd.ParseKey(a.remove); err != nil {
			return fail(stderr, err)
		}
	}
	if _, err := nsinit.RunningPID(paths.StateDir); errors.Is(err, nsinit.ErrNotRunning) {
		return fail(stderr, notRunningError(a.inst.name))
	}
	c := apiClient(paths.StateDir)
	switch {
	case a.list:
		err = listForwards(c, stdout)
	case a.remove != "":
		err = removeForward(c, key)
		if err == nil {
			fmt.Fprintf(stdout, "unetes: removed forward %s\n", key)
		}
	default:
		err = addForward(c, spec)
		if err == nil {
			fmt.Fprintf(stdout, "unetes: forwarding %s to %s/%s of instance %q\n", spec.Key(), spec.Target(), spec.Proto, a.inst.name)
		}
	}
	if err != nil {
		return fail(stderr, err)
	}
	return 0
}

func addForward(c *http.Client, s hostfwd.Spec) error {
	body, _ := json.Marshal(s)
	resp, err := c.Post("http://unetes/unetes/v1/forwards", "application/json", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("reach the instance: %w", err)
	}
	defer resp.Body.Close()
	return httputil.Successful(resp)
}

func removeForward(c *http.Client, k hostfwd.Key) error {
	req, _ := http.NewRequest(http.MethodDelete, "http://unetes/unetes/v1/forwards/"+url.PathEscape(k.String()), nil)
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("reach the instance: %w", err)
	}
	defer resp.Body.Close()
	return httputil.Successful(resp)
}

func listForwards(c *http.Client, stdout io.Writer) error {
	resp, err := c.Get("http://unetes/unetes/v1/forwards")
	if err != nil {
		return fmt.Errorf("reach the instance: %w", err)
	}
	defer resp.Body.Close()
	if err := httputil.Successful(resp); err != nil {
		return err
	}
	var fs []hostfwd.Forward
	if err := json.NewDecoder(resp.Body).Decode(&fs); err != nil {
		return fmt.Errorf("decode forwards: %w", err)
	}
	sort.SliceStable(fs, func(i, j int) bool { return fs[i].Spec.HostPort < fs[j].Spec.HostPort })
	w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "HOST ADDRESS\tHOST PORT\tTARGET PORT\tPROTOCOL\tFROM\tTO")
	for _, f := range fs {
		s := f.Spec
		fmt.Fprintf(w, "%s\t%d\t%d\t%s\t%s\t%s\n", s.HostIP, s.HostPort, s.Port, s.Proto, f.Origin(), f.Leads())
	}
	return w.Flush()
}

// describeForwards is the one-line summary `run` prints of the user's
// active forwards.
func describeForwards(fs []hostfwd.Forward) string {
	var parts []string
	for _, f := range fs {
		if f.Active && f.Owner == "" {
			parts = append(parts, fmt.Sprintf("%s -> %d", f.Spec.Key(), f.Spec.Port))
		}
	}
	return strings.Join(parts, ", ")
}
