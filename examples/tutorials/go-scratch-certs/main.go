// The tutorial's API: answers every request on port 8080 with its VERSION.
//
// `/app -self-test` starts the server on a free loopback port, asks it once and prints the
// answer, then shows that the files copied beside the binary work in an image FROM scratch:
// the CA certificates (Go's system pool reads /etc/ssl/certs/ca-certificates.crt) and the time
// zone data (/usr/share/zoneinfo).
package main

import (
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"time"
)

func version(w http.ResponseWriter, r *http.Request) {
	fmt.Fprintf(w, "API version: %s\n", os.Getenv("VERSION"))
}

func selfTest() error {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go http.Serve(listener, http.HandlerFunc(version))
	response, err := http.Get("http://" + listener.Addr().String() + "/")
	if err != nil {
		return err
	}
	defer response.Body.Close()
	if _, err := io.Copy(os.Stdout, response.Body); err != nil {
		return err
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		return err
	}
	// Subjects is deprecated because it misses the roots of platform verifiers (macOS,
	// Windows); on Linux the pool is the file's certificates, which is what this counts.
	count := len(pool.Subjects())
	if count == 0 {
		return fmt.Errorf("no CA certificates in /etc/ssl/certs/ca-certificates.crt")
	}
	fmt.Printf("CA certificates: %d\n", count)
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		return err
	}
	fmt.Printf("time zone Europe/Paris: %s\n", time.Date(2024, 7, 14, 12, 0, 0, 0, paris).Format("MST -0700"))
	return nil
}

func main() {
	test := flag.Bool("self-test", false, "serve one request on loopback, check the copied CA certificates and time zones, exit")
	flag.Parse()
	if *test {
		if err := selfTest(); err != nil {
			log.Fatal(err)
		}
		return
	}
	http.HandleFunc("/", version)
	log.Fatal(http.ListenAndServe(":8080", nil))
}
