package zfs

// OriginCLI is PropOrigin on a container dataset made by the ad-hoc commands
// (run, create): the reconciler never touches such a container. Declared
// containers carry zocker:manifest and no origin.
const OriginCLI = "cli"
