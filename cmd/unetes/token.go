package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/unetes/unetes/embed/addons"
	"github.com/unetes/unetes/embed/join"
)

// runToken prints what a node needs to join the instance's cluster: the
// bootstrap token, the pin of the cluster's CA (kubeadm's
// --discovery-token-ca-cert-hash) and, while it runs, the API's address
// for other hosts.
func runToken(args []string, stdout, stderr io.Writer) int {
	var inst instanceFlags
	fs := newFlagSet("token", "token [--name N]", stderr)
	inst.register(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		return fail(stderr, fmt.Errorf("token takes no arguments (got %q): the instance is picked with --name", fs.Args()))
	}
	paths, err := inst.paths()
	if err != nil {
		return fail(stderr, err)
	}
	tok, hash, made, err := joinCredentials(inst.name, paths.DataDir)
	if err != nil {
		return fail(stderr, err)
	}
	fmt.Fprintf(stdout, "token:        %s\nca-cert-hash: %s\n", tok, hash)
	if made {
		fmt.Fprintf(stderr, "unetes: this token is new: the cluster accepts it from the next `unetes run --name %s`\n", inst.name)
	}
	// The address joiners use is the running instance's (--api-address).
	if s, err := fetchStatus(inst.name, paths.StateDir); err == nil && s.APIEndpoint != "" {
		fmt.Fprintf(stdout, "api:          %s\njoin:         %s\n", s.APIEndpoint, joinCommand(s.APIEndpoint, tok, hash))
	} else {
		fmt.Fprintf(stderr, "unetes: instance %q is not running: the API address nodes join at is printed while it runs\n", inst.name)
	}
	return 0
}

// joinCredentials are the instance's bootstrap token (made now if it has
// none: made) and the pin of its cluster's CA.
func joinCredentials(name, dataDir string) (tok, hash string, made bool, err error) {
	ca, err := os.ReadFile(filepath.Join(dataDir, "pki", "ca.crt"))
	if errors.Is(err, os.ErrNotExist) {
		return "", "", false, fmt.Errorf("instance %q has no cluster yet: start it once with `unetes run --name %s`", name, name)
	}
	if err != nil {
		return "", "", false, err
	}
	if hash, err = join.CACertHash(ca); err != nil {
		return "", "", false, err
	}
	tok, made, err = addons.LoadJoinToken(dataDir)
	return tok, hash, made, err
}

// joinCommand is what a node runs to join at endpoint.
func joinCommand(endpoint, tok, hash string) string {
	return fmt.Sprintf("unetes join %s --token %s --ca-cert-hash %s", endpoint, tok, hash)
}
