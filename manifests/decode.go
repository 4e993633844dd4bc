package manifests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/zocker-reconcile/zocker-reconcile/image"
	yaml3 "go.yaml.in/yaml/v3"
)

// Document is one object declared in a manifest file.
type Document struct {
	// Kind and Name are as written (Name may be invalid or empty).
	Kind string
	Name string
	// Line is the document's first line in the file.
	Line int
	// Object is the decoded, defaulted *Image, *Container or *Volume; nil
	// when the document could not be decoded.
	Object any
	// Failed is true when the document has at least one error.
	Failed bool

	lines map[string]int // field path -> line, for problems found later
}

// Key is "Kind/name", the identity of the object in a Set.
func (d *Document) Key() string { return d.Kind + "/" + d.Name }

// label is how problems name the document's object.
func (d *Document) label() string {
	switch {
	case d.Kind == "":
		return ""
	case d.Name == "":
		return d.Kind
	case image.NameRegexp.MatchString(d.Name):
		return d.Kind + "/" + d.Name
	}
	return d.Kind + "/" + strconv.Quote(d.Name)
}

// lineOf returns the line of field, or of its nearest known parent, or the document's.
func (d *Document) lineOf(field string) int {
	for f := field; f != ""; {
		if l, ok := d.lines[f]; ok {
			return l
		}
		i := strings.LastIndexAny(f, ".[")
		if i < 0 {
			break
		}
		f = f[:i]
	}
	return d.Line
}

// MaxFileSize is the largest manifest file read (1 MiB).
const MaxFileSize = 1 << 20

// DecodeOptions tune the validation done while decoding.
type DecodeOptions struct {
	// NumCPU bounds resources.cpu (NumCPU*100); 0 means this machine's count.
	NumCPU int
}

// fileDecoder collects the problems of one file.
type fileDecoder struct {
	file     string
	dir      string
	opts     DecodeOptions
	problems []Problem
}

func (fd *fileDecoder) add(line int, doc *Document, field, severity, format string, args ...any) {
	p := Problem{File: fd.file, Line: line, Field: field, Severity: severity, Message: fmt.Sprintf(format, args...)}
	if doc != nil {
		p.Object = doc.label()
		if severity == SeverityError {
			doc.Failed = true
		}
	}
	fd.problems = append(fd.problems, p)
}

func decodeFile(file, dir string, data []byte, opts DecodeOptions) ([]*Document, []Problem) {
	fd := &fileDecoder{file: file, dir: dir, opts: opts}
	if !utf8.Valid(data) || bytes.IndexByte(data, 0) >= 0 {
		fd.add(0, nil, "", SeverityError, "not a text file: YAML must be UTF-8 text")
		return nil, fd.problems
	}
	var docs []*Document
	for _, c := range splitDocuments(data) {
		if d := fd.document(c.text, c.line); d != nil {
			docs = append(docs, d)
		}
	}
	return docs, fd.problems
}

type chunk struct {
	text []byte
	line int // line of the chunk's first line in the file
}

// splitDocuments cuts a file at its "---" lines. The marker itself is blanked
// (not removed) so that columns and line numbers inside each chunk stay those
// of the file, shifted by the chunk's first line.
func splitDocuments(data []byte) []chunk {
	data = bytes.Clone(data)
	var out []chunk
	start, startLine, line := 0, 1, 1
	for i := 0; i <= len(data); {
		end := bytes.IndexByte(data[i:], '\n')
		if end < 0 {
			end = len(data)
		} else {
			end += i
		}
		l := data[i:end]
		if bytes.HasPrefix(l, []byte("---")) && (len(l) == 3 || strings.ContainsRune(" \t\r#", rune(l[3]))) {
			out = append(out, chunk{text: data[start:i], line: startLine})
			copy(data[i:i+3], "   ")
			start, startLine = i, line
		}
		line++
		i = end + 1
	}
	return append(out, chunk{text: data[start:], line: startLine})
}

var yamlErrLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// document decodes one chunk; nil when it holds no document (only comments).
func (fd *fileDecoder) document(text []byte, first int) *Document {
	var root yaml3.Node
	if err := yaml3.Unmarshal(text, &root); err != nil {
		fd.syntaxError(text, first, err)
		return nil
	}
	if root.Kind == 0 || len(root.Content) == 0 {
		return nil
	}
	top := root.Content[0]
	if top.Kind == yaml3.ScalarNode && top.Tag == "!!null" {
		return nil
	}
	off := first - 1
	if top.Kind != yaml3.MappingNode {
		fd.add(top.Line+off, nil, "", SeverityError, "not a manifest: the document is %s, want a mapping with apiVersion, kind, metadata and spec", describe(top))
		return nil
	}
	doc := &Document{Line: top.Line + off, lines: map[string]int{}}
	apiVersion, avLine := scalarAt(top, "apiVersion")
	doc.Kind, _ = scalarAt(top, "kind")
	if md := valueAt(top, "metadata"); md != nil {
		doc.Name, _ = scalarAt(md, "name")
	}
	switch {
	case apiVersion == "":
		fd.add(doc.Line, nil, "", SeverityError, "apiVersion is missing: want %s", APIVersion)
		return nil
	case apiVersion != APIVersion:
		fd.add(avLine+off, nil, "", SeverityError, "apiVersion %q is not supported: want %s", apiVersion, APIVersion)
		return nil
	}
	var obj any
	switch doc.Kind {
	case KindImage:
		obj = &Image{}
	case KindContainer:
		obj = &Container{}
	case KindVolume:
		obj = &Volume{}
	case "":
		fd.add(doc.Line, nil, "", SeverityError, "kind is missing: want Image, Container or Volume")
		return nil
	default:
		_, l := scalarAt(top, "kind")
		fd.add(l+off, nil, "", SeverityError, "kind %q is unknown: want Image, Container or Volume", doc.Kind)
		doc.Kind = ""
		return nil
	}
	w := &walker{lines: doc.lines, off: off}
	w.walk(top, reflect.TypeOf(obj).Elem(), "", 0)
	for _, p := range w.problems {
		fd.add(p.line, doc, p.field, SeverityError, "%s", p.msg)
	}
	onlyUnknown := doc.Failed && w.onlyUnknownFields()
	if doc.Failed && !onlyUnknown {
		return doc
	}
	mark := len(fd.problems)
	if onlyUnknown {
		// A misspelt field must not hide the other mistakes until it is
		// fixed: check the rest without it. The document stays invalid
		// (it declares nothing).
		w.dropUnknown()
		defer func() {
			kept := fd.problems[:mark]
			for _, p := range fd.problems[mark:] {
				if !w.hidden[p.Field] {
					kept = append(kept, p)
				}
			}
			fd.problems = kept
		}()
	}
	if err := decodeNode(top, obj); err != nil {
		fd.add(doc.Line, doc, "", SeverityError, "%s", strings.TrimPrefix(err.Error(), "json: "))
		return doc
	}
	v := &validator{doc: doc, fd: fd}
	switch o := obj.(type) {
	case *Image:
		Default(o, fd.dir)
		v.image(o)
	case *Container:
		Default(o, fd.dir)
		v.container(o)
	case *Volume:
		Default(o, fd.dir)
		v.volume(o)
	}
	if onlyUnknown {
		return doc
	}
	doc.Object = obj
	return doc
}

// onlyUnknownFields reports whether every problem the walk found is an
// unknown field.
func (w *walker) onlyUnknownFields() bool {
	n := 0
	for _, keys := range w.unknown {
		n += len(keys)
	}
	return n > 0 && n == len(w.problems)
}

// dropUnknown removes the unknown fields (key and value) from their
// mappings.
func (w *walker) dropUnknown() {
	for m, keys := range w.unknown {
		out := m.Content[:0]
		for i := 0; i+1 < len(m.Content); i += 2 {
			if !slices.Contains(keys, m.Content[i]) {
				out = append(out, m.Content[i], m.Content[i+1])
			}
		}
		m.Content = out
	}
}

// syntaxError reports a chunk that is not YAML, pointing at a tab in the
// indentation first since that is the commonest cause and the parser's
// own message for it is cryptic.
func (fd *fileDecoder) syntaxError(text []byte, first int, err error) {
	for i, l := range bytes.Split(text, []byte("\n")) {
		indent := l[:len(l)-len(bytes.TrimLeft(l, " \t"))]
		if bytes.IndexByte(indent, '\t') >= 0 && len(bytes.TrimSpace(l)) > 0 {
			fd.add(first+i, nil, "", SeverityError, "not YAML: a tab character in the indentation (YAML indents with spaces only)")
			return
		}
	}
	msg := err.Error()
	line := 0
	if m := yamlErrLine.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		line, msg = n+first-1, m[2]
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	fd.add(line, nil, "", SeverityError, "not YAML: %s", msg)
}

func describe(n *yaml3.Node) string {
	switch n.Kind {
	case yaml3.SequenceNode:
		return "a list"
	case yaml3.MappingNode:
		return "a mapping"
	case yaml3.ScalarNode:
		if n.Tag == "!!str" {
			return "a string"
		}
		return "a scalar (" + strings.TrimPrefix(n.Tag, "!!") + ")"
	case yaml3.AliasNode:
		return "an alias"
	}
	return "empty"
}

func valueAt(m *yaml3.Node, key string) *yaml3.Node {
	if m.Kind != yaml3.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func scalarAt(m *yaml3.Node, key string) (string, int) {
	v := valueAt(m, key)
	if v == nil || v.Kind != yaml3.ScalarNode {
		return "", 0
	}
	return v.Value, v.Line
}

// walker checks a node tree against a Go type the way the JSON field tags
// describe it: unknown fields (matched case-sensitively, unlike
// encoding/json), lists where mappings belong and the like, each with its
// full field path and line. It also records the line of every field.
type walker struct {
	lines    map[string]int
	off      int
	nodes    int
	problems []walkProblem
	// unknown are the mappings holding unknown fields, and those fields'
	// key nodes: without them the rest can still be checked. hidden are the
	// fields whose problems would only repeat an unknown one: the mapping
	// that holds it ("volume or hostPath is required") and the field it was
	// likely meant to be.
	unknown map[*yaml3.Node][]*yaml3.Node
	hidden  map[string]bool
}

type walkProblem struct {
	field string
	line  int
	msg   string
}

// Limits that keep hostile input (alias bombs, deep nesting) cheap.
const (
	maxDepth = 32
	maxNodes = 100000
)

var commandType = reflect.TypeOf(Command{})

func (w *walker) fail(n *yaml3.Node, field, format string, args ...any) {
	w.problems = append(w.problems, walkProblem{field: field, line: n.Line + w.off, msg: fmt.Sprintf(format, args...)})
}

func (w *walker) walk(n *yaml3.Node, t reflect.Type, path string, depth int) {
	w.nodes++
	if depth > maxDepth || w.nodes > maxNodes {
		if len(w.problems) == 0 {
			w.fail(n, path, "the document is nested too deeply or expands too many aliases")
		}
		return
	}
	if n.Kind == yaml3.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml3.ScalarNode && n.Tag == "!!null" {
		return
	}
	switch {
	case t == commandType:
		if n.Kind == yaml3.ScalarNode {
			return
		}
		if n.Kind == yaml3.SequenceNode {
			for i, e := range n.Content {
				if e.Kind != yaml3.ScalarNode {
					w.fail(e, fmt.Sprintf("%s[%d]", path, i), "want a string, got %s", describe(e))
				}
			}
			return
		}
		w.fail(n, path, "want a list of strings (an argv) or a string (run by /bin/sh -c), got %s", describe(n))
	case t.Kind() == reflect.Struct:
		if n.Kind != yaml3.MappingNode {
			w.fail(n, path, "want a mapping, got %s", describe(n))
			return
		}
		fields := fieldsOf(t)
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := join(path, k.Value)
			if seen[k.Value] {
				w.fail(k, p, "field is given twice")
				continue
			}
			seen[k.Value] = true
			ft, ok := fields[k.Value]
			if !ok {
				w.fail(k, p, "unknown field%s", suggest(k.Value, fields))
				if w.unknown == nil {
					w.unknown, w.hidden = map[*yaml3.Node][]*yaml3.Node{}, map[string]bool{}
				}
				w.unknown[n] = append(w.unknown[n], k)
				w.hidden[path] = true
				if best := nearest(k.Value, fields); best != "" {
					w.hidden[join(path, best)] = true
				}
				continue
			}
			w.lines[p] = k.Line + w.off
			w.walk(v, ft, p, depth+1)
		}
	case t.Kind() == reflect.Map:
		if n.Kind != yaml3.MappingNode {
			w.fail(n, path, "want a mapping, got %s", describe(n))
			return
		}
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := join(path, k.Value)
			if k.Kind != yaml3.ScalarNode {
				w.fail(k, path, "want string keys, got %s", describe(k))
				continue
			}
			if seen[k.Value] {
				w.fail(k, p, "key is given twice")
				continue
			}
			seen[k.Value] = true
			w.lines[p] = k.Line + w.off
			w.walk(v, t.Elem(), p, depth+1)
		}
	case t.Kind() == reflect.Slice:
		if n.Kind != yaml3.SequenceNode {
			w.fail(n, path, "want a list, got %s", describe(n))
			return
		}
		for i, e := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			w.lines[p] = e.Line + w.off
			w.walk(e, t.Elem(), p, depth+1)
		}
	case t.Kind() == reflect.String:
		if n.Kind != yaml3.ScalarNode {
			w.fail(n, path, "want a string, got %s", describe(n))
		}
	case t.Kind() == reflect.Int:
		if n.Kind != yaml3.ScalarNode || n.Tag != "!!int" {
			w.fail(n, path, "want an integer, got %s", describeValue(n))
		} else if _, err := strconv.ParseInt(n.Value, 0, 32); err != nil {
			w.fail(n, path, "integer %s is out of range", n.Value)
		}
	case t.Kind() == reflect.Bool:
		if n.Kind != yaml3.ScalarNode || n.Tag != "!!bool" {
			w.fail(n, path, "want true or false, got %s", describeValue(n))
		}
	}
}

func describeValue(n *yaml3.Node) string {
	if n.Kind == yaml3.ScalarNode {
		return strconv.Quote(n.Value)
	}
	return describe(n)
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// suggest names the field the user probably meant: one that differs only in
// case, else the closest by edit distance when it is a near miss (a typo,
// two letters swapped: spec.comand -> command). Ties go to the first name in
// alphabetical order, so the message is stable.
func suggest(key string, fields map[string]reflect.Type) string {
	if best := nearest(key, fields); best != "" {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	return ""
}

// nearest is the field key was most likely meant to be, or "".
func nearest(key string, fields map[string]reflect.Type) string {
	names := make([]string, 0, len(fields))
	for f := range fields {
		names = append(names, f)
	}
	slices.Sort(names)
	best, bestDist := "", maxSuggestDistance(key)+1
	for _, f := range names {
		if strings.EqualFold(f, key) {
			return f
		}
		if d := image.EditDistance(strings.ToLower(key), strings.ToLower(f)); d < bestDist {
			best, bestDist = f, d
		}
	}
	return best
}

// maxSuggestDistance is how far a key may be from a field name to be taken
// for a typo of it: one edit for short keys, two from five characters on.
func maxSuggestDistance(key string) int {
	if len(key) < 5 {
		return 1
	}
	return 2
}

var fieldCache sync.Map // reflect.Type -> map[string]reflect.Type

// fieldsOf maps the JSON names of t's fields to their types, with the fields
// of embedded structs promoted as encoding/json does.
func fieldsOf(t reflect.Type) map[string]reflect.Type {
	if m, ok := fieldCache.Load(t); ok {
		return m.(map[string]reflect.Type)
	}
	m := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			for k, v := range fieldsOf(f.Type) {
				m[k] = v
			}
			continue
		}
		if name == "" {
			name = f.Name
		}
		m[name] = f.Type
	}
	fieldCache.Store(t, m)
	return m
}

// decodeNode fills obj from a node tree that walk has accepted. It goes
// through encoding/json (with unknown fields refused, as a second guard) but
// takes every scalar as YAML 1.2 reads it, and string fields as the text
// written: sigs.k8s.io/yaml resolves YAML 1.1 scalars, which turns
// "compression: on" into "true" and an environment variable named N into
// "false".
func decodeNode(n *yaml3.Node, obj any) error {
	data, err := json.Marshal(toJSON(n, reflect.TypeOf(obj).Elem()))
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	return dec.Decode(obj)
}

// toJSON converts a node to the JSON value that t expects.
func toJSON(n *yaml3.Node, t reflect.Type) any {
	if n.Kind == yaml3.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml3.ScalarNode && n.Tag == "!!null" {
		return nil
	}
	switch {
	case t == commandType && n.Kind == yaml3.SequenceNode:
		argv := make([]string, 0, len(n.Content))
		for _, e := range n.Content {
			argv = append(argv, e.Value)
		}
		return argv
	case t.Kind() == reflect.Struct && n.Kind == yaml3.MappingNode:
		fields := fieldsOf(t)
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			m[n.Content[i].Value] = toJSON(n.Content[i+1], fields[n.Content[i].Value])
		}
		return m
	case t.Kind() == reflect.Map && n.Kind == yaml3.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			m[n.Content[i].Value] = toJSON(n.Content[i+1], t.Elem())
		}
		return m
	case t.Kind() == reflect.Slice && n.Kind == yaml3.SequenceNode:
		l := make([]any, 0, len(n.Content))
		for _, e := range n.Content {
			l = append(l, toJSON(e, t.Elem()))
		}
		return l
	case t.Kind() == reflect.Int:
		v, _ := strconv.ParseInt(n.Value, 0, 64)
		return v
	case t.Kind() == reflect.Bool:
		v, _ := strconv.ParseBool(n.Value)
		return v
	}
	return n.Value
}
