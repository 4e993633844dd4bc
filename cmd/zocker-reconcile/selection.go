package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/zocker-reconcile/zocker-reconcile/manifests"
)

// selection is what plan and apply act on: the whole manifest directory
// (and then they prune what it no longer declares), or the objects of one
// file (kubectl's apply -f: nothing else is touched, nothing is pruned).
type selection struct {
	// load is what to load: the directory, or the manifest directory that
	// holds file (so that references to objects of other files resolve), or
	// file itself when it lies outside it.
	load string
	// file is the absolute path of the file given; "" for a directory.
	file string
}

// selectManifests reads plan's and apply's argument: DIR, FILE, or nothing
// (--manifests).
func selectManifests(g *globals, args []string) (selection, error) {
	arg := manifestsArg(g, args)
	fi, err := os.Stat(arg)
	if err != nil || fi.IsDir() {
		return selection{load: arg}, nil // a missing directory is the loader's to report
	}
	file, err := filepath.Abs(arg)
	if err == nil {
		file, err = filepath.EvalSymlinks(file)
	}
	if err != nil {
		return selection{}, fmt.Errorf("manifest file %s: %w", arg, err)
	}
	if dir, err := filepath.EvalSymlinks(g.manifests); err == nil {
		if dir, err = filepath.Abs(dir); err == nil && strings.HasPrefix(file, dir+string(filepath.Separator)) {
			return selection{load: g.manifests, file: file}, nil
		}
	}
	return selection{load: arg, file: file}, nil
}

// only returns the keys of the objects the file declares, nil for a
// directory (everything, with pruning).
func (s selection) only(set *manifests.Set) map[string]bool {
	if s.file == "" {
		return nil
	}
	keys := map[string]bool{}
	for key, src := range set.Sources {
		if src.File == s.file {
			keys[key] = true
		}
	}
	return keys
}

// describe is the line that says which mode ran.
func (s selection) describe(only map[string]bool) string {
	if s.file == "" {
		return fmt.Sprintf("Whole manifest directory %s: objects it no longer declares are pruned.", s.load)
	}
	return fmt.Sprintf("Only the %d object(s) of %s: nothing else is changed or pruned (give the directory to prune).", len(only), s.file)
}
