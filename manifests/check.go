package manifests

// CheckContainer defaults and validates a Container built from command-line
// flags (the run and create commands) with the same rules as a declared one;
// source names it in the problems ("run"), and relative host paths (./dir)
// resolve against dir. Cross-object checks (dependsOn, declared images) do
// not apply.
func CheckContainer(source, dir string, c *Container) []Problem {
	c.APIVersion, c.Kind = APIVersion, KindContainer
	Default(c, dir)
	fd := &fileDecoder{file: source, dir: dir}
	doc := &Document{Kind: KindContainer, Name: c.Metadata.Name, Object: c}
	(&validator{doc: doc, fd: fd}).container(c)
	return fd.problems
}
