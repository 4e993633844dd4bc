package manifests

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// UnmarshalJSON reads a command: a list of strings is an argv, a string is a
// shell command line.
func (c *Command) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	*c = Command{}
	switch {
	case bytes.Equal(data, []byte("null")):
		return nil
	case len(data) > 0 && data[0] == '"':
		return json.Unmarshal(data, &c.Shell)
	case len(data) > 0 && data[0] == '[':
		argv := []string{}
		if err := json.Unmarshal(data, &argv); err != nil {
			return fmt.Errorf("command must be a list of strings or a string")
		}
		c.Argv = argv
		return nil
	}
	return fmt.Errorf("command must be a list of strings or a string")
}

// MarshalJSON writes the command back in the form it was given.
func (c Command) MarshalJSON() ([]byte, error) {
	switch {
	case c.Argv != nil:
		return json.Marshal(c.Argv)
	case c.Shell != "":
		return json.Marshal(c.Shell)
	}
	return []byte("null"), nil
}

// IsZero reports whether no command was given (the image's CMD applies).
func (c Command) IsZero() bool { return c.Argv == nil && c.Shell == "" }

// Args returns the argv to execute: Argv itself, or /bin/sh -c Shell.
func (c Command) Args() []string {
	if c.Argv != nil {
		return c.Argv
	}
	if c.Shell != "" {
		return []string{"/bin/sh", "-c", c.Shell}
	}
	return nil
}
