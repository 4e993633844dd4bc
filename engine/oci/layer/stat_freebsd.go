package layer

import "syscall"

func ctimeOf(st *syscall.Stat_t) int64 { return st.Ctimespec.Sec*1e9 + st.Ctimespec.Nsec }

// statFlags are the file's chflags(2) flags (st_flags), carried into pushed
// layers as SCHILY.fflags the way bsdtar writes them.
func statFlags(st *syscall.Stat_t) uint32 { return st.Flags }
