//go:build !linux

package main

import (
	"fmt"
	"os"
)

// helperWord: no driver re-executes this binary outside Linux.
const helperWord = "__jail-init"

func helperMain([]string) int {
	fmt.Fprintln(os.Stderr, "zocker-supervise: no jail helper on this system")
	return 2
}
