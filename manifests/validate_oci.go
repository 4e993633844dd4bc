package manifests

import (
	"regexp"
	"strings"
)

var (
	// ociRefRegexp is REGISTRY/REPO:TAG or REGISTRY/REPO@sha256:DIGEST with
	// an explicit registry host (a name with a dot or a port, or localhost):
	// no implicit Docker Hub, no implicit :latest.
	ociRefRegexp   = regexp.MustCompile(`^(localhost|[a-zA-Z0-9-]+(\.[a-zA-Z0-9-]+)+|[a-zA-Z0-9.-]+:[0-9]+|\[[0-9a-fA-F:]+\](:[0-9]+)?)(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)+(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[0-9a-f]{64})$`)
	platformRegexp = regexp.MustCompile(`^[a-z0-9_.-]+/[a-z0-9_.-]+(/[a-z0-9_.-]+)?$`)
)

// oci checks an Image's oci source.
func (v *validator) oci(o *OCISource) {
	switch {
	case o.Ref != "" && o.Archive != "":
		v.errf("spec.oci", "give ref or archive, not both")
	case o.Ref == "" && o.Archive == "":
		v.errf("spec.oci", "ref or archive is required")
	case o.Ref != "":
		if !ociRefRegexp.MatchString(o.Ref) {
			v.errf("spec.oci.ref", "ref %q must be REGISTRY/REPO:TAG or REGISTRY/REPO@sha256:DIGEST (with the registry's host name)", o.Ref)
		}
		if o.SHA256 != "" {
			v.errf("spec.oci.sha256", "sha256 is the digest of an archive file; for a registry use ref REGISTRY/REPO@sha256:DIGEST")
		}
		if o.Name != "" {
			v.errf("spec.oci.name", "name picks an image of an archive; a registry ref names one already")
		}
	default:
		v.check("spec.oci.archive", plainText("archive", o.Archive, false))
		if o.Insecure {
			v.errf("spec.oci.insecure", "insecure is for a registry ref, not an archive")
		}
	}
	if o.SHA256 != "" && !sha256Regexp.MatchString(o.SHA256) {
		v.errf("spec.oci.sha256", "sha256 %q must be 64 hexadecimal digits", o.SHA256)
	}
	if o.Name != "" {
		v.check("spec.oci.name", plainText("name", o.Name, false))
	}
	if o.Platform != "" && !platformRegexp.MatchString(o.Platform) {
		v.errf("spec.oci.platform", "platform %q must be OS/ARCH or OS/ARCH/VARIANT, e.g. %s", o.Platform, strings.Join([]string{"freebsd/amd64", "linux/arm64/v8"}, " or "))
	}
}

// OCIRefIsDigest says whether an oci ref names its manifest by digest.
func OCIRefIsDigest(ref string) bool { return strings.Contains(ref, "@sha256:") }
