package e2e

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/unetes/unetes"

// The four capability packages must not import each other: cmd wires them.
var capabilityPackages = []string{"nsinit", "netstack", "hostfwd", "embed"}

func repoRoot(t *testing.T) string {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(wd)
}

// goFiles lists the non-test Go files of each package directory of the repo.
func goFiles(t *testing.T) map[string][]string {
	root := repoRoot(t)
	pkgs := map[string][]string{}
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "bin") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go") {
			rel, _ := filepath.Rel(root, filepath.Dir(p))
			pkgs[rel] = append(pkgs[rel], p)
		}
		return nil
	})
	return pkgs
}

func TestImportRule(t *testing.T) {
	fset := token.NewFileSet()
	for dir, files := range goFiles(t) {
		top := strings.Split(dir, string(filepath.Separator))[0]
		for _, f := range files {
			af, err := parser.ParseFile(fset, f, nil, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range af.Imports {
				path, _ := strconv.Unquote(imp.Path.Value)
				rest, ok := strings.CutPrefix(path, module+"/")
				if !ok {
					continue
				}
				target := strings.Split(rest, "/")[0]
				if target == top {
					continue
				}
				if top != "cmd" {
					t.Errorf("%s imports %s: only cmd may import the capability packages; declare an interface instead", f, path)
				}
			}
		}
	}
}

func TestEveryPackageHasADocComment(t *testing.T) {
	fset := token.NewFileSet()
	for dir, files := range goFiles(t) {
		documented := false
		for _, f := range files {
			af, err := parser.ParseFile(fset, f, nil, parser.PackageClauseOnly|parser.ParseComments)
			if err != nil {
				t.Fatal(err)
			}
			if af.Doc != nil && strings.TrimSpace(af.Doc.Text()) != "" {
				documented = true
			}
		}
		if !documented {
			t.Errorf("package %s has no package doc comment", dir)
		}
	}
}

func TestTopLevelLayout(t *testing.T) {
	allowed := map[string]bool{"cmd": true, "netstack": true, "hostfwd": true, "embed": true, "nsinit": true, "testing": true,
		"go.mod": true, "go.sum": true, "Makefile": true, "README.md": true, ".ci": true, ".gitignore": true, ".git": true, "bin": true}
	ents, err := os.ReadDir(repoRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !allowed[e.Name()] {
			t.Errorf("unexpected top-level entry %q: keep the layout of DESIGN.md", e.Name())
		}
	}
}
