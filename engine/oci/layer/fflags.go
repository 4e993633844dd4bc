package layer

import (
	"fmt"
	"strings"
)

// paxFflags is the PAX record where bsdtar (and star) keep a file's FreeBSD
// file flags, as chflags(1) names them.
const paxFflags = "SCHILY.fflags"

// fileFlagBits are the flag names of FreeBSD's strtofflags(3)
// (lib/libc/gen/strtofflags.c) with the bits of <sys/stat.h>.
var fileFlagBits = map[string]uint32{
	"nodump": 0x00000001,                                                  // UF_NODUMP
	"uchg":   0x00000002, "uchange": 0x00000002, "uimmutable": 0x00000002, // UF_IMMUTABLE
	"uappnd": 0x00000004, "uappend": 0x00000004, // UF_APPEND
	"opaque": 0x00000008,                        // UF_OPAQUE
	"uunlnk": 0x00000010, "uunlink": 0x00000010, // UF_NOUNLINK
	"system": 0x00000080, "usystem": 0x00000080, // UF_SYSTEM
	"sparse": 0x00000100, "usparse": 0x00000100, // UF_SPARSE
	"offline": 0x00000200, "uoffline": 0x00000200, // UF_OFFLINE
	"reparse": 0x00000400, "ureparse": 0x00000400, // UF_REPARSE
	"uarch": 0x00000800, "uarchive": 0x00000800, // UF_ARCHIVE
	"rdonly": 0x00001000, "readonly": 0x00001000, "urdonly": 0x00001000, // UF_READONLY
	"hidden": 0x00008000, "uhidden": 0x00008000, // UF_HIDDEN
	"arch": 0x00010000, "archived": 0x00010000, // SF_ARCHIVED
	"schg": 0x00020000, "schange": 0x00020000, "simmutable": 0x00020000, // SF_IMMUTABLE
	"sappnd": 0x00040000, "sappend": 0x00040000, // SF_APPEND
	"sunlnk": 0x00100000, "sunlink": 0x00100000, // SF_NOUNLINK
	"snapshot": 0x00200000, // SF_SNAPSHOT
}

// parseFileFlags turns "schg,uarch" into flag bits. "dump" (and other
// "no"-forms, which clear a flag) set nothing. Unknown names are an error
// naming them; the bits of the known ones are still returned.
func parseFileFlags(s string) (uint32, error) {
	var bits uint32
	var unknown []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
		if b, ok := fileFlagBits[f]; ok {
			bits |= b
			continue
		}
		if f == "dump" {
			continue
		}
		if _, ok := fileFlagBits[strings.TrimPrefix(f, "no")]; ok && strings.HasPrefix(f, "no") {
			continue
		}
		unknown = append(unknown, f)
	}
	if len(unknown) > 0 {
		return bits, fmt.Errorf("unknown file flags %s", strings.Join(unknown, ","))
	}
	return bits, nil
}

// fileFlagNames are the names fflagstostr(3) prints, one per bit, in its order.
var fileFlagNames = []struct {
	name string
	bit  uint32
}{
	{"sappnd", 0x00040000}, {"arch", 0x00010000}, {"schg", 0x00020000}, {"sunlnk", 0x00100000},
	{"snapshot", 0x00200000}, {"uappnd", 0x00000004}, {"uarch", 0x00000800}, {"uchg", 0x00000002},
	{"hidden", 0x00008000}, {"nodump", 0x00000001}, {"opaque", 0x00000008}, {"offline", 0x00000200},
	{"rdonly", 0x00001000}, {"reparse", 0x00000400}, {"sparse", 0x00000100}, {"system", 0x00000080},
	{"uunlnk", 0x00000010},
}

// formatFileFlags is the reverse of parseFileFlags, for the layers Diff makes.
func formatFileFlags(bits uint32) string {
	var names []string
	for _, f := range fileFlagNames {
		if bits&f.bit != 0 {
			names = append(names, f.name)
		}
	}
	return strings.Join(names, ",")
}
