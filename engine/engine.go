// Package engine is the actual state and the verbs the reconciler uses: it
// composes the ZFS store (engine/zfs), the jail driver (engine/jail) and the
// per-container supervisors (engine/supervisor) into what reconcile observes
// and acts through.
package engine
