// Package syncbuf is a bytes.Buffer that a running process writes while a
// test or the benchmark reads it.
package syncbuf

import (
	"bytes"
	"sync"
)

// Buffer collects a running process's output.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
