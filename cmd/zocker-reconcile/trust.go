package main

import (
	"github.com/spf13/cobra"

	"github.com/zocker-reconcile/zocker-reconcile/engine"
	"github.com/zocker-reconcile/zocker-reconcile/engine/sign"
)

// trustFlags are the signature policy flags of the commands that receive
// images (serve, plan, apply, status, pull).
type trustFlags struct {
	allowedSigners string
	revokedKeys    string
}

func (t *trustFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&t.allowedSigners, "allowed-signers", envOr("ZOCKER_ALLOWED_SIGNERS", ""),
		"OpenSSH allowed_signers file: pulled tags and images must be signed (namespace zocker-image) by a key it lists, or nothing is received (env ZOCKER_ALLOWED_SIGNERS)")
	fl.StringVar(&t.revokedKeys, "revoked-keys", envOr("ZOCKER_REVOKED_KEYS", ""),
		"public keys, one per line, whose signatures are refused even when allowed (env ZOCKER_REVOKED_KEYS)")
}

func (t *trustFlags) files() sign.Files {
	return sign.Files{AllowedSigners: t.allowedSigners, RevokedKeys: t.revokedKeys}
}

func (t *trustFlags) policy() engine.PullPolicy { return engine.PullPolicy{Files: t.files()} }
