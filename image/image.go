// Package image is the vocabulary every layer shares about images and
// names: what an image ID looks like and how it and image sizes are written
// for people, and the name rule that object names and image tags follow (they become
// ZFS dataset names, jail names and file names). It imports nothing of this
// module, so manifests, reconcile and the engine can all use it.
package image

import (
	"fmt"
	"regexp"
)

// NameRegexp is what object names and tags must match: short DNS labels
// (and not all digits: see ValidName).
var NameRegexp = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// nameRule says NameRegexp in words.
const nameRule = "use lower-case letters, digits and '-', starting and ending with a letter or digit"

var idRegexp = regexp.MustCompile(`^[0-9a-f]{64}$`)

// ValidName checks an object name or tag; what ("container", "tag") names it
// in the error, "" for a plain "name".
func ValidName(what, s string) error {
	label := "name"
	if what != "" {
		label = what + " name"
	}
	switch {
	case s == "":
		return fmt.Errorf("%s is empty", label)
	case len(s) > 63:
		return fmt.Errorf("%s %q is %d characters long, the limit is 63", label, s, len(s))
	case !NameRegexp.MatchString(s) && what == "":
		return fmt.Errorf("name %q is invalid: %s", s, nameRule)
	case !NameRegexp.MatchString(s):
		return fmt.Errorf("invalid %s name %q: %s", what, s, nameRule)
	case allDigits(s):
		// jail(8) (config.c load_config), jexec, jls -j and libjail's
		// jail_getid() read an all-digit name as a jail ID: "3" would act
		// on whatever jail has jid 3 (security review M6).
		return fmt.Errorf("%s %q is invalid: it needs at least one letter (jail(8) reads an all-digit name as a jail ID)", label, s)
	}
	return nil
}

// allDigits reports whether s is a non-empty string of ASCII digits.
func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// ValidID checks an image ID: 64 lowercase hex digits (the sha256 the store
// and the repositories name images by).
func ValidID(id string) error {
	if !idRegexp.MatchString(id) {
		return fmt.Errorf("invalid image ID %q: want 64 lowercase hex digits", id)
	}
	return nil
}

// Short shortens an image ID (or an inputs digest) for people: the first 12
// hex digits, without a "sha256:" prefix, as docker and zocker print them;
// "none" for no ID. It never panics on a short or empty string.
func Short(id string) string {
	if i := len("sha256:"); len(id) > i && id[:i] == "sha256:" {
		id = id[i:]
	}
	if len(id) > 12 {
		return id[:12]
	}
	if id == "" {
		return "none"
	}
	return id
}

// Size writes a byte count (an image, a dataset, a transfer) for people, in
// the binary units the manifests' quantities use: 512B, 1.5K, 10.0G. ZFS
// counts in uint64, the repositories in int64; a negative count is 0.
func Size[N ~int64 | ~uint64](count N) string {
	const unit = 1024
	n := uint64(max(count, 0))
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f%c", float64(n)/float64(div), "KMGTPE"[exp])
}

// EditDistance is the optimal string alignment distance between a and b:
// insertions, deletions, substitutions and swaps of adjacent bytes. The
// "did you mean" suggestions for field names and roots use it.
func EditDistance(a, b string) int {
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
