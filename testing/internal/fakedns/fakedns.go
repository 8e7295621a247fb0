// Package fakedns is a tiny DNS server on the host that answers one name:
// the resolver an instance forwards to (through --resolv-conf) in the
// end-to-end tests and the benchmark, so that no test needs the outside world.
package fakedns

import (
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"syscall"

	"golang.org/x/net/dns/dnsmessage"
)

// Server answers A queries for one name on ip:53 (UDP); other names get an
// empty answer.
type Server struct {
	conn    net.PacketConn
	queries atomic.Int64
}

// Start listens on ip:53 and answers name with answer.
func Start(ip, name string, answer [4]byte) (*Server, error) {
	c, err := net.ListenPacket("udp4", net.JoinHostPort(ip, "53"))
	if errors.Is(err, syscall.EACCES) {
		return nil, fmt.Errorf("bind %s:53: %w (a test DNS server needs root: run it through make)", ip, err)
	}
	if err != nil {
		return nil, err
	}
	s := &Server{conn: c}
	qname, err := dnsmessage.NewName(name)
	if err != nil {
		c.Close()
		return nil, err
	}
	go s.serve(qname, answer)
	return s, nil
}

// Queries is how many queries the server has answered.
func (s *Server) Queries() int64 { return s.queries.Load() }

// Close stops the server.
func (s *Server) Close() error { return s.conn.Close() }

func (s *Server) serve(qname dnsmessage.Name, answer [4]byte) {
	buf := make([]byte, 1500)
	for {
		n, from, err := s.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		var p dnsmessage.Parser
		h, err := p.Start(buf[:n])
		if err != nil {
			continue
		}
		q, err := p.Question()
		if err != nil {
			continue
		}
		s.queries.Add(1)
		b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired})
		b.StartQuestions()
		b.Question(q)
		b.StartAnswers()
		if q.Name == qname && q.Type == dnsmessage.TypeA {
			b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60}, dnsmessage.AResource{A: answer})
		}
		if msg, err := b.Finish(); err == nil {
			s.conn.WriteTo(msg, from)
		}
	}
}
