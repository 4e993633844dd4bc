package main

import (
	"fmt"

	"github.com/zocker-reconcile/zocker-reconcile/manifests"
)

// imageSizeLimit parses --max-image-size: the bound of a pulled stream, a
// tarball download and the quota of every work dataset (review C1/M8).
func (g *globals) imageSizeLimit() (int64, error) {
	n, err := manifests.ParseQuantity(g.maxImageSize)
	if err != nil {
		return 0, fmt.Errorf("--max-image-size: %w", err)
	}
	if n < 1<<20 {
		return 0, fmt.Errorf("--max-image-size %s: want at least 1M", g.maxImageSize)
	}
	return n, nil
}
