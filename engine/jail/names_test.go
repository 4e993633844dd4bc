package jail

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

// TestNameCheckersMatchPatterns: the hand-written checkers accept exactly
// what their patterns (kept for the error messages) accept.
func TestNameCheckersMatchPatterns(t *testing.T) {
	for _, tc := range []struct {
		pattern string
		check   func(string) bool
	}{
		{jailNamePattern, matchesJailName},
		{ifacePattern, validIface},
		{hostnamePattern, validHostname},
	} {
		re := regexp.MustCompile(tc.pattern)
		inputs := []string{"", "a", "A", "0", "-", ".", "_", "a-", "a.", "a_", "-a", ".a", "web", "web-1", "Web.example.com",
			"em0", "lo1", "vlan10", "a.b", "a..b", "a--b", "web_1", "x\n", "\x00", "é",
			strings.Repeat("a", 15), strings.Repeat("a", 16), strings.Repeat("a", 63), strings.Repeat("a", 64),
			strings.Repeat("a", 255), strings.Repeat("a", 256), "a" + strings.Repeat(".", 253) + "a", "a" + strings.Repeat(".", 254) + "a"}
		r := rand.New(rand.NewPCG(1, 2))
		const alphabet = "aZ09-._/ \n"
		for range 20000 {
			b := make([]byte, r.IntN(20))
			for i := range b {
				b[i] = alphabet[r.IntN(len(alphabet))]
			}
			inputs = append(inputs, string(b))
		}
		for _, in := range inputs {
			if got, want := tc.check(in), re.MatchString(in); got != want {
				t.Errorf("%s: %q: checker says %v, the pattern %v", tc.pattern, in, got, want)
			}
		}
	}
}
