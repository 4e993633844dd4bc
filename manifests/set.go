package manifests

// Severity of a Problem.
const (
	SeverityError   = "error"
	SeverityWarning = "warning"
)

// Problem is one thing wrong with the manifests, as a user sees it:
// "FILE:LINE: KIND/NAME: message". Line is 0 when unknown; Object is empty
// for problems of the whole file.
type Problem struct {
	File     string `json:"file"`
	Line     int    `json:"line,omitempty"`
	Object   string `json:"object,omitempty"` // "Container/web"
	Field    string `json:"field,omitempty"`  // "spec.volumes[1].hostPath"
	Message  string `json:"message"`
	Severity string `json:"severity"`
	// HiddenErrors and HiddenWarnings are set on the one problem that
	// stands for those a file had beyond the first 50 (not listed).
	HiddenErrors   int `json:"hiddenErrors,omitempty"`
	HiddenWarnings int `json:"hiddenWarnings,omitempty"`
}

// Source says where an object was declared.
type Source struct {
	File string `json:"file"` // absolute path, through the resolved manifest root
	Line int    `json:"line"` // line of the document's first line
	// Rel is File relative to the manifest root: unlike File it does not
	// change when a git-sync swap moves the root to a new worktree.
	Rel string `json:"rel"`
}

// FileResult is the outcome of loading one manifest file.
type FileResult struct {
	Path string `json:"path"`
	// Rel is Path relative to the manifest root (see Source.Rel).
	Rel string `json:"rel"`
	// Objects are the "Kind/name" keys the file declared (empty when it failed to parse).
	Objects []string `json:"objects,omitempty"`
	// Failed is true when the file has at least one error: none of its objects
	// are in the Set, and the objects it declared before keep their last
	// applied spec.
	Failed bool `json:"failed,omitempty"`
}

// Set is a loaded, validated manifest directory: only objects from files
// without errors, with duplicates (in any file) removed from it.
type Set struct {
	Images     map[string]*Image     `json:"images"`
	Containers map[string]*Container `json:"containers"`
	Volumes    map[string]*Volume    `json:"volumes"`
	// Sources maps "Kind/name" to where it was declared.
	Sources map[string]Source `json:"sources"`
	// Files lists every manifest file read, sorted by path.
	Files []FileResult `json:"files"`
	// Blocked lists "Kind/name" keys that must not be changed or pruned this
	// pass (duplicates across files). Objects from failed files are found
	// through Files and the zocker:manifest property of the observed objects.
	Blocked []string `json:"blocked,omitempty"`
	// Problems holds every error and warning, sorted by file, line, object.
	Problems []Problem `json:"problems,omitempty"`
	// Root is the manifest directory as given; Resolved is the path it was read through.
	Root     string `json:"root"`
	Resolved string `json:"resolved"`
	// Revision is the git-sync worktree hash (the symlink target's base name)
	// when there is one, else a digest of the contents.
	Revision string `json:"revision"`
	// Missing is true when the root did not exist (distinct from an empty one).
	Missing bool `json:"missing,omitempty"`
}

// InvalidFiles is the number of files that failed to load: their objects are
// not in the Set and are left as they are.
func (s *Set) InvalidFiles() int {
	n := 0
	for _, f := range s.Files {
		if f.Failed {
			n++
		}
	}
	return n
}
