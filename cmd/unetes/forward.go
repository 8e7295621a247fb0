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
	"text/tabwriter"

	"github.com/rootless-containers/rootlesskit/v3/pkg/httputil"
	"github.com/rootless-containers/rootlesskit/v3/pkg/port"
	"github.com/unetes/unetes/hostfwd"
	"github.com/unetes/unetes/nsinit"
)

type forwardArgs struct {
	inst   instanceFlags
	list   bool
	remove string
	spec   string
}

func runForward(args []string, stdout, stderr io.Writer) int {
	var a forwardArgs
	fs := newFlagSet("forward", "forward [--name N] [IP:]HOSTPORT:PORT[/tcp|/udp]\n       unetes forward [--name N] --list\n       unetes forward [--name N] --remove [IP:]HOSTPORT[/tcp|/udp]", stderr)
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
			fmt.Fprintf(stdout, "unetes: forwarding %s to port %d/%s of instance %q\n", spec.Key(), spec.Port, spec.Proto, a.inst.name)
		}
	}
	if err != nil {
		return fail(stderr, err)
	}
	return 0
}

func addForward(c *http.Client, s hostfwd.Spec) error {
	body, _ := json.Marshal(port.Spec{Proto: s.Proto, ParentIP: s.HostIP.String(), ParentPort: int(s.HostPort), ChildPort: int(s.Port)})
	resp, err := c.Post("http://unetes/v1/ports", "application/json", bytes.NewReader(body))
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
	resp, err := c.Get("http://unetes/v1/ports")
	if err != nil {
		return fmt.Errorf("reach the instance: %w", err)
	}
	defer resp.Body.Close()
	if err := httputil.Successful(resp); err != nil {
		return err
	}
	var sts []port.Status
	if err := json.NewDecoder(resp.Body).Decode(&sts); err != nil {
		return fmt.Errorf("decode forwards: %w", err)
	}
	sort.Slice(sts, func(i, j int) bool { return sts[i].Spec.ParentPort < sts[j].Spec.ParentPort })
	w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "HOST ADDRESS\tHOST PORT\tTARGET PORT\tPROTOCOL")
	for _, st := range sts {
		if s, err := hostfwd.FromRK(st.Spec); err == nil {
			fmt.Fprintf(w, "%s\t%d\t%d\t%s\n", s.HostIP, s.HostPort, s.Port, s.Proto)
		}
	}
	return w.Flush()
}

// describeForwards is the one-line summary `run` prints.
func describeForwards(sts []port.Status) string {
	var b bytes.Buffer
	for i, st := range sts {
		if s, err := hostfwd.FromRK(st.Spec); err == nil {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%s -> %d", s.Key(), s.Port)
		}
	}
	return b.String()
}
