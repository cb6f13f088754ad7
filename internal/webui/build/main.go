// Command build bundles the web UI's sources (web/) into
// internal/webui/dist, which cove embeds. Run it from the repository's
// root after npm ci in web/ (make ui does both):
//
//	go run ./internal/webui/build
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/cove-sandbox/cove/internal/webui/bundle"
)

func main() {
	web := flag.String("web", "web", "the web UI's sources")
	out := flag.String("out", "internal/webui/dist", "where the bundle goes")
	bundleDir := flag.String("bundle", "internal/webui/bundle", "the bundle package's directory (its code is part of the source hash)")
	flag.Parse()
	files, err := bundle.Build(bundle.Options{WebDir: *web, OutDir: *out, BundleDir: *bundleDir})
	if err != nil {
		fmt.Fprintln(os.Stderr, "build:", err)
		os.Exit(1)
	}
	var size, gz int
	for _, f := range files {
		fmt.Printf("%-40s %8d bytes %8d gzipped\n", f.Name, f.Size, f.Gzipped)
		size += f.Size
		gz += f.Gzipped
	}
	fmt.Printf("%-40s %8d bytes %8d gzipped\n", "total", size, gz)
}
