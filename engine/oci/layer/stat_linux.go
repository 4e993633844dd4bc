package layer

import "syscall"

func ctimeOf(st *syscall.Stat_t) int64 { return st.Ctim.Sec*1e9 + st.Ctim.Nsec }

// statFlags: Linux has no BSD file flags.
func statFlags(st *syscall.Stat_t) uint32 { return 0 }
