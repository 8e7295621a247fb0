package embed

import "testing"

func TestReadOnlyMapping(t *testing.T) {
	for _, c := range []struct {
		line       string
		start, end uintptr
		ok         bool
	}{
		{"00400000-056e7000 r-xp 00000000 fe:00 9978083    /tmp/ub/unetes", 0x400000, 0x56e7000, true},
		{"056e7000-0bf97000 r--p 052e7000 fe:00 9978083    /tmp/ub/unetes", 0x56e7000, 0xbf97000, true},
		{"0bf97000-0c161000 rw-p 0bb97000 fe:00 9978083    /tmp/ub/unetes", 0, 0, false}, // data: written
		{"7f97c3000000-7f9a43000000 r--s 00000000 fe:00 9978083 /x/db", 0, 0, false},     // shared
		{"056e7000-0bf97000 r--p 052e7000 fe:00 1234    /other", 0, 0, false},            // another file
		{"1cbbef400000-1cbbfe000000 rw-p 00000000 00:00 0 ", 0, 0, false},                // anonymous
		{"zz-0bf97000 r--p 052e7000 fe:00 9978083    /tmp/ub/unetes", 0, 0, false},       // malformed
		{"0bf97000-056e7000 r--p 052e7000 fe:00 9978083    /tmp/ub/unetes", 0, 0, false}, // end before start
	} {
		sp, ok := ReadOnlyMapping(c.line, 9978083)
		if s, e := sp.Start, sp.End; s != c.start || e != c.end || ok != c.ok {
			t.Errorf("ReadOnlyMapping(%q) = %#x, %#x, %v; want %#x, %#x, %v", c.line, s, e, ok, c.start, c.end, c.ok)
		}
	}
}
