// The tutorial's Go server: answers every request on port 8080 with a greeting.
//
// `/server -self-test` starts the server on a free loopback port, asks it once, prints the
// answer and exits, so a script can check the image without a network.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"runtime"
)

func greet(w http.ResponseWriter, r *http.Request) {
	fmt.Fprintf(w, "Hello from a static Go binary (%s) on a distroless base\n", runtime.Version())
}

func selfTest() error {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go http.Serve(listener, http.HandlerFunc(greet))
	response, err := http.Get("http://" + listener.Addr().String() + "/")
	if err != nil {
		return err
	}
	defer response.Body.Close()
	_, err = io.Copy(os.Stdout, response.Body)
	return err
}

func main() {
	test := flag.Bool("self-test", false, "serve one request on loopback, print the answer and exit")
	flag.Parse()
	if *test {
		if err := selfTest(); err != nil {
			log.Fatal(err)
		}
		return
	}
	log.Fatal(http.ListenAndServe(":8080", http.HandlerFunc(greet)))
}
