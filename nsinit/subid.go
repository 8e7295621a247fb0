package nsinit

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// MinSubIDs is the number of subordinate IDs unetes needs (one full 16-bit range
// for the images' users).
const MinSubIDs = 65536

// IDRange is a range of host IDs.
type IDRange struct {
	Start, Length int
}

// ParseSubIDs returns the ranges of /etc/subuid or /etc/subgid content that
// belong to the user, matched by name or by numeric ID.
func ParseSubIDs(content []byte, user string, id int) ([]IDRange, error) {
	var out []IDRange
	sc := bufio.NewScanner(bytes.NewReader(content))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, ":")
		if len(f) != 3 {
			return nil, fmt.Errorf("line %d: %q is not name:start:count", n, line)
		}
		if f[0] != user && f[0] != strconv.Itoa(id) {
			continue
		}
		start, err1 := strconv.Atoi(f[1])
		length, err2 := strconv.Atoi(f[2])
		if err1 != nil || err2 != nil || start < 0 || length <= 0 {
			return nil, fmt.Errorf("line %d: %q has a bad start or count", n, line)
		}
		out = append(out, IDRange{Start: start, Length: length})
	}
	return out, sc.Err()
}

// TotalIDs sums the lengths of ranges, not counting own (already mapped to 0).
func TotalIDs(ranges []IDRange, own int) int {
	t := 0
	for _, r := range withoutID(ranges, own) {
		t += r.Length
	}
	return t
}

// withoutID removes id from the ranges, splitting a range that contains it:
// newuidmap refuses a map that names one host ID twice.
func withoutID(ranges []IDRange, id int) []IDRange {
	var out []IDRange
	for _, r := range ranges {
		if id < r.Start || id >= r.Start+r.Length {
			out = append(out, r)
			continue
		}
		if head := id - r.Start; head > 0 {
			out = append(out, IDRange{r.Start, head})
		}
		if tail := r.Start + r.Length - id - 1; tail > 0 {
			out = append(out, IDRange{id + 1, tail})
		}
	}
	return out
}

// MapArgs returns the arguments of newuidmap/newgidmap after the pid: the own
// ID becomes 0 and the sub-ID ranges follow from 1 on.
func MapArgs(own int, ranges []IDRange) []string {
	args := []string{"0", strconv.Itoa(own), "1"}
	next := 1
	for _, r := range withoutID(ranges, own) {
		args = append(args, strconv.Itoa(next), strconv.Itoa(r.Start), strconv.Itoa(r.Length))
		next += r.Length
	}
	return args
}
