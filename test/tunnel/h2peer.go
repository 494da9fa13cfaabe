// An independent HTTP/2 server for the tunnel tests, on Go's net/http (HTTP/2 over TLS, ALPN h2).
// Usage: h2peer CERT KEY. Prints "listening PORT"; for each request prints one JSON line (method,
// host, path, authorization, protocol), answers 200, sends "hello from go\n", then echoes the
// request body as it arrives (full duplex) and ends the stream at the body's end.
package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
)

func main() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	fmt.Printf("listening %d\n", ln.Addr().(*net.TCPAddr).Port)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		line, _ := json.Marshal(map[string]string{
			"method": r.Method, "host": r.Host, "path": r.URL.Path, "authorization": r.Header.Get("Authorization"), "proto": r.Proto,
		})
		fmt.Println(string(line))
		w.WriteHeader(200)
		w.Write([]byte("hello from go\n"))
		w.(http.Flusher).Flush()
		buf := make([]byte, 32*1024)
		for {
			n, err := r.Body.Read(buf)
			if n > 0 {
				w.Write(buf[:n])
				w.(http.Flusher).Flush()
			}
			if err != nil {
				return
			}
		}
	})
	server := &http.Server{Handler: handler}
	if err := server.ServeTLS(ln, os.Args[1], os.Args[2]); err != nil {
		panic(err)
	}
}
