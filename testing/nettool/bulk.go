package main

import (
	"fmt"
	"io"
	"net"
	"time"
)

// sink accepts connections on addr and discards what they send, until
// killed: the far end of blast.
func sink(addr string) error {
	return serveEach(addr, false, func(c net.Conn) { io.Copy(io.Discard, c) })
}

// blast sends to a sink at addr for d and prints the throughput it
// reached, in Gbit/s, as "gbps N".
func blast(addr string, d time.Duration) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	buf := make([]byte, 128<<10)
	var n int64
	start := time.Now()
	for time.Since(start) < d {
		w, err := c.Write(buf)
		n += int64(w)
		if err != nil {
			return err
		}
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return err
	}
	io.Copy(io.Discard, c) // the sink has read it all when it closes
	fmt.Printf("gbps %.3f\n", float64(n)*8/time.Since(start).Seconds()/1e9)
	return nil
}
