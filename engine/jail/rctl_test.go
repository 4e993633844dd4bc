package jail

import (
	"reflect"
	"strings"
	"testing"
)

func TestRctlRules(t *testing.T) {
	cases := []struct {
		l    Limits
		want []string
	}{
		{Limits{}, nil},
		{Limits{MemoryBytes: 536870912, CPUPercent: 50, MaxProcesses: 256}, []string{
			"jail:web:memoryuse:deny=536870912",
			"jail:web:pcpu:deny=50",
			"jail:web:maxproc:deny=256",
		}},
		{Limits{MaxProcesses: 10}, []string{"jail:web:maxproc:deny=10"}},
	}
	for _, c := range cases {
		if got := RctlRules("web", c.l); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%+v: got %q want %q", c.l, got, c.want)
		}
	}
}

func TestRctlArgv(t *testing.T) {
	rules := RctlRules("web", Limits{MemoryBytes: 1 << 20, CPUPercent: 5})
	if got, want := RctlAddArgv(rules), []string{"/usr/bin/rctl", "-a", "jail:web:memoryuse:deny=1048576", "jail:web:pcpu:deny=5"}; !reflect.DeepEqual(got, want) {
		t.Errorf("add: %q", got)
	}
	if got, want := RctlRemoveArgv("web"), []string{"/usr/bin/rctl", "-r", "jail:web"}; !reflect.DeepEqual(got, want) {
		t.Errorf("remove: %q", got)
	}
	if got, want := RctlUsageArgv("web"), []string{"/usr/bin/rctl", "-u", "jail:web"}; !reflect.DeepEqual(got, want) {
		t.Errorf("usage: %q", got)
	}
	if got, want := RacctArgv(), []string{"/sbin/sysctl", "-n", "kern.racct.enable"}; !reflect.DeepEqual(got, want) {
		t.Errorf("racct: %q", got)
	}
}

// rctlUsageSample is `rctl -u jail:NAME` output as rctl(8) prints it: the
// kernel's comma-separated resource=amount list, one pair per line. Written
// from rctl(8) and usr.bin/rctl/rctl.c, not captured from a machine.
const rctlUsageSample = `cputime=12
datasize=4521984
stacksize=0
coredumpsize=0
memoryuse=23453696
memorylocked=0
maxproc=3
openfiles=96
vmemoryuse=134025216
pseudoterminals=0
swapuse=0
nthr=3
msgqqueued=0
msgqsize=0
nmsgq=0
nsem=0
nsemop=0
nshm=0
shmsize=0
wallclock=3650
pcpu=7
readbps=0
writebps=0
readiops=0
writeiops=0
`

func TestRctlUsageParse(t *testing.T) {
	u, err := ParseRctlUsage([]byte(rctlUsageSample))
	if err != nil {
		t.Fatal(err)
	}
	if u.MemoryBytes != 23453696 || u.CPUPercent != 7 {
		t.Errorf("got memory %d cpu %d", u.MemoryBytes, u.CPUPercent)
	}
	if u.Resources["maxproc"] != 3 || len(u.Resources) != 25 {
		t.Errorf("resources: %v", u.Resources)
	}
	for _, bad := range []string{"memoryuse\n", "memoryuse=12M\n", "=3\n"} {
		if _, err := ParseRctlUsage([]byte(bad)); err == nil || !strings.Contains(err.Error(), "parse rctl usage line") {
			t.Errorf("%q: got %v", bad, err)
		}
	}
}

func TestRctlRacctParse(t *testing.T) {
	for in, want := range map[string]bool{"1\n": true, "0\n": false} {
		got, err := ParseRacct([]byte(in))
		if err != nil || got != want {
			t.Errorf("%q: got %v, %v", in, got, err)
		}
	}
	if _, err := ParseRacct([]byte("")); err == nil {
		t.Error("empty output accepted")
	}
}
