package manifests

import (
	"cmp"
	"slices"
	"strconv"
)

// String formats the problem as a user sees it:
// "FILE:LINE: KIND/NAME: FIELD: message", with "warning: " after the
// location for warnings; LINE, KIND/NAME and FIELD are left out when unknown.
func (p Problem) String() string {
	s := p.File
	if p.Line > 0 {
		s += ":" + strconv.Itoa(p.Line)
	}
	s += ": "
	if p.Severity == SeverityWarning {
		s += "warning: "
	}
	if p.Object != "" {
		s += p.Object + ": "
	}
	if p.Field != "" {
		s += p.Field + ": "
	}
	return s + p.Message
}

// IsError reports whether the problem makes its file invalid.
func (p Problem) IsError() bool { return p.Severity != SeverityWarning }

// SortProblems orders problems by file, line, object, field and message.
func SortProblems(ps []Problem) {
	slices.SortStableFunc(ps, func(a, b Problem) int {
		return cmp.Or(
			cmp.Compare(a.File, b.File),
			cmp.Compare(a.Line, b.Line),
			cmp.Compare(a.Object, b.Object),
			cmp.Compare(a.Field, b.Field),
			cmp.Compare(a.Message, b.Message),
		)
	})
}

// Errors counts the problems that are errors (not warnings).
func (s *Set) Errors() int {
	n := 0
	for _, p := range s.Problems {
		if p.IsError() {
			n++
		}
	}
	return n
}
