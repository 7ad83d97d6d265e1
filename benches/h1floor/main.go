// Command h1floor computes the h1: hash (golang.org/x/mod/sumdb/dirhash's
// Hash1) of every module zip under a directory, one goroutine per core: the
// inflate-and-hash floor that `gomirror verify` is measured against in
// `cargo bench --bench mirror -- --scenario verify`.
//
// Usage: h1floor DIR — prints "<zips> <bytes of zip> <files hashed>"; with
// H1FLOOR_PRINT=1 also "<zip path> <h1>" for each zip (to check the hashes).
package main

import (
	"archive/zip"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
)

// h1 is Hash1: SHA-256 over the sorted lines "<sha256 hex>  <name>\n" of the
// zip's files.
func h1(path string) (string, int, error) {
	r, err := zip.OpenReader(path)
	if err != nil {
		return "", 0, err
	}
	defer r.Close()
	files := append([]*zip.File(nil), r.File...)
	sort.Slice(files, func(i, j int) bool { return files[i].Name < files[j].Name })
	summary := sha256.New()
	for _, f := range files {
		if strings.Contains(f.Name, "\n") {
			return "", 0, fmt.Errorf("%s: file name with a newline", path)
		}
		rc, err := f.Open()
		if err != nil {
			return "", 0, err
		}
		h := sha256.New()
		_, err = io.Copy(h, rc)
		rc.Close()
		if err != nil {
			return "", 0, fmt.Errorf("%s: %s: %v", path, f.Name, err)
		}
		fmt.Fprintf(summary, "%x  %s\n", h.Sum(nil), f.Name)
	}
	return "h1:" + base64.StdEncoding.EncodeToString(summary.Sum(nil)), len(files), nil
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: h1floor DIR")
		os.Exit(2)
	}
	var zips []string
	var bytes int64
	err := filepath.WalkDir(os.Args[1], func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() && strings.HasSuffix(p, ".zip") {
			info, err := d.Info()
			if err != nil {
				return err
			}
			bytes += info.Size()
			zips = append(zips, p)
		}
		return nil
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	work := make(chan string)
	var mu sync.Mutex
	var firstErr error
	hashed := 0
	print := os.Getenv("H1FLOOR_PRINT") == "1"
	var wg sync.WaitGroup
	for i := 0; i < runtime.NumCPU(); i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range work {
				sum, n, err := h1(p)
				mu.Lock()
				if print && err == nil {
					fmt.Println(p, sum)
				}
				hashed += n
				if err != nil && firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		}()
	}
	for _, p := range zips {
		work <- p
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		fmt.Fprintln(os.Stderr, firstErr)
		os.Exit(1)
	}
	fmt.Printf("%d %d %d\n", len(zips), bytes, hashed)
}
