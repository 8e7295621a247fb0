package addons

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin"
	"github.com/miekg/dns"
)

// The Corefile's loop directive is this plugin, in the slot CoreDNS
// gives its own loop plugin (which is not linked: it calls os.Exit when it
// finds a loop, which would end every component of this process). It
// probes the same way, a query for a random name sent to the server
// itself, and when the probe comes back through the upstream it reports
// the loop and answers the probe with SERVFAIL, which ends the loop.
func init() { plugin.Register("loop", setupLoop) }

// loopFound is told about a loop; the DNS add-on sets it before CoreDNS
// starts (one CoreDNS per process).
var loopFound atomic.Pointer[func(error)]

type loopGuard struct {
	Next  plugin.Handler
	qname string   // the random suffix; each probe asks <attempt>.<qname>
	seen  sync.Map // probe name -> *atomic.Int32: how often it arrived
	found atomic.Bool
}

func setupLoop(c *caddy.Controller) error {
	for c.Next() {
		if c.NextArg() {
			return plugin.Error("loop", c.ArgErr())
		}
	}
	b := make([]byte, 8)
	rand.Read(b)
	l := &loopGuard{qname: hex.EncodeToString(b[:4]) + "." + hex.EncodeToString(b[4:]) + "."}
	conf := dnsserver.GetConfig(c)
	conf.AddPlugin(func(next plugin.Handler) plugin.Handler { l.Next = next; return l })
	c.OnStartup(func() error {
		host := ""
		if len(conf.ListenHosts) > 0 {
			host = conf.ListenHosts[0]
		}
		go l.probe(net.JoinHostPort(host, conf.Port))
		return nil
	})
	return nil
}

// probe sends the random query to the server once it listens, again
// every second until one is answered. Each attempt has a name of its own:
// attempts that time out (an upstream that does not answer, a slow host)
// must not add up to a loop; one name arriving three times is one.
func (l *loopGuard) probe(addr string) {
	for i, deadline := 0, time.Now().Add(30*time.Second); time.Now().Before(deadline); i++ {
		m := new(dns.Msg)
		m.SetQuestion(strconv.Itoa(i)+"."+l.qname, dns.TypeHINFO)
		if _, err := dns.Exchange(m, addr); err == nil || l.found.Load() {
			return
		}
		time.Sleep(time.Second)
	}
}

func (l *loopGuard) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	if len(r.Question) == 0 || r.Question[0].Qtype != dns.TypeHINFO || !strings.HasSuffix(r.Question[0].Name, "."+l.qname) {
		return plugin.NextOrFailure(l.Name(), l.Next, ctx, w, r)
	}
	n, _ := l.seen.LoadOrStore(r.Question[0].Name, new(atomic.Int32))
	if n.(*atomic.Int32).Add(1) <= 2 {
		return plugin.NextOrFailure(l.Name(), l.Next, ctx, w, r)
	}
	if l.found.CompareAndSwap(false, true) {
		if f := loopFound.Load(); f != nil {
			(*f)(fmt.Errorf("DNS forwarding loop: a query CoreDNS forwarded upstream came back to it from %s; "+
				"the host's resolvers (or --resolv-conf) must not lead back into the instance; names outside the cluster do not resolve", w.RemoteAddr()))
		}
	}
	return dns.RcodeServerFailure, nil
}

func (l *loopGuard) Name() string { return "loop" }
