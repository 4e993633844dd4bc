package main

import "github.com/zocker-reconcile/zocker-reconcile/engine/jail/linuxns"

// helperWord is the first argument under which the Linux jail driver
// re-executes this binary as a jail's init.
const helperWord = linuxns.InitCommand

func helperMain(args []string) int { return linuxns.HelperMain(args) }
