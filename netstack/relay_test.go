package netstack

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// TestCopyHalfPipelinedBulkAndShortReads copies a stream whose reads fill the
// buffer (the pipelined mode) and one that never does, byte for byte.
func TestCopyHalfPipelinedBulkAndShortReads(t *testing.T) {
	want := make([]byte, 3*bulkBufSize+12345)
	for i := range want {
		want[i] = byte(i*31 + i>>11)
	}
	for name, src := range map[string]io.Reader{
		"bulk":  bytes.NewReader(want),
		"short": &shortReader{r: bytes.NewReader(want), max: 1000},
	} {
		var got bytes.Buffer
		n, err := copyHalf(&got, src, true)
		if err != nil || n != int64(len(want)) || !bytes.Equal(got.Bytes(), want) {
			t.Errorf("%s: copied %d of %d bytes, err %v, equal %v", name, n, len(want), err, bytes.Equal(got.Bytes(), want))
		}
	}
}

// TestCopyHalfPipelinedStopsAtAWriteError returns the write's error in the
// pipelined mode and leaves the reader to end with its source.
func TestCopyHalfPipelinedStopsAtAWriteError(t *testing.T) {
	src := bytes.NewReader(make([]byte, 8*relayBufSize))
	boom := errors.New("guest gone")
	w := &failAfter{n: 2 * relayBufSize, err: boom}
	n, err := copyHalf(w, src, true)
	// One serial write, one bulk write; the third write fails.
	if want := int64(relayBufSize + bulkBufSize); !errors.Is(err, boom) || n != want {
		t.Fatalf("copied %d bytes with err %v, want %d and %v", n, err, want, boom)
	}
}

type shortReader struct {
	r   io.Reader
	max int
}

func (s *shortReader) Read(p []byte) (int, error) { return s.r.Read(p[:min(len(p), s.max)]) }

type failAfter struct {
	n   int
	err error
}

func (f *failAfter) Write(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, f.err
	}
	f.n -= len(p)
	return len(p), nil
}
