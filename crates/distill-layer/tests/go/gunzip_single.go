// Reads a gzip stream on stdin as ONE gzip member with Go's compress/gzip (multistream off),
// fails if anything follows that member, and prints the sha256 of the decompressed bytes as
// "sha256:<hex>". Used by distill-layer's tests to prove parallel gzip output is one stream.
package main

import (
	"bufio"
	"compress/gzip"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
)

func main() {
	in := bufio.NewReader(os.Stdin)
	z, err := gzip.NewReader(in)
	if err != nil {
		fail(err)
	}
	z.Multistream(false)
	h := sha256.New()
	if _, err := io.Copy(h, z); err != nil {
		fail(err)
	}
	if err := z.Close(); err != nil {
		fail(err)
	}
	if extra, _ := io.Copy(io.Discard, in); extra != 0 {
		fail(fmt.Errorf("%d bytes follow the first gzip member", extra))
	}
	fmt.Printf("sha256:%x\n", h.Sum(nil))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}
