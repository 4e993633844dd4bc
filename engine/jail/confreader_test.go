package jail

// A jail.conf reader for the tests: it reads a file the way jail(8) does, so
// that every generated file can be parsed back into the parameters it was
// meant to set, and so that the renderer can be checked against jail(8)'s
// own rules rather than against itself. It was written from
// usr.sbin/jail/jaillex.l (tokens, quoting, backslash escapes, variables),
// jailparse.y (the grammar) and config.c (load_config: the block name
// implies name= or jid=, variable substitution; add_param: "=" replaces,
// "+=" appends, names compared with equalopts; check_intparams: boolean and
// integer values, mount.fstab lines) and jail.conf(5).
//
// Not covered, because nothing here generates them: wildcard jail names
// ("*", "foo.*"), nested jail blocks and .include (FreeBSD 14+); the reader
// refuses them rather than guessing.

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/zocker-reconcile/zocker-reconcile/manifests/jailparam"
)

// confToken kinds, after jaillex.l: STR/STR1 (a string, STR1 when it
// continues the previous one with no blank between), VAR/VAR1 likewise,
// PLEQ ("+="), and the one-character tokens , ; = { }.
type confTokKind int

const (
	tokStr confTokKind = iota
	tokVar
	tokPunct
	tokPleq
)

type confTok struct {
	kind confTokKind
	text string // decoded string, variable name, or the punctuation
	cont bool   // STR1/VAR1: glued to the previous string
	line int
	// vars are variables embedded in a double-quoted string, at offsets
	// into text (jaillex.l switches to its DQ state for them).
	vars []confVar
}

type confVar struct {
	name string
	pos  int
}

// readerOptions: Strict also refuses backslash escapes outside the C set
// jail.conf(5) documents (\a \b \f \n \r \t \v, octal, \x, and escaping a
// quote, backslash or newline). jail(8) itself (text2lval) takes an unknown
// escape as the character after the backslash; Strict catches a generator
// that writes an escape meaning something else to it.
type readerOptions struct{ Strict bool }

// atomChar is jaillex.l's unquoted-string class.
func atomChar(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' ||
		strings.IndexByte("_!%&()-.:<>?@[]^`|~", c) >= 0
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isOctal(c byte) bool  { return c >= '0' && c <= '7' }
func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// unescape decodes backslash escapes as text2lval does. stopAtVar (double
// quotes) records $name and ${name} at their offsets instead of copying
// them.
func unescape(s string, stopAtVar bool, opts readerOptions, line int) (string, []confVar, error) {
	var b strings.Builder
	var vars []confVar
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '$' && stopAtVar && (i+1 < len(s) && (s[i+1] == '{' || s[i+1] == '_' || isLetter(s[i+1]))) {
			name, n, err := varAt(s[i:], line)
			if err != nil {
				return "", nil, err
			}
			vars = append(vars, confVar{name: name, pos: b.Len()})
			i += n - 1
			continue
		}
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		i++
		if i >= len(s) {
			return "", nil, fmt.Errorf("line %d: backslash at the end of a string", line)
		}
		c = s[i]
		switch {
		case isOctal(c):
			v := int(c - '0')
			for k := 0; k < 2 && i+1 < len(s) && isOctal(s[i+1]); k++ {
				i++
				v = v*8 + int(s[i]-'0')
			}
			b.WriteByte(byte(v))
		case c == 'x':
			v := 0
			for k := 0; k < 2 && i+1 < len(s) && isHex(s[i+1]); k++ {
				i++
				d, _ := strconv.ParseUint(s[i:i+1], 16, 8)
				v = v*16 + int(d)
			}
			b.WriteByte(byte(v))
		case c == '\n': // a line continuation: nothing
		default:
			if e, ok := map[byte]byte{'a': '\a', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t', 'v': '\v'}[c]; ok {
				b.WriteByte(e)
				continue
			}
			if opts.Strict && !strings.ContainsRune(`'"\$ `, rune(c)) {
				return "", nil, fmt.Errorf("line %d: unknown escape \\%c", line, c)
			}
			b.WriteByte(c)
		}
	}
	return b.String(), vars, nil
}

// varAt reads $name or ${name} at the start of s; it returns the name and
// the length read.
func varAt(s string, line int) (string, int, error) {
	if strings.HasPrefix(s, "${") {
		end := strings.IndexByte(s, '}')
		if end < 0 || strings.ContainsAny(s[2:end], "\n{\"") {
			return "", 0, fmt.Errorf("line %d: unterminated variable", line)
		}
		return s[2:end], end + 1, nil
	}
	n := 1
	for n < len(s) && (s[n] == '_' || s[n] >= 'A' && s[n] <= 'Z' || s[n] >= 'a' && s[n] <= 'z' || n > 1 && s[n] >= '0' && s[n] <= '9') {
		n++
	}
	if n == 1 {
		return "", 0, fmt.Errorf("line %d: '$' without a variable name", line)
	}
	return s[1:n], n, nil
}

// lexConf splits a jail.conf into tokens.
func lexConf(src string, opts readerOptions) ([]confTok, error) {
	var toks []confTok
	line := 1
	instr := false // jaillex.l's instr: the next string token continues this one
	emit := func(t confTok) {
		t.cont = instr && (t.kind == tokStr || t.kind == tokVar)
		t.line = line
		toks = append(toks, t)
		instr = t.kind == tokStr || t.kind == tokVar
	}
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			if c == '\n' {
				line++
			}
			i++
			instr = false
		case c == '#' || strings.HasPrefix(src[i:], "//"):
			for i < len(src) && src[i] != '\n' {
				i++
			}
			instr = false
		case strings.HasPrefix(src[i:], "/*"):
			end := strings.Index(src[i+2:], "*/")
			if end < 0 {
				return nil, fmt.Errorf("line %d: unterminated comment", line)
			}
			line += strings.Count(src[i:i+2+end+2], "\n")
			i += 2 + end + 2
			instr = false
		case strings.HasPrefix(src[i:], "+="):
			instr = false
			emit(confTok{kind: tokPleq, text: "+="})
			instr = false
			i += 2
		case strings.IndexByte(",;={}", c) >= 0:
			instr = false
			emit(confTok{kind: tokPunct, text: string(c)})
			instr = false
			i++
		case c == '\'' || c == '"':
			// A quoted string runs to the matching unescaped quote, across
			// lines; without one it is "unterminated string".
			j := i + 1
			for j < len(src) && src[j] != c {
				if src[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(src) {
				return nil, fmt.Errorf("line %d: unterminated string", line)
			}
			text, vars, err := unescape(src[i+1:j], c == '"', opts, line)
			if err != nil {
				return nil, err
			}
			emit(confTok{kind: tokStr, text: text, vars: vars})
			line += strings.Count(src[i:j], "\n")
			i = j + 1
		case c == '$' && i+1 < len(src) && (src[i+1] == '{' || src[i+1] == '_' || isLetter(src[i+1])):
			name, n, err := varAt(src[i:], line)
			if err != nil {
				return nil, err
			}
			emit(confTok{kind: tokVar, text: name})
			i += n
		case atomChar(c) || c == '\\' || strings.IndexByte("$*+/", c) >= 0:
			// An atom, a backslash escape, or one of $*+/\ alone.
			j := i
			if atomChar(c) {
				for j < len(src) && atomChar(src[j]) {
					j++
				}
			} else if c == '\\' {
				j = i + 2
				if j > len(src) {
					return nil, fmt.Errorf("line %d: backslash at the end of the file", line)
				}
				if isOctal(src[i+1]) {
					for j < len(src) && j < i+4 && isOctal(src[j]) {
						j++
					}
				} else if src[i+1] == 'x' {
					for j < len(src) && j < i+4 && isHex(src[j]) {
						j++
					}
				}
			} else {
				j = i + 1
			}
			text, _, err := unescape(src[i:j], false, opts, line)
			if err != nil {
				return nil, err
			}
			line += strings.Count(src[i:j], "\n")
			emit(confTok{kind: tokStr, text: text})
			i = j
		default:
			return nil, fmt.Errorf("line %d: syntax error at %q", line, c)
		}
	}
	return toks, nil
}

// confParam is one parameter of a jail after add_param: its last spelling
// and its values (nil for a valueless statement).
type confParam struct {
	name   string
	values []string
	isVar  bool
}

// confValue is a string being assembled from pieces, with the variables to
// substitute in it.
type confValue struct {
	s    string
	vars []confVar
}

type rawParam struct {
	name   string
	isVar  bool
	append bool
	values []confValue
	line   int
	// jailsBefore counts the jail blocks before a global statement.
	jailsBefore int
}

type rawJail struct {
	name   string
	params []rawParam
}

// parseConf follows jailparse.y: a series of jail blocks and global
// parameters, each statement ended by ';'.
func parseConf(toks []confTok) (globals []rawParam, jails []rawJail, err error) {
	pos := 0
	peek := func() *confTok {
		if pos < len(toks) {
			return &toks[pos]
		}
		return nil
	}
	punct := func(p string) bool {
		t := peek()
		return t != nil && t.kind == tokPunct && t.text == p
	}
	lastLine := func() int {
		if pos < len(toks) {
			return toks[pos].line
		}
		if len(toks) > 0 {
			return toks[len(toks)-1].line
		}
		return 1
	}
	syntax := func() error { return fmt.Errorf("line %d: syntax error", lastLine()) }

	// str reads one string: STR or VAR, then any glued STR1/VAR1.
	str := func() (confValue, bool) {
		t := peek()
		if t == nil || (t.kind != tokStr && t.kind != tokVar) || t.cont {
			return confValue{}, false
		}
		var v confValue
		for first := true; ; first = false {
			t := peek()
			if t == nil || (t.kind != tokStr && t.kind != tokVar) || (!first && !t.cont) {
				return v, true
			}
			if t.kind == tokVar {
				v.vars = append(v.vars, confVar{name: t.text, pos: len(v.s)})
			} else {
				for _, tv := range t.vars {
					v.vars = append(v.vars, confVar{name: tv.name, pos: len(v.s) + tv.pos})
				}
				v.s += t.text
			}
			pos++
		}
	}
	param := func() (rawParam, error) {
		t := peek()
		if t == nil || (t.kind != tokStr && t.kind != tokVar) || t.cont {
			return rawParam{}, syntax()
		}
		p := rawParam{name: t.text, isVar: t.kind == tokVar, line: t.line}
		pos++
		if n := peek(); n != nil && n.cont {
			return rawParam{}, syntax() // a name is a single token
		}
		switch {
		case punct(";"):
			return p, nil
		case peek() == nil || punct("}"):
			return rawParam{}, fmt.Errorf("line %d: syntax error: missing ';' after %s", lastLine(), p.name)
		case punct("="):
			pos++
		case peek() != nil && peek().kind == tokPleq:
			p.append = true
			pos++
		}
		for {
			v, ok := str()
			if !ok {
				return rawParam{}, syntax()
			}
			p.values = append(p.values, v)
			if !punct(",") {
				break
			}
			pos++
		}
		if !punct(";") {
			return rawParam{}, fmt.Errorf("line %d: syntax error: missing ';' after %s", lastLine(), p.name)
		}
		return p, nil
	}
	for pos < len(toks) {
		switch {
		case punct(";"):
			pos++
		case pos+1 < len(toks) && toks[pos].kind == tokStr && !toks[pos].cont &&
			toks[pos+1].kind == tokPunct && toks[pos+1].text == "{":
			j := rawJail{name: toks[pos].text}
			if strings.Contains(j.name, "*") {
				return nil, nil, fmt.Errorf("line %d: wildcard jail %q: not supported by this reader", toks[pos].line, j.name)
			}
			pos += 2
			for !punct("}") {
				if peek() == nil {
					return nil, nil, fmt.Errorf("line %d: syntax error: missing '}'", lastLine())
				}
				if punct(";") {
					pos++
					continue
				}
				if pos+1 < len(toks) && toks[pos+1].kind == tokPunct && toks[pos+1].text == "{" {
					return nil, nil, fmt.Errorf("line %d: nested jail blocks: not supported by this reader", toks[pos].line)
				}
				p, err := param()
				if err != nil {
					return nil, nil, err
				}
				pos++ // ';'
				j.params = append(j.params, p)
			}
			pos++
			jails = append(jails, j)
		default:
			p, err := param()
			if err != nil {
				return nil, nil, err
			}
			pos++
			p.jailsBefore = len(jails)
			globals = append(globals, p)
		}
	}
	return globals, jails, nil
}

// equalOpts is config.c equalopts: the same name, or the same but for a
// "no" at the start of one dot-separated component.
func equalOpts(a, b string) bool {
	for _, x := range jailparam.Aliases(a) {
		for _, y := range jailparam.Aliases(b) {
			if x == y {
				return true
			}
		}
	}
	return false
}

// readConf reads src as `jail -f FILE -c NAME` would and returns NAME's
// parameters in order (variables substituted and removed), or the error
// jail(8) would stop with.
func readConf(src, name string, opts readerOptions) ([]confParam, error) {
	toks, err := lexConf(src, opts)
	if err != nil {
		return nil, err
	}
	globals, jails, err := parseConf(toks)
	if err != nil {
		return nil, err
	}
	var j *rawJail
	jIndex := 0
	for i := range jails {
		if jails[i].name == name {
			j, jIndex = &jails[i], i
		}
	}
	if j == nil {
		return nil, fmt.Errorf("jail %q not found in the file", name)
	}
	// The block name implies name= (or jid= when it is a non-zero number).
	implied := "name"
	if n, err := strconv.ParseInt(name, 10, 64); err == nil && n != 0 {
		implied = "jid"
	}
	type param struct {
		name   string
		isVar  bool
		values []confValue
		line   int
	}
	var ps []*param
	add := func(r rawParam) error {
		for _, p := range ps {
			if !equalOpts(p.name, r.name) {
				continue
			}
			if p.isVar != r.isVar {
				return fmt.Errorf("line %d: variable %q cannot have the same name as a parameter", r.line, r.name)
			}
			if p.name == "name" || p.name == "jid" {
				return fmt.Errorf("line %d: cannot redefine parameter %q", r.line, p.name)
			}
			p.name = r.name
			if !r.append || len(r.values) == 0 {
				p.values = nil
			}
			p.values = append(p.values, r.values...)
			return nil
		}
		ps = append(ps, &param{name: r.name, isVar: r.isVar, values: r.values, line: r.line})
		return nil
	}
	ps = append(ps, &param{name: implied, values: []confValue{{s: name}}})
	// load_config: global statements form "*" pseudo-jails; those written
	// before the block apply before its own parameters, those after it
	// apply after them (and so override them).
	var order []rawParam
	for _, r := range globals {
		if r.jailsBefore <= jIndex {
			order = append(order, r)
		}
	}
	order = append(order, j.params...)
	for _, r := range globals {
		if r.jailsBefore > jIndex {
			order = append(order, r)
		}
	}
	for _, r := range order {
		if err := add(r); err != nil {
			return nil, err
		}
	}
	// Substitute variables: a reference names a parameter or variable of
	// the jail (strcmp, not equalopts); an array only stands alone.
	var resolve func(p *param, depth int) error
	resolve = func(p *param, depth int) error {
		if depth > len(ps) {
			return fmt.Errorf("%s: variable loop", p.name)
		}
		for vi := range p.values {
			v := &p.values[vi]
			for len(v.vars) > 0 {
				ref := v.vars[0]
				var src *param
				for _, q := range ps {
					if q.name == ref.name {
						src = q
					}
				}
				if src == nil || len(src.values) == 0 {
					return fmt.Errorf("%s: variable %q not found", p.name, ref.name)
				}
				if err := resolve(src, depth+1); err != nil {
					return err
				}
				if len(src.values) > 1 && (v.s != "" || len(v.vars) > 1) {
					return fmt.Errorf("%s: array cannot be substituted inline", p.name)
				}
				ins := src.values[0].s
				v.s = v.s[:ref.pos] + ins + v.s[ref.pos:]
				rest := v.vars[1:]
				for k := range rest {
					rest[k].pos += len(ins)
				}
				v.vars = rest
				if len(src.values) > 1 {
					for _, extra := range src.values[1:] {
						p.values = append(p.values, confValue{s: extra.s})
					}
				}
			}
		}
		return nil
	}
	var out []confParam
	for _, p := range ps {
		if err := resolve(p, 0); err != nil {
			return nil, err
		}
	}
	for _, p := range ps {
		if p.isVar {
			continue
		}
		cp := confParam{name: p.name}
		for _, v := range p.values {
			cp.values = append(cp.values, v.s)
		}
		if err := checkConfParam(cp); err != nil {
			return nil, fmt.Errorf("line %d: %w", p.line, err)
		}
		out = append(out, cp)
	}
	return out, nil
}

// checkConfParam refuses what jail(8) (check_intparams, for its own
// parameters) or libjail (jailparam_init and jailparam_import, for the
// kernel's) refuses: unknown names, a "no" form of a non-boolean, and
// boolean or integer values that do not parse.
func checkConfParam(p confParam) error {
	var param jailparam.Param
	found := false
	for _, a := range jailparam.Aliases(p.name) {
		if q, ok := jailparam.Lookup(a); ok && (a == p.name || q.TakesNo()) {
			param, found = q, true
			break
		}
	}
	if !found {
		return fmt.Errorf("unknown parameter: %s", p.name)
	}
	if len(p.values) == 0 {
		if param.TakesNo() || param.Type == jailparam.Internal {
			return nil
		}
		return fmt.Errorf("%s: a %s needs a value", p.name, param.Type)
	}
	last := p.values[len(p.values)-1]
	switch {
	case param.TakesNo():
		if strings.EqualFold(last, "true") || strings.EqualFold(last, "false") {
			return nil
		}
		if _, err := strconv.ParseInt(last, 10, 64); err != nil {
			return fmt.Errorf("%s: unknown boolean value %q", p.name, last)
		}
	case param.Type == jailparam.Int:
		if _, err := strconv.ParseInt(last, 10, 64); err != nil {
			return fmt.Errorf("%s: non-integer value %q", p.name, last)
		}
	case param.Type == jailparam.JailSys:
		switch last {
		case "disable", "new", "inherit":
		default:
			return fmt.Errorf("%s: unknown value %q", p.name, last)
		}
	}
	return nil
}

// readFstabLines reads a mount.fstab file as jail(8) does: each line cut at
// '#' (check_intparams), blank lines skipped, fields split on blanks and the
// first two decoded with strunvis (command.c run_command).
func readFstabLines(src string) ([][4]string, error) {
	var out [][4]string
	for n, ln := range strings.Split(src, "\n") {
		if i := strings.IndexByte(ln, '#'); i >= 0 {
			ln = ln[:i]
		}
		f := strings.FieldsFunc(ln, func(r rune) bool { return r == ' ' || r == '\t' })
		if len(f) == 0 {
			continue
		}
		if len(f) < 4 {
			return nil, fmt.Errorf("fstab line %d: missing information", n+1)
		}
		var rec [4]string
		for i := 0; i < 4; i++ {
			rec[i] = f[i]
			if i < 2 {
				s, err := strunvis(f[i])
				if err != nil {
					return nil, fmt.Errorf("fstab line %d: %w", n+1, err)
				}
				rec[i] = s
			}
		}
		out = append(out, rec)
	}
	return out, nil
}

// strunvis decodes the vis(3) escapes a path may carry: \ooo octal and
// \\ (the only ones fstabEscape can produce, plus the backslash).
func strunvis(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		switch {
		case i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]):
			v, _ := strconv.ParseUint(s[i+1:i+4], 8, 8)
			b.WriteByte(byte(v))
			i += 3
		case i+1 < len(s) && s[i+1] == '\\':
			b.WriteByte('\\')
			i++
		default:
			return "", fmt.Errorf("bad vis escape in %q", s)
		}
	}
	return b.String(), nil
}

// confMap flattens params into "name=v1,v2" / "name" strings for
// comparison in tests.
func confMap(ps []confParam) []string {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		if p.values == nil {
			out = append(out, p.name)
			continue
		}
		out = append(out, p.name+"="+strings.Join(p.values, ","))
	}
	return out
}
