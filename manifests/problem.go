package manifests

import (
	"cmp"
	"fmt"
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
		switch {
		case p.HiddenErrors > 0 || p.HiddenWarnings > 0:
			n += p.HiddenErrors // the line standing for problems not shown
		case p.IsError():
			n++
		}
	}
	return n
}

// maxProblemsPerFile bounds what one file reports: 600 KB of YAML aliasing
// one mapping gave 99,987 problems (review L5), each logged, counted and
// served in /status. The first ones found are kept; one more problem says
// how many were left out and carries their counts (Errors adds them).
// Whether the file is invalid is decided on all of them.
const maxProblemsPerFile = 50

func capProblems(ps []Problem, file string) []Problem {
	if len(ps) <= maxProblemsPerFile {
		return ps
	}
	rest := ps[maxProblemsPerFile:]
	errs := 0
	for _, p := range rest {
		if p.IsError() {
			errs++
		}
	}
	sev := SeverityWarning
	if errs > 0 {
		sev = SeverityError
	}
	more := Problem{File: file, Line: rest[0].Line, Severity: sev, HiddenErrors: errs, HiddenWarnings: len(rest) - errs,
		Message: fmt.Sprintf("%d more problems in this file are not shown (%d errors, %d warnings): fix the ones shown for this file first", len(rest), errs, len(rest)-errs)}
	return append(ps[:maxProblemsPerFile:maxProblemsPerFile], more)
}
