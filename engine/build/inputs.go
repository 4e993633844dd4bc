package build

import (
	"bytes"
	"path/filepath"
	"strings"

	"github.com/zocker-reconcile/zocker-reconcile/image"
	"github.com/zocker-reconcile/zocker-reconcile/manifests"
)

// Inputs hashes a build's inputs, the digest the reconciler compares with
// the one recorded on the current image: the Zockerfile, the context, the
// args and the base image's ID (tags resolves a tag, as last observed). It
// also names the base image FROM starts with. While the base is not made
// yet the inputs are unknown (""): the build waits for the base, and the
// hash settles once the base exists.
func Inputs(b *manifests.BuildSource, tags func(ref string) (string, bool)) (inputs, base string, err error) {
	file := b.File
	if !filepath.IsAbs(file) {
		file = filepath.Join(b.Context, file)
	}
	data, err := readSmallFile(file, maxSmallFile)
	if err != nil {
		return "", "", err
	}
	f, err := Parse(filepath.Base(file), bytes.NewReader(data))
	if err != nil {
		return "", "", err
	}
	// FROM may name its base through an ARG declared before it, with a
	// default the build args override.
	args := map[string]string{}
	for _, in := range f.Instructions {
		switch in.Keyword {
		case Arg:
			k, def, _ := strings.Cut(in.Args[0], "=")
			args[k] = def
		case From:
			base = Expand(in.Args[0], func(k string) (string, bool) {
				if v, ok := b.Args[k]; ok {
					return v, true
				}
				v, ok := args[k]
				return v, ok
			})
		}
	}
	baseID := base
	if id, ok := tags(base); ok {
		baseID = id
	} else if base != "scratch" && image.ValidID(base) != nil {
		return "", base, nil
	}
	h, err := InputsHash(b.Context, b.File, b.Args, baseID)
	if err != nil {
		return "", "", err
	}
	return "build:" + h, base, nil
}
