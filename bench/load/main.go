// The native bulk load of bench/proxy.ts: in ONE process, a byte sink (listens, counts) and the
// sending connections, so that the bench measures the proxy and not a Node client and sink
// moving ~1.4 GB/s themselves. Line commands on stdin, one JSON answer per line on stdout:
//
//	run PORT CONNS BYTES   CONNS connections to 127.0.0.1:PORT send BYTES in all; answers
//	                       {"seconds":S,"bytes":N} once the sink has them all (then closes them)
//	open                   {"open":N}: connections the sink holds now
//
// It prints "listening PORT" first (the sink's port). Built by bench/proxy.ts with `go build`.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

var (
	got    atomic.Int64
	open   atomic.Int64
	mu     sync.Mutex
	want   int64 = -1
	arrive chan struct{}
)

func sink(c net.Conn) {
	open.Add(1)
	defer open.Add(-1)
	defer c.Close()
	buf := make([]byte, 1<<20)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			total := got.Add(int64(n))
			mu.Lock()
			if want >= 0 && total >= want && arrive != nil {
				close(arrive)
				arrive = nil
			}
			mu.Unlock()
		}
		if err != nil {
			return
		}
	}
}

func fail(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "bench load: "+format+"\n", a...)
	os.Exit(1)
}

func run(port string, conns int, bytes int64) {
	block := make([]byte, 1<<20)
	for i := range block {
		block[i] = 0x5a
	}
	done := make(chan struct{})
	mu.Lock()
	got.Store(0)
	want = bytes
	arrive = done
	mu.Unlock()
	t0 := time.Now()
	sent := make(chan net.Conn, conns)
	for i := 0; i < conns; i++ {
		share := bytes / int64(conns)
		if i == conns-1 {
			share = bytes - share*int64(conns-1)
		}
		go func(share int64) {
			c, err := net.Dial("tcp", "127.0.0.1:"+port)
			if err != nil {
				fail("connect to %s: %v", port, err)
			}
			for share > 0 {
				n := int64(len(block))
				if share < n {
					n = share
				}
				if _, err := c.Write(block[:n]); err != nil {
					fail("send to %s: %v", port, err)
				}
				share -= n
			}
			sent <- c
		}(share)
	}
	<-done
	seconds := time.Since(t0).Seconds()
	for i := 0; i < conns; i++ {
		(<-sent).Close()
	}
	mu.Lock()
	want = -1
	mu.Unlock()
	out, _ := json.Marshal(map[string]any{"seconds": seconds, "bytes": got.Load()})
	fmt.Println(string(out))
}

func main() {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail("listen: %v", err)
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				fail("accept: %v", err)
			}
			go sink(c)
		}
	}()
	fmt.Printf("listening %d\n", l.Addr().(*net.TCPAddr).Port)
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		f := strings.Fields(in.Text())
		switch {
		case len(f) == 4 && f[0] == "run":
			conns, err1 := strconv.Atoi(f[2])
			bytes, err2 := strconv.ParseInt(f[3], 10, 64)
			if err1 != nil || err2 != nil || conns < 1 || bytes < int64(conns) {
				fail("bad command %q", in.Text())
			}
			run(f[1], conns, bytes)
		case len(f) == 1 && f[0] == "open":
			fmt.Printf("{\"open\":%d}\n", open.Load())
		default:
			fail("unknown command %q", in.Text())
		}
	}
}
