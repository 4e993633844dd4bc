package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// format is the value of every listing command's -o: text or json, checked
// when the flag is parsed, so that an unknown value is an error everywhere
// (never a silent text table).
type format string

const (
	formatText format = "text"
	formatJSON format = "json"
)

func (f *format) String() string { return string(*f) }
func (f *format) Type() string   { return "text|json" }
func (f *format) Set(s string) error {
	switch format(s) {
	case formatText, formatJSON:
		*f = format(s)
		return nil
	}
	return fmt.Errorf("want text or json")
}

// addOutput gives cmd the -o flag (default text).
func addOutput(cmd *cobra.Command) *format {
	f := formatText
	cmd.Flags().VarP(&f, "output", "o", "output format: text or json")
	return &f
}

// printJSON writes v as indented JSON, without HTML escaping (a plan's
// "->" stays readable).
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
