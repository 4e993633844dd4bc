// Package build parses Zockerfiles and builds images from them, one ZFS
// snapshot per step, with a content-addressed step cache. It is over the
// house's 1,500 lines; the parser (parse.go, Expand) is the part that could
// become its own package, engine/build/zockerfile.
package build

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"regexp"
	"strconv"
	"strings"
	"unicode"
)

// Instruction keywords. Zocker's own are FROM, RUN, COPY, USER, ENV, CMD,
// VOLUME and NET; the others are what a Dockerfile user expects.
const (
	From       = "FROM"
	Run        = "RUN"
	Copy       = "COPY"
	User       = "USER"
	Env        = "ENV"
	Cmd        = "CMD"
	Volume     = "VOLUME"
	Net        = "NET"
	Workdir    = "WORKDIR"
	Arg        = "ARG"
	Label      = "LABEL"
	Expose     = "EXPOSE"
	Entrypoint = "ENTRYPOINT"
)

// maxLine bounds one logical line (continuations joined) so that a hostile
// file cannot make the parser hold unbounded memory in one token.
const maxLine = 1 << 20

// Instruction is one parsed Zockerfile instruction.
type Instruction struct {
	// Line is the line number where the instruction starts (1-based).
	Line int
	// Keyword is the upper-case instruction name.
	Keyword string
	// Args are the arguments: for exec form (a JSON array) its elements; for
	// RUN, CMD and ENTRYPOINT in shell form a single element, the command
	// line; for ENV and LABEL alternating keys and values; otherwise the
	// whitespace-separated words.
	Args []string
	// Exec is true when the arguments were written as a JSON array.
	Exec bool
	// Chown is COPY's --chown=USER[:GROUP] value.
	Chown string
	// Original is the instruction's text with continuations joined, used in
	// progress output and, normalized, in the step's cache key.
	Original string
}

// File is a parsed Zockerfile.
type File struct {
	// Name is what errors call the file (usually its base name).
	Name         string
	Instructions []Instruction
}

// Error is a parse error at a line of a Zockerfile.
type Error struct {
	File string
	Line int
	Msg  string
}

func (e *Error) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

var (
	envName   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	labelName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/-]*$`)
)

// NetModes are the values NET accepts: the network of the RUN steps after it.
var NetModes = []string{"none", "inherit", "loopback"}

// Parse reads a Zockerfile. Errors name the file and the line.
func Parse(name string, r io.Reader) (*File, error) {
	f := &File{Name: name}
	lines, err := logicalLines(name, r)
	if err != nil {
		return nil, err
	}
	seenFrom := false
	for _, l := range lines {
		in, err := parseInstruction(l.text)
		if err != nil {
			return nil, &Error{File: name, Line: l.number, Msg: err.Error()}
		}
		in.Line = l.number
		switch {
		case in.Keyword == From && seenFrom:
			return nil, &Error{File: name, Line: l.number, Msg: "FROM may appear only once (multi-stage builds are not supported)"}
		case in.Keyword == From:
			seenFrom = true
		case !seenFrom && in.Keyword != Arg:
			return nil, &Error{File: name, Line: l.number, Msg: fmt.Sprintf("%s before FROM: a Zockerfile starts with FROM (only ARG may precede it)", in.Keyword)}
		}
		f.Instructions = append(f.Instructions, in)
	}
	if !seenFrom {
		return nil, &Error{File: name, Line: 1, Msg: "no FROM instruction"}
	}
	return f, nil
}

type logicalLine struct {
	number int
	text   string
}

// logicalLines strips comments and blank lines and joins continuation lines
// (a trailing backslash), remembering where each instruction started.
func logicalLines(name string, r io.Reader) ([]logicalLine, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), maxLine)
	var out []logicalLine
	var cur strings.Builder
	start, n := 0, 0
	for sc.Scan() {
		n++
		line := strings.TrimRight(sc.Text(), "\r")
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") {
			continue // comments, also inside a continued instruction, as Docker does
		}
		if cur.Len() == 0 && trimmed == "" {
			continue
		}
		if cur.Len() == 0 {
			start = n
		}
		if strings.HasSuffix(trimmed, `\`) {
			cur.WriteString(strings.TrimSuffix(trimmed, `\`))
			cur.WriteByte(' ')
			if cur.Len() > maxLine {
				return nil, &Error{File: name, Line: start, Msg: "instruction too long"}
			}
			continue
		}
		cur.WriteString(trimmed)
		out = append(out, logicalLine{number: start, text: strings.TrimSpace(cur.String())})
		cur.Reset()
	}
	if err := sc.Err(); err != nil {
		return nil, &Error{File: name, Line: n + 1, Msg: fmt.Sprintf("read: %v", err)}
	}
	if cur.Len() > 0 {
		return nil, &Error{File: name, Line: start, Msg: "the last instruction ends with a line continuation (\\) and nothing follows"}
	}
	return out, nil
}

func parseInstruction(text string) (Instruction, error) {
	kw, rest := text, ""
	if i := strings.IndexFunc(text, unicode.IsSpace); i >= 0 {
		kw, rest = text[:i], strings.TrimSpace(text[i:])
	}
	in := Instruction{Keyword: strings.ToUpper(kw), Original: strings.ToUpper(kw) + " " + rest}
	in.Original = strings.TrimSpace(in.Original)
	if rest == "" {
		return in, fmt.Errorf("%s needs an argument", in.Keyword)
	}
	var err error
	switch in.Keyword {
	case From:
		in.Args, err = words(rest, 1, 1, "FROM takes one image: a tag, an image ID or scratch")
	case Run, Cmd, Entrypoint:
		in.Args, in.Exec, err = commandArgs(in.Keyword, rest)
	case Copy:
		err = parseCopy(&in, rest)
	case User:
		in.Args, err = words(rest, 1, 1, "USER takes one user: NAME, UID, NAME:GROUP or UID:GID")
		if err == nil && strings.Count(in.Args[0], ":") > 1 {
			err = fmt.Errorf("USER %q: want NAME[:GROUP]", in.Args[0])
		}
	case Env, Label:
		in.Args, err = keyValues(in.Keyword, rest)
	case Volume:
		in.Args, in.Exec, err = listArgs(rest)
		for _, v := range in.Args {
			if err == nil && !path.IsAbs(v) {
				err = fmt.Errorf("VOLUME %q: the path must be absolute", v)
			}
		}
	case Net:
		in.Args, err = words(rest, 1, 1, "NET takes one network mode: none, inherit or loopback")
		if err == nil && !contains(NetModes, in.Args[0]) {
			err = fmt.Errorf("NET %q: want none, inherit or loopback", in.Args[0])
		}
	case Workdir:
		in.Args = []string{rest}
	case Arg:
		in.Args, err = words(rest, 1, 1, "ARG takes one NAME or NAME=DEFAULT")
		if err == nil {
			name, _, _ := strings.Cut(in.Args[0], "=")
			if !envName.MatchString(name) {
				err = fmt.Errorf("ARG %q: a name is letters, digits and _, not starting with a digit", name)
			}
		}
	case Expose:
		in.Args, err = words(rest, 1, -1, "EXPOSE takes ports: 80, 53/udp")
		for _, p := range in.Args {
			if err == nil {
				err = checkPort(p)
			}
		}
	default:
		return in, fmt.Errorf("unknown instruction %s", in.Keyword)
	}
	return in, err
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// words splits on white space and checks the count (max < 0: no limit).
func words(rest string, min, max int, usage string) ([]string, error) {
	f := strings.Fields(rest)
	if len(f) < min || (max >= 0 && len(f) > max) {
		return nil, fmt.Errorf("%s", usage)
	}
	return f, nil
}

// commandArgs parses RUN, CMD and ENTRYPOINT: a JSON array (exec form) or a
// command line run by /bin/sh -c (shell form).
func commandArgs(kw, rest string) ([]string, bool, error) {
	if strings.HasPrefix(rest, "[") {
		var argv []string
		if err := json.Unmarshal([]byte(rest), &argv); err != nil {
			return nil, false, fmt.Errorf("%s: the exec form must be a JSON array of strings: %v", kw, err)
		}
		if len(argv) == 0 {
			return nil, false, fmt.Errorf("%s: the exec form needs at least one element", kw)
		}
		return argv, true, nil
	}
	return []string{rest}, false, nil
}

// listArgs parses VOLUME's JSON array or whitespace-separated list.
func listArgs(rest string) ([]string, bool, error) {
	if strings.HasPrefix(rest, "[") {
		var list []string
		if err := json.Unmarshal([]byte(rest), &list); err != nil {
			return nil, false, fmt.Errorf("the list must be a JSON array of strings: %v", err)
		}
		if len(list) == 0 {
			return nil, false, fmt.Errorf("the list is empty")
		}
		return list, true, nil
	}
	return strings.Fields(rest), false, nil
}

func parseCopy(in *Instruction, rest string) error {
	for strings.HasPrefix(rest, "--") {
		flag, after, _ := strings.Cut(rest, " ")
		rest = strings.TrimSpace(after)
		name, value, ok := strings.Cut(flag, "=")
		if name != "--chown" || !ok || value == "" {
			return fmt.Errorf("COPY: unknown option %s (only --chown=USER[:GROUP])", flag)
		}
		in.Chown = value
	}
	var err error
	in.Args, in.Exec, err = listArgs(rest)
	if err != nil {
		return fmt.Errorf("COPY: %v", err)
	}
	if len(in.Args) < 2 {
		return fmt.Errorf("COPY needs a source and a destination")
	}
	return nil
}

// keyValues parses ENV and LABEL: `K=V K2="v 2"` or the legacy `K value words`.
func keyValues(kw, rest string) ([]string, error) {
	toks, err := shellWords(rest)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", kw, err)
	}
	valid := envName
	if kw == Label {
		valid = labelName
	}
	if !strings.Contains(toks[0], "=") {
		// Legacy form: the first word is the key, the rest of the line the value.
		key := toks[0]
		if !valid.MatchString(key) {
			return nil, fmt.Errorf("%s: invalid name %q", kw, key)
		}
		if len(toks) < 2 {
			return nil, fmt.Errorf("%s %s needs a value (%s %s=VALUE or %s %s VALUE)", kw, key, kw, key, kw, key)
		}
		_, value, _ := strings.Cut(strings.TrimSpace(rest), key)
		v, err := shellWords(strings.TrimSpace(value))
		if err != nil {
			return nil, fmt.Errorf("%s: %v", kw, err)
		}
		return []string{key, strings.Join(v, " ")}, nil
	}
	var kv []string
	for _, t := range toks {
		k, v, ok := strings.Cut(t, "=")
		if !ok {
			return nil, fmt.Errorf("%s: %q is not KEY=VALUE", kw, t)
		}
		if !valid.MatchString(k) {
			return nil, fmt.Errorf("%s: invalid name %q", kw, k)
		}
		kv = append(kv, k, v)
	}
	return kv, nil
}

// shellWords splits like a POSIX shell without expansion: white space
// separates words, single quotes are literal, double quotes and backslashes
// escape.
func shellWords(s string) ([]string, error) {
	var out []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, fmt.Errorf("unterminated single quote")
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`", s[i+1]) >= 0 {
					i++
				}
				cur.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, fmt.Errorf("unterminated double quote")
			}
			inWord = true
		case c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			inWord = true
		case c == ' ' || c == '\t':
			if inWord {
				out = append(out, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		out = append(out, cur.String())
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("missing arguments")
	}
	return out, nil
}

func checkPort(p string) error {
	num, proto, hasProto := strings.Cut(p, "/")
	if hasProto && proto != "tcp" && proto != "udp" && proto != "sctp" {
		return fmt.Errorf("EXPOSE %q: the protocol is tcp, udp or sctp", p)
	}
	n, err := strconv.Atoi(num)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("EXPOSE %q: a port is a number from 1 to 65535", p)
	}
	return nil
}

// Expand substitutes $NAME and ${NAME} (and ${NAME:-default}) from lookup,
// as Dockerfiles do for ARG and ENV values in COPY, ENV, WORKDIR, USER,
// VOLUME, EXPOSE and LABEL. An unknown name expands to the empty string;
// `\$` is a literal dollar.
func Expand(s string, lookup func(string) (string, bool)) string {
	if !strings.ContainsAny(s, `$\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\\' && i+1 < len(s) && s[i+1] == '$' {
			b.WriteByte('$')
			i++
			continue
		}
		if c != '$' || i+1 >= len(s) {
			b.WriteByte(c)
			continue
		}
		if s[i+1] == '{' {
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				b.WriteString(s[i:])
				break
			}
			expr := s[i+2 : i+2+end]
			name, def, hasDef := strings.Cut(expr, ":-")
			v, ok := lookup(name)
			if (!ok || v == "") && hasDef {
				v = def
			}
			b.WriteString(v)
			i += 2 + end
			continue
		}
		j := i + 1
		for j < len(s) && (s[j] == '_' || unicode.IsLetter(rune(s[j])) || (j > i+1 && unicode.IsDigit(rune(s[j])))) {
			j++
		}
		if j == i+1 {
			b.WriteByte(c)
			continue
		}
		v, _ := lookup(s[i+1 : j])
		b.WriteString(v)
		i = j - 1
	}
	return b.String()
}
