package main

import (
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// dnsBench sends A queries for name to server:53 from conc UDP sockets for
// d, one outstanding query per socket, and prints answered queries per
// second and the failures (timeouts, errors, empty answers).
func dnsBench(server, name string, d time.Duration, conc int) error {
	q, err := dnsmessage.NewName(name)
	if err != nil {
		return err
	}
	var ok, failed atomic.Int64
	var wg sync.WaitGroup
	stop := time.Now().Add(d)
	for i := 0; i < conc; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("udp", net.JoinHostPort(server, "53"))
			if err != nil {
				failed.Add(1)
				return
			}
			defer c.Close()
			buf := make([]byte, 1500)
			for id := uint16(i) << 8; time.Now().Before(stop); id++ {
				if ask(c, buf, q, id) {
					ok.Add(1)
				} else {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	fmt.Printf("qps=%.0f failed=%d\n", float64(ok.Load())/d.Seconds(), failed.Load())
	return nil
}

// ask sends one query and reports whether an answer with an address came back.
func ask(c net.Conn, buf []byte, q dnsmessage.Name, id uint16) bool {
	b := dnsmessage.NewBuilder(buf[:0], dnsmessage.Header{ID: id, RecursionDesired: true})
	b.StartQuestions()
	b.Question(dnsmessage.Question{Name: q, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET})
	msg, err := b.Finish()
	if err != nil {
		return false
	}
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write(msg); err != nil {
		return false
	}
	for {
		n, err := c.Read(buf)
		if err != nil {
			return false
		}
		var p dnsmessage.Parser
		h, err := p.Start(buf[:n])
		if err != nil || h.ID != id {
			continue // a late answer to an earlier query
		}
		p.SkipAllQuestions()
		_, err = p.AnswerHeader()
		return err == nil && h.RCode == dnsmessage.RCodeSuccess
	}
}
