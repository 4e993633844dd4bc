package build

import (
	"reflect"
	"strings"
	"testing"

	"github.com/zocker-reconcile/zocker-reconcile/engine/zfs"
)

func TestApplyChanges(t *testing.T) {
	base := zfs.Config{Cmd: []string{"/bin/sh"}, Env: map[string]string{"PATH": "/bin", "A": "1"}, Parent: "p"}
	got, err := ApplyChanges(base, []string{`CMD ["httpd", "-D", "FOREGROUND"]`, "ENV A=2 B=$A", "USER www", "WORKDIR /srv", "EXPOSE 80"})
	if err != nil {
		t.Fatal(err)
	}
	want := zfs.Config{Cmd: []string{"httpd", "-D", "FOREGROUND"}, Env: map[string]string{"PATH": "/bin", "A": "2", "B": "1"},
		User: "www", Workdir: "/srv", ExposedPorts: []string{"80"}, Parent: "p"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	if base.Env["A"] != "1" {
		t.Errorf("the base config was changed")
	}
	shell, err := ApplyChanges(base, []string{"CMD echo hi"})
	if err != nil || !reflect.DeepEqual(shell.Cmd, []string{"/bin/sh", "-c", "echo hi"}) {
		t.Errorf("shell form: %v %v", shell.Cmd, err)
	}
	for change, msg := range map[string]string{
		"RUN rm -rf /": "RUN is not allowed",
		"COPY a /a":    "COPY is not allowed",
		"FROM other":   "FROM may appear only once",
		"CMD a\nRUN b": "one instruction per --change",
		"BOGUS x":      "--change 1",
		"ENV":          "--change 1",
	} {
		_, err := ApplyChanges(base, []string{change})
		if err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%q: error %v, want %q", change, err, msg)
		}
	}
}
