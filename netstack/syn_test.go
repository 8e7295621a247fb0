package netstack

import (
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

func TestSYNTableIsBounded(t *testing.T) {
	tab := newSYNTable(2, time.Minute)
	id := func(port uint16) stack.TransportEndpointID { return stack.TransportEndpointID{RemotePort: port} }
	t0 := time.Now()
	tab.note(id(1), syn{seq: 1, seen: t0})
	tab.note(id(2), syn{seq: 2, seen: t0})
	tab.note(id(3), syn{seq: 3, seen: t0.Add(time.Second)})
	if _, ok := tab.take(id(3)); ok {
		t.Fatal("a third SYN was noted in a table of two whose entries are all recent")
	}
	tab.note(id(2), syn{seq: 22, seen: t0.Add(time.Second)}) // a retransmission updates its entry
	if s, ok := tab.take(id(2)); !ok || s.seq != 22 {
		t.Fatalf("retransmitted SYN: %+v %v", s, ok)
	}
	tab.note(id(2), syn{seq: 2, seen: t0})
	tab.note(id(4), syn{seq: 4, seen: t0.Add(2 * time.Minute)}) // the others are now too old: they go
	if s, ok := tab.take(id(4)); !ok || s.seq != 4 {
		t.Fatalf("new SYN once old ones aged out: %+v %v", s, ok)
	}
	if len(tab.m) != 0 {
		t.Fatalf("left: %v", tab.m)
	}
}
