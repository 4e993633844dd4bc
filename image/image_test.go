package image

import (
	"strings"
	"testing"
)

func TestValidName(t *testing.T) {
	for _, ok := range []string{"a", "web", "web-1", "0a", strings.Repeat("a", 63)} {
		if err := ValidName("container", ok); err != nil {
			t.Errorf("ValidName(%q): %v", ok, err)
		}
	}
	for bad, want := range map[string]string{
		"":                      `tag name is empty`,
		strings.Repeat("a", 64): `is 64 characters long, the limit is 63`,
		"Web":                   `invalid tag name "Web": use lower-case letters`,
		"-web":                  `invalid tag name`,
		"web-":                  `invalid tag name`,
		"a/b":                   `invalid tag name`,
		"a.b":                   `invalid tag name`,
		"../x":                  `invalid tag name`,
		"3":                     `tag name "3" is invalid: it needs at least one letter`,
	} {
		if err := ValidName("tag", bad); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ValidName(%q) = %v, want an error containing %q", bad, err, want)
		}
	}
	if err := ValidName("", "A"); err == nil || !strings.HasPrefix(err.Error(), `name "A" is invalid`) {
		t.Errorf("plain name: %v", err)
	}
}

func TestValidID(t *testing.T) {
	if err := ValidID(strings.Repeat("0", 64)); err != nil {
		t.Error(err)
	}
	for _, bad := range []string{"", "abc", strings.Repeat("A", 64), strings.Repeat("0", 65), "sha256:" + strings.Repeat("0", 64), strings.Repeat("0", 63) + "/"} {
		if ValidID(bad) == nil {
			t.Errorf("ValidID(%q): want an error", bad)
		}
	}
}

func TestShort(t *testing.T) {
	id := "0123456789abcdef" + strings.Repeat("0", 48)
	for in, want := range map[string]string{
		id:                   "0123456789ab",
		"sha256:" + id:       "0123456789ab",
		"build:deadbeef0123": "build:deadbe",
		"abc":                "abc",
		"":                   "none",
	} {
		if got := Short(in); got != want {
			t.Errorf("Short(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSize(t *testing.T) {
	for n, want := range map[int64]string{0: "0B", 1023: "1023B", 1024: "1.0K", 1536 << 20: "1.5G", 10 << 30: "10.0G", 12900000: "12.3M"} {
		if got := Size(n); got != want {
			t.Errorf("Size(%d) = %s, want %s", n, got, want)
		}
	}
	if got := Size(uint64(3) << 30); got != "3.0G" {
		t.Errorf("Size(uint64 3G) = %s", got)
	}
	if got := Size(int64(-5)); got != "0B" {
		t.Errorf("Size(-5) = %s, want 0B", got)
	}
}

func TestEditDistance(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"command", "command", 0}, {"comand", "command", 1}, {"commadn", "command", 1},
		{"intreval", "interval", 1}, {"xyz", "command", 7}, {"", "abc", 3}, {"status", "spec", 5},
	} {
		if got := EditDistance(c.a, c.b); got != c.want {
			t.Errorf("EditDistance(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}

func TestEditDistanceRoots(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{{"zroot/zocker", "zroot/zockr", 1}, {"", "abc", 3}, {"tank", "tank", 0}, {"kitten", "sitting", 3}} {
		if got := EditDistance(tc.a, tc.b); got != tc.want {
			t.Errorf("EditDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}
