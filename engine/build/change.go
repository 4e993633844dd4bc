package build

import (
	"fmt"
	"strings"

	"github.com/zocker-reconcile/zocker-reconcile/engine/zfs"
)

// changeKeywords are the instructions commit --change accepts: the ones that
// only set config (Docker's --change set).
var changeKeywords = []string{Cmd, Entrypoint, Env, User, Workdir, Label, Volume, Expose}

// ApplyChanges applies Zockerfile instructions given as commit --change
// values ("CMD [\"httpd\"]", "ENV K=V") to cfg, with a Zockerfile's rules
// (shell-form CMD runs by /bin/sh -c, $VAR expands from the ENV so far).
// Instructions that touch files or the build (RUN, COPY, FROM, ARG, NET)
// are refused; errors name the change by its position.
func ApplyChanges(cfg zfs.Config, changes []string) (zfs.Config, error) {
	b := &builder{cfg: cloneConfig(cfg), parent: cfg.Parent}
	for i, c := range changes {
		if strings.ContainsAny(c, "\n\r") {
			return cfg, fmt.Errorf("--change %d: one instruction per --change, on one line", i+1)
		}
		f, err := Parse(fmt.Sprintf("--change %d", i+1), strings.NewReader("FROM scratch\n"+c+"\n"))
		if err != nil {
			return cfg, err
		}
		if len(f.Instructions) != 2 {
			return cfg, fmt.Errorf("--change %d: want one instruction, e.g. 'CMD [\"/bin/sh\"]' or 'ENV KEY=VALUE'", i+1)
		}
		in := f.Instructions[1]
		if !contains(changeKeywords, in.Keyword) {
			return cfg, fmt.Errorf("--change %d: %s is not allowed: want one of %s", i+1, in.Keyword, strings.Join(changeKeywords, ", "))
		}
		s, err := b.prepare(in)
		if err != nil {
			return cfg, fmt.Errorf("--change %d: %w", i+1, err)
		}
		b.cfg = s.cfg
		if s.after != nil {
			s.after()
		}
	}
	return b.cfg, nil
}
