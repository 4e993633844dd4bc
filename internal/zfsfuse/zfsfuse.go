// Package zfsfuse is the zfs-fuse adapter: a tiny stand-in for the `zfs`
// command, put first on PATH on Linux test machines, that lets go-zfs v4 run
// unmodified against a zfs-fuse pool (ARCHITECTURE section 9).
//
// zfs-fuse (pool version 23) refuses `zfs list -p`, which go-zfs uses for every
// listing and after every mutation (GetDataset), and it lacks the properties
// `written`, `logicalused` and `logicalreferenced`. The adapter rewrites a
// parsable listing into two commands zfs-fuse accepts:
//
//	zfs list -H -o name [-r|-d N] [-t TYPE] [NAME...]   (which datasets)
//	zfs get -H -p -o name,property,value PROPS NAME...  (their exact values)
//
// and prints exactly what OpenZFS's `zfs list -Hp` would, with "-" for the
// properties zfs-fuse does not know. Every other invocation is passed through
// untouched. On OpenZFS (FreeBSD, or Linux with the kernel module) nothing
// uses this package.
package zfsfuse

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
)

// missingProps are properties OpenZFS has and zfs-fuse does not; the adapter
// reports them as "-", which is what OpenZFS prints for an unknown value and
// what go-zfs parses as zero.
var missingProps = map[string]bool{
	"written":           true,
	"logicalused":       true,
	"logicalreferenced": true,
	"refcompressratio":  true,
}

// aliases are the short column names zfs accepts, mapped to the names `zfs
// get` prints in its property column.
var aliases = map[string]string{
	"avail":     "available",
	"refer":     "referenced",
	"lused":     "logicalused",
	"lrefer":    "logicalreferenced",
	"reserv":    "reservation",
	"refreserv": "refreservation",
	"volblock":  "volblocksize",
	"recsize":   "recordsize",
	"compress":  "compression",
}

// defaultColumns are `zfs list`'s columns when no -o is given.
var defaultColumns = []string{"name", "used", "available", "referenced", "mountpoint"}

// Plan says what the adapter does with one invocation.
type Plan struct {
	// Passthrough means: run the real zfs with the arguments unchanged.
	Passthrough bool
	// ListArgs are the arguments of the real `zfs list` that names the datasets.
	ListArgs []string
	// Columns are the requested columns, canonical names, in output order.
	Columns []string
	// GetProps are the properties to ask `zfs get` for (Columns without name
	// and without the properties zfs-fuse lacks).
	GetProps []string
}

// Translate decides how to run `zfs ARGS`. Only `list` with -p (alone or in a
// flag group such as -rHp) is rewritten; everything else passes through.
func Translate(args []string) (Plan, error) {
	if len(args) == 0 || args[0] != "list" {
		return Plan{Passthrough: true}, nil
	}
	var (
		parsable, scripted bool
		columns            []string
		pass               []string // list flags kept for the names call
		names              []string
	)
	rest := args[1:]
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		if !strings.HasPrefix(a, "-") || a == "-" {
			names = append(names, rest[i:]...)
			break
		}
		if a == "--" {
			names = append(names, rest[i+1:]...)
			break
		}
		// A flag group: letters, the last of which may take a value.
		for j := 1; j < len(a); j++ {
			c := a[j]
			switch c {
			case 'p':
				parsable = true
			case 'H':
				scripted = true
			case 'r':
				pass = append(pass, "-r")
			case 'o', 't', 'd':
				val := a[j+1:]
				if val == "" {
					if i+1 >= len(rest) {
						return Plan{}, fmt.Errorf("zfs-fuse adapter: option -%c needs a value", c)
					}
					i++
					val = rest[i]
				}
				switch c {
				case 'o':
					columns = append(columns, strings.Split(val, ",")...)
				case 't':
					pass = append(pass, "-t", val)
				case 'd':
					pass = append(pass, "-d", val)
				}
				j = len(a) // the value consumed the rest of the group
			default:
				return Plan{}, fmt.Errorf("zfs-fuse adapter: list option -%c is not supported with -p", c)
			}
		}
	}
	if !parsable {
		return Plan{Passthrough: true}, nil
	}
	if !scripted {
		// Only scripts ask for exact numbers, and scripts use -H; supporting
		// the aligned human table as well is not worth the code.
		return Plan{}, errors.New("zfs-fuse adapter: list -p is only supported together with -H")
	}
	if len(columns) == 0 {
		columns = defaultColumns
	}
	p := Plan{ListArgs: append(append([]string{"list", "-H", "-o", "name"}, pass...), names...)}
	seen := map[string]bool{}
	for _, c := range columns {
		c = strings.TrimSpace(c)
		if full, ok := aliases[c]; ok {
			c = full
		}
		if c == "" {
			return Plan{}, errors.New("zfs-fuse adapter: empty column in -o")
		}
		p.Columns = append(p.Columns, c)
		if c == "name" || missingProps[c] || seen[c] {
			continue
		}
		seen[c] = true
		p.GetProps = append(p.GetProps, c)
	}
	return p, nil
}

// GetArgs returns the arguments of the `zfs get` that fetches the values of
// the named datasets, or nil when no property is needed.
func (p Plan) GetArgs(names []string) []string {
	if len(p.GetProps) == 0 || len(names) == 0 {
		return nil
	}
	args := []string{"get", "-H", "-p", "-o", "name,property,value", strings.Join(p.GetProps, ",")}
	return append(args, names...)
}

// ParseNames reads the output of the names call: one dataset per line.
func ParseNames(out []byte) []string {
	var names []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		if n := strings.TrimSpace(sc.Text()); n != "" {
			names = append(names, n)
		}
	}
	return names
}

// ParseGet reads `zfs get -H -o name,property,value` output into
// dataset -> property -> value.
func ParseGet(out []byte) (map[string]map[string]string, error) {
	vals := map[string]map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		f := strings.SplitN(line, "\t", 3)
		if len(f) != 3 {
			return nil, fmt.Errorf("zfs-fuse adapter: unexpected zfs get line %q", line)
		}
		if vals[f[0]] == nil {
			vals[f[0]] = map[string]string{}
		}
		vals[f[0]][f[1]] = f[2]
	}
	return vals, sc.Err()
}

// Render prints the rows `zfs list -Hp` would: one line per dataset in the
// order of names, tab-separated columns, "-" where a value is unknown.
func (p Plan) Render(names []string, vals map[string]map[string]string) string {
	var b strings.Builder
	for _, n := range names {
		for i, c := range p.Columns {
			if i > 0 {
				b.WriteByte('\t')
			}
			v, ok := vals[n][c]
			switch {
			case c == "name":
				v = n
			case !ok:
				v = "-"
			}
			b.WriteString(v)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// Run executes a rewritten listing with the real zfs binary and writes what
// OpenZFS would have printed; it returns the exit status to use. Passthrough
// plans are the caller's to exec (the command replaces the adapter process).
func Run(realZFS string, p Plan, stdout, stderr io.Writer) int {
	out, code := runZFS(realZFS, p.ListArgs, stderr)
	if code != 0 {
		return code
	}
	names := ParseNames(out)
	vals := map[string]map[string]string{}
	if args := p.GetArgs(names); args != nil {
		out, code = runZFS(realZFS, args, stderr)
		if code != 0 {
			return code
		}
		var err error
		if vals, err = ParseGet(out); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
	}
	if _, err := io.WriteString(stdout, p.Render(names, vals)); err != nil {
		return 1
	}
	return 0
}

// runZFS runs the real zfs, forwarding its stderr, and returns its stdout and
// exit status.
func runZFS(realZFS string, args []string, stderr io.Writer) ([]byte, int) {
	cmd := exec.Command(realZFS, args...)
	cmd.Stderr = stderr
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, ee.ExitCode()
		}
		fmt.Fprintf(stderr, "zfs-fuse adapter: run %s: %v\n", realZFS, err)
		return nil, 1
	}
	return out, 0
}
