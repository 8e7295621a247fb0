package netstack

import (
	"io"
	"sync"
)

// relayBufSize is large so one read can drain a 64 KiB segment burst.
const relayBufSize = 256 << 10

var relayBufs = sync.Pool{New: func() any { b := make([]byte, relayBufSize); return &b }}

// copyHalf copies src to dst with a pooled buffer. It deliberately avoids
// io.Copy's ReaderFrom/WriterTo dispatch, which would fall back to 32 KiB
// buffers for gonet connections.
func copyHalf(dst io.Writer, src io.Reader) (int64, error) {
	bp := relayBufs.Get().(*[]byte)
	defer relayBufs.Put(bp)
	buf := *bp
	var n int64
	for {
		nr, rerr := src.Read(buf)
		if nr > 0 {
			nw, werr := dst.Write(buf[:nr])
			n += int64(nw)
			if werr != nil {
				return n, werr
			}
		}
		if rerr != nil {
			if rerr == io.EOF {
				return n, nil
			}
			return n, rerr
		}
	}
}
