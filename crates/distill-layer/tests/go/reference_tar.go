// Writes the tree at os.Args[1] as a tar to stdout with the header choices containerd makes
// when it writes a layer (FileInfoHeader without name lookups, Format PAX, whole-second
// mtimes, no atime/ctime, security.capability as a PAX xattr, hardlinks to the first path of
// an inode). Used by distill-layer's tests to compare its output byte for byte.
package main

import (
	"archive/tar"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

func main() {
	root := os.Args[1]
	tw := tar.NewWriter(os.Stdout)
	firstPath := map[[2]uint64]string{}
	err := filepath.Walk(root, func(path string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if path == root {
			return nil
		}
		if fi.Mode()&os.ModeSocket != 0 {
			return nil
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		link := ""
		if fi.Mode()&os.ModeSymlink != 0 {
			if link, err = os.Readlink(path); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		hdr.Uname, hdr.Gname = "", ""
		hdr.Format = tar.FormatPAX
		hdr.ModTime = hdr.ModTime.Truncate(time.Second)
		hdr.AccessTime, hdr.ChangeTime = time.Time{}, time.Time{}
		name := filepath.ToSlash(rel)
		if fi.IsDir() && !strings.HasSuffix(name, "/") {
			name += "/"
		}
		hdr.Name = name
		st := fi.Sys().(*syscall.Stat_t)
		if !fi.IsDir() && st.Nlink > 1 {
			key := [2]uint64{uint64(st.Dev), uint64(st.Ino)}
			if first, ok := firstPath[key]; ok {
				hdr.Typeflag = tar.TypeLink
				hdr.Linkname = first
				hdr.Size = 0
			} else {
				firstPath[key] = name
			}
		}
		buf := make([]byte, 1024)
		if n, err := syscall.Getxattr(path, "security.capability", buf); err == nil && n > 0 && fi.Mode()&os.ModeSymlink == 0 {
			hdr.PAXRecords = map[string]string{"SCHILY.xattr.security.capability": string(buf[:n])}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if hdr.Typeflag == tar.TypeReg && hdr.Size > 0 {
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			if _, err := tw.Write(data); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		err = tw.Close()
	}
	if err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(1)
	}
}
