package main

import (
	"errors"
	"fmt"

	"github.com/zocker-reconcile/zocker-reconcile/manifests"
)

// invalidFiles is why plan and apply exit 1 when manifest files failed to
// load: the valid objects were planned or converged, and a CI job running
// them must still fail. Nil when every file loaded.
func invalidFiles(set *manifests.Set) error {
	n := set.InvalidFiles()
	switch n {
	case 0:
		return nil
	case 1:
		return errors.New("1 manifest file is invalid (problems above): the objects it declares were left as they are")
	}
	return fmt.Errorf("%d manifest files are invalid (problems above): the objects they declare were left as they are", n)
}
