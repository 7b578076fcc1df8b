// yamux-peer: hashicorp/yamux (the library the Go s2s-proxy multiplexes with) on one end of a connection, for
// testing s2s-proxy's own yamux against it. Built in GOPATH mode from Debian's golang-github-hashicorp-yamux-dev:
//
//	GOPATH=/usr/share/gocode GO111MODULE=off go build -o yamux-peer main.go
//
// It dials (-dial) or accepts (-accept) one connection per session (-sessions), optionally over TLS, and runs a
// yamux client or server session on each. Streams the other end opens are echoed, or piped to -forward (a TCP
// address, e.g. a Temporal frontend: each stream is then one HTTP/2 connection to it, as in the Go proxy). Each
// connection accepted on -listen is piped into a new stream. With -open N it opens N streams itself, writes -size
// bytes on each, checks that the same bytes come back, closes them, prints "opened N streams OK" and exits.
// It prints "READY <address>" once it listens or is connected.
package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/yamux"
)

var (
	dial     = flag.String("dial", "", "address to dial (yamux client)")
	accept   = flag.String("accept", "", "address to accept on (yamux server)")
	sessions = flag.Int("sessions", 1, "sessions to dial or accept")
	forward  = flag.String("forward", "", "pipe streams the other end opens to this TCP address (default: echo)")
	listen   = flag.String("listen", "", "pipe TCP connections accepted here into new streams")
	open     = flag.Int("open", 0, "open this many streams, echo-check -size bytes on each, and exit")
	size     = flag.Int("size", 1<<20, "bytes per stream with -open")
	certFile = flag.String("cert", "", "TLS certificate (PEM)")
	keyFile  = flag.String("key", "", "TLS key (PEM)")
	caFile   = flag.String("ca", "", "CA bundle to verify the other end with (PEM)")
	name     = flag.String("server-name", "", "TLS server name to expect (client)")
)

func tlsConfig(server bool) *tls.Config {
	if *certFile == "" && *caFile == "" {
		return nil
	}
	config := &tls.Config{NextProtos: []string{"h2"}, MinVersion: tls.VersionTLS12, ServerName: *name}
	if *certFile != "" {
		pair, err := tls.LoadX509KeyPair(*certFile, *keyFile)
		if err != nil {
			log.Fatalf("certificate: %v", err)
		}
		config.Certificates = []tls.Certificate{pair}
	}
	if *caFile != "" {
		pem, err := os.ReadFile(*caFile)
		if err != nil {
			log.Fatalf("ca: %v", err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		if server {
			config.ClientCAs = pool
			config.ClientAuth = tls.RequireAndVerifyClientCert
		} else {
			config.RootCAs = pool
		}
	}
	return config
}

func pipe(a, b net.Conn) {
	var wg sync.WaitGroup
	wg.Add(2)
	copyHalf := func(to, from net.Conn) {
		defer wg.Done()
		io.Copy(to, from)
		if closer, ok := to.(interface{ CloseWrite() error }); ok {
			closer.CloseWrite()
		} else {
			to.Close()
		}
	}
	go copyHalf(a, b)
	go copyHalf(b, a)
	wg.Wait()
	a.Close()
	b.Close()
}

func serveStreams(session *yamux.Session) {
	for {
		stream, err := session.Accept()
		if err != nil {
			return
		}
		go func(stream net.Conn) {
			if *forward == "" {
				io.Copy(stream, stream)
				stream.Close()
				return
			}
			upstream, err := net.Dial("tcp", *forward)
			if err != nil {
				log.Printf("forward: %v", err)
				stream.Close()
				return
			}
			pipe(stream, upstream)
		}(stream)
	}
}

func echoCheck(session *yamux.Session, index int) error {
	stream, err := session.Open()
	if err != nil {
		return fmt.Errorf("open: %v", err)
	}
	defer stream.Close()
	payload := make([]byte, *size)
	for i := range payload {
		payload[i] = byte(i*7 + index)
	}
	errs := make(chan error, 1)
	go func() {
		_, err := stream.Write(payload)
		errs <- err
	}()
	// Read the whole echo before closing: this yamux's Read reports EOF once its own side is closed.
	stream.SetReadDeadline(time.Now().Add(60 * time.Second))
	back := make([]byte, len(payload))
	if _, err := io.ReadFull(stream, back); err != nil {
		return fmt.Errorf("stream %d: read: %v", index, err)
	}
	if err := <-errs; err != nil {
		return fmt.Errorf("stream %d: write: %v", index, err)
	}
	if !bytes.Equal(back, payload) {
		return fmt.Errorf("stream %d: the echo differs from the %d bytes sent", index, len(payload))
	}
	return nil
}

func run(conn net.Conn, server bool, ready chan<- *yamux.Session) {
	config := yamux.DefaultConfig()
	config.LogOutput = os.Stderr
	var session *yamux.Session
	var err error
	if server {
		session, err = yamux.Server(conn, config)
	} else {
		session, err = yamux.Client(conn, config)
	}
	if err != nil {
		log.Fatalf("session: %v", err)
	}
	ready <- session
	serveStreams(session)
}

func main() {
	flag.Parse()
	log.SetPrefix("yamux-peer: ")
	ready := make(chan *yamux.Session, *sessions)
	if *accept != "" {
		listener, err := net.Listen("tcp", *accept)
		if err != nil {
			log.Fatal(err)
		}
		if config := tlsConfig(true); config != nil {
			listener = tls.NewListener(listener, config)
		}
		fmt.Printf("READY %s\n", listener.Addr())
		go func() {
			for i := 0; i < *sessions; i++ {
				conn, err := listener.Accept()
				if err != nil {
					log.Fatal(err)
				}
				go run(conn, true, ready)
			}
		}()
	} else {
		for i := 0; i < *sessions; i++ {
			var conn net.Conn
			var err error
			if config := tlsConfig(false); config != nil {
				conn, err = tls.Dial("tcp", *dial, config)
			} else {
				conn, err = net.Dial("tcp", *dial)
			}
			if err != nil {
				log.Fatalf("dial: %v", err)
			}
			go run(conn, false, ready)
		}
	}
	var all []*yamux.Session
	for i := 0; i < *sessions; i++ {
		all = append(all, <-ready)
	}
	if *dial != "" {
		fmt.Printf("READY %s\n", *dial)
	}
	if *listen != "" {
		listener, err := net.Listen("tcp", *listen)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("LISTENING %s\n", listener.Addr())
		go func() {
			for next := 0; ; next++ {
				conn, err := listener.Accept()
				if err != nil {
					return
				}
				stream, err := all[next%len(all)].Open()
				if err != nil {
					log.Printf("open: %v", err)
					conn.Close()
					continue
				}
				go pipe(conn, stream)
			}
		}()
	}
	if *open > 0 {
		var wg sync.WaitGroup
		failures := make(chan error, *open)
		for i := 0; i < *open; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				if err := echoCheck(all[i%len(all)], i); err != nil {
					failures <- err
				}
			}(i)
		}
		wg.Wait()
		close(failures)
		for err := range failures {
			log.Fatalf("FAILED %v", err)
		}
		fmt.Printf("opened %d streams OK\n", *open)
		return
	}
	select {}
}
