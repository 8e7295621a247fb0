package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// A phase is one step of start-up: who ran it (run, the sandbox, an
// add-on), what it was and when it ended.
type phase struct {
	who, what string
	end       time.Time
	took      time.Duration
}

func (p phase) start() time.Time { return p.end.Add(-p.took) }

// sandboxPhases reads the sandbox's phases and add-ons' start-up from its
// log (child.log, written afresh by each run): slog's text lines with
// msg=phase or msg="add-on ready", their time and took.
func sandboxPhases(r io.Reader) []phase {
	var out []phase
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20) // component lines carry every flag
	for sc.Scan() {
		kv := parseLogLine(sc.Text())
		var p phase
		switch kv["msg"] {
		case "phase":
			p.who, p.what = "sandbox", kv["phase"]
		case "add-on ready":
			p.who, p.what = "add-on", kv["addon"]
		default:
			continue
		}
		end, err := time.Parse(time.RFC3339Nano, kv["time"])
		took, err2 := time.ParseDuration(kv["took"])
		if err != nil || err2 != nil || p.what == "" {
			continue
		}
		p.end, p.took = end, took
		out = append(out, p)
	}
	return out
}

// parseLogLine splits one line of slog's text handler into its keys and
// values (a quoted value is unquoted; a repeated key keeps the last).
func parseLogLine(line string) map[string]string {
	kv := map[string]string{}
	for line != "" {
		line = strings.TrimLeft(line, " ")
		k, rest, ok := strings.Cut(line, "=")
		if !ok || strings.ContainsAny(k, " \"") {
			break
		}
		var v string
		if strings.HasPrefix(rest, `"`) {
			q, err := strconv.QuotedPrefix(rest)
			if err != nil {
				break
			}
			v, _ = strconv.Unquote(q)
			rest = rest[len(q):]
		} else {
			v, rest, _ = strings.Cut(rest, " ")
		}
		kv[k] = v
		line = rest
	}
	return kv
}

// writePhaseTable prints run's and the sandbox's phases on one time line,
// in the order they started, as milliseconds since run began: where
// start-up's time went and what overlapped. It sorts phases.
func writePhaseTable(w io.Writer, began time.Time, phases []phase) {
	slices.SortStableFunc(phases, func(a, b phase) int { return a.start().Compare(b.start()) })
	ms := func(t time.Time) float64 { return float64(t.Sub(began).Microseconds()) / 1000 }
	fmt.Fprintf(w, "unetes: start-up time line (ms since `run` began; run's phases run one after another, the sandbox's overlap):\n")
	fmt.Fprintf(w, "  %-8s %-24s %8s %8s %8s\n", "WHO", "PHASE", "START", "END", "TOOK")
	for _, p := range phases {
		fmt.Fprintf(w, "  %-8s %-24s %8.0f %8.0f %8.0f\n", p.who, p.what, ms(p.start()), ms(p.end), float64(p.took.Microseconds())/1000)
	}
}

// printPhaseTable is `run -v`'s table once the instance is ready.
func (s *session) printPhaseTable() {
	f, err := os.Open(s.childLog())
	if err != nil {
		fmt.Fprintf(s.stdout, "unetes: no start-up time line: %v\n", err)
		return
	}
	defer f.Close()
	writePhaseTable(s.stdout, s.start, append(slices.Clone(s.phases), sandboxPhases(f)...))
}
