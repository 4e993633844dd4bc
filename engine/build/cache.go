package build

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
)

// stepIDPrefix keeps build step IDs in a different space from tarball IDs.
const stepIDPrefix = "zocker/v1 step\n"

// stepKey is everything a step's result depends on besides its parent's
// content: the content address of ARCHITECTURE section 4.
type stepKey struct {
	// Parent is the ID of the image the step starts from ("" for scratch).
	Parent string
	// Instruction is the normalized instruction: keyword, flags and the
	// arguments after ARG/ENV expansion, so that spacing and quoting do not
	// matter but every value the step uses does.
	Instruction string
	// Args are the NAME=VALUE of the ARGs in scope that the step sees as
	// environment (RUN only: other steps see ARGs only through expansion,
	// which Instruction already carries).
	Args []string
	// Files is the digest of the files a COPY reads ("" for other steps).
	Files string
}

// ID is the step's image ID: sha256 over the key's parts, each length-framed
// so that no two different keys can serialize alike.
func (k stepKey) ID() string {
	h := sha256.New()
	h.Write([]byte(stepIDPrefix))
	args := append([]string(nil), k.Args...)
	sort.Strings(args)
	for _, part := range append([]string{k.Parent, k.Instruction, k.Files}, args...) {
		fmt.Fprintf(h, "%d:%s\n", len(part), part)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// normalize renders an instruction for its step key: keyword, form, --chown
// and the (already expanded) arguments as JSON.
func normalize(in Instruction, args []string) string {
	j, _ := json.Marshal(args) // a []string always marshals
	form := "shell"
	if in.Exec {
		form = "exec"
	}
	s := in.Keyword + " " + form + " " + string(j)
	if in.Chown != "" {
		s += " chown=" + in.Chown
	}
	return s
}
