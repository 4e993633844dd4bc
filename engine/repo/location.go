package repo

import (
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// Location is a parsed repository URL: ssh://[user@]host[:port]/path or
// file:///path.
type Location struct {
	// Scheme is "ssh" or "file".
	Scheme string
	// User, Host and Port are set for ssh ("" / 0 when not given: the ssh
	// client's configuration then decides).
	User string
	Host string
	Port int
	// Path is the repository directory: absolute, or relative to the SSH
	// account's home directory when the URL path starts with /~/.
	Path string
}

var (
	// hostRe admits DNS names, IPv4 and bracket-less IPv6 literals, and
	// ssh_config aliases; never a leading dash, which ssh would read as an option.
	hostRe = regexp.MustCompile(`^[A-Za-z0-9_:][A-Za-z0-9_.:-]*$`)
	userRe = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`)
)

// ParseLocation parses and checks a repository URL. A path with a ".."
// element, a host or user that could be read as an ssh option, and any
// query or fragment are refused.
func ParseLocation(raw string) (Location, error) {
	if raw == "" {
		return Location{}, fmt.Errorf("repository location is empty: give --repository or set ZOCKER_REPOSITORY")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return Location{}, fmt.Errorf("repository location %q: %w", raw, err)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return Location{}, fmt.Errorf("repository location %q: a query, fragment or opaque part is not allowed", raw)
	}
	p := u.Path
	for _, el := range strings.Split(p, "/") {
		if el == ".." {
			return Location{}, fmt.Errorf("repository location %q: a path with \"..\" is refused", raw)
		}
	}
	if strings.ContainsRune(p, 0) {
		return Location{}, fmt.Errorf("repository location %q: NUL in path", raw)
	}
	switch u.Scheme {
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return Location{}, fmt.Errorf("repository location %q: file URLs name a local path: file:///path", raw)
		}
		if u.User != nil {
			return Location{}, fmt.Errorf("repository location %q: a file URL has no user", raw)
		}
		if !strings.HasPrefix(p, "/") || strings.Trim(p, "/") == "" {
			return Location{}, fmt.Errorf("repository location %q: want an absolute directory other than /: file:///path", raw)
		}
		return Location{Scheme: "file", Path: cleanPath(p)}, nil
	case "ssh":
		loc := Location{Scheme: "ssh", Host: u.Hostname()}
		if !hostRe.MatchString(loc.Host) {
			return Location{}, fmt.Errorf("repository location %q: invalid host %q", raw, loc.Host)
		}
		if u.User != nil {
			if _, has := u.User.Password(); has {
				return Location{}, fmt.Errorf("repository location %q: passwords in the URL are not accepted: use keys or an agent", raw)
			}
			loc.User = u.User.Username()
			if !userRe.MatchString(loc.User) {
				return Location{}, fmt.Errorf("repository location %q: invalid user %q", raw, loc.User)
			}
		}
		if ps := u.Port(); ps != "" {
			n, err := strconv.Atoi(ps)
			if err != nil || n < 1 || n > 65535 {
				return Location{}, fmt.Errorf("repository location %q: invalid port %q", raw, ps)
			}
			loc.Port = n
		}
		switch {
		case strings.HasPrefix(p, "/~/"):
			loc.Path = cleanPath(strings.TrimPrefix(p, "/~/"))
			if loc.Path == "" || loc.Path == "." {
				return Location{}, fmt.Errorf("repository location %q: want a directory below the home directory", raw)
			}
		case strings.HasPrefix(p, "/") && strings.Trim(p, "/") != "":
			loc.Path = cleanPath(p)
		default:
			return Location{}, fmt.Errorf("repository location %q: want a directory: ssh://[user@]host[:port]/path", raw)
		}
		return loc, nil
	case "":
		return Location{}, fmt.Errorf("repository location %q: want ssh://[user@]host[:port]/path or file:///path", raw)
	}
	return Location{}, fmt.Errorf("repository location %q: unsupported scheme %q: want ssh or file", raw, u.Scheme)
}

// cleanPath collapses repeated and trailing slashes; ".." was refused before.
func cleanPath(p string) string {
	abs := strings.HasPrefix(p, "/")
	var parts []string
	for _, el := range strings.Split(p, "/") {
		if el != "" && el != "." {
			parts = append(parts, el)
		}
	}
	s := strings.Join(parts, "/")
	if abs {
		return "/" + s
	}
	return s
}

// String renders the location back as a URL.
func (l Location) String() string {
	if l.Scheme == "file" {
		return "file://" + l.Path
	}
	var b strings.Builder
	b.WriteString("ssh://")
	if l.User != "" {
		b.WriteString(l.User + "@")
	}
	if strings.Contains(l.Host, ":") {
		b.WriteString("[" + l.Host + "]")
	} else {
		b.WriteString(l.Host)
	}
	if l.Port != 0 {
		b.WriteString(":" + strconv.Itoa(l.Port))
	}
	if strings.HasPrefix(l.Path, "/") {
		b.WriteString(l.Path)
	} else {
		b.WriteString("/~/" + l.Path)
	}
	return b.String()
}

// sshArgv builds the ssh command that opens the SFTP subsystem: argv only,
// the host last after "--", no remote command line built from names.
func (l Location) sshArgv(sshCommand []string) []string {
	argv := append([]string(nil), sshCommand...)
	if len(argv) == 0 {
		argv = []string{"ssh"}
	}
	argv = append(argv, "-s")
	if l.Port != 0 {
		argv = append(argv, "-p", strconv.Itoa(l.Port))
	}
	if l.User != "" {
		argv = append(argv, "-l", l.User)
	}
	return append(argv, "--", l.Host, "sftp")
}
