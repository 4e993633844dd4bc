package zfs

// PropOrigin records how an object came to be. On a container dataset it is
// OriginCLI for the ad-hoc containers of run and create; declared containers
// carry zocker:manifest instead and no origin. On an image dataset it names
// its source (import, build, pull, commit, load, oci).
const PropOrigin = "zocker:origin"

// Values of PropOrigin.
const (
	// OriginCLI marks a container made by run or create: the reconciler
	// never touches it.
	OriginCLI = "cli"
	// OriginCommit marks an image made by commit from a container.
	OriginCommit = "commit"
	// OriginLoad marks an image received from an archive by load.
	OriginLoad = "load"
)
