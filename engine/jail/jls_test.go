package jail

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestJLSParseSamples(t *testing.T) {
	cases := []struct {
		file string
		want []Info
	}{
		{"jls-two.json", []Info{
			{Name: "web", JID: 3, Path: "/zroot/zocker/containers/web", Hostname: "web.example.org",
				Addrs: []string{"192.168.0.241", "192.168.0.242", "2001:db8::241"}},
			{Name: "db", JID: 7, Path: "/zroot/zocker/containers/db", Hostname: "db"},
		}},
		{"jls-empty.json", []Info{}},
		{"jls-dying.json", []Info{
			{Name: "new", JID: 9, Path: "/zroot/zocker/containers/old", Hostname: "new", Addrs: []string{"127.0.1.4"}},
		}},
		{"jls-noinet6.json", []Info{
			{Name: "web", JID: 12, Path: "/zroot/zocker/containers/web", Hostname: "web", Addrs: []string{"127.0.1.2"}},
		}},
		{"jls-leafobjects.json", []Info{
			{Name: "mail", JID: 12, Path: "/zroot/zocker/containers/mail", Hostname: "mail",
				Addrs: []string{"10.0.0.5", "10.0.0.6", "fd00::5"}},
		}},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", c.file))
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParseJLS(data)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("got  %+v\nwant %+v", got, c.want)
			}
		})
	}
}

func TestJLSParseEdgeCases(t *testing.T) {
	// A jail without a name is known by its jid; a jid given as a string is
	// accepted; the parameter-named lists of non-verbose output are read.
	got, err := ParseJLS([]byte(`{"jail-information": {"jail": [{"jid": "4", "path": "/j", "ip4.addr": ["10.1.1.1"]}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := []Info{{Name: "4", JID: 4, Path: "/j", Addrs: []string{"10.1.1.1"}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v want %+v", got, want)
	}

	for in, msg := range map[string]string{
		"": "empty",
		"jls: jail_get: Operation not permitted\n":                        "invalid character",
		`{"__version": "2"}`:                                              `no "jail-information" container`,
		`{"jail-information": {"jail": [{"name": "x"}]}}`:                 "no jid",
		`{"jail-information": {"jail": [{"jid": 1.5}]}}`:                  "jid 1.5",
		`{"jail-information": {"jail": [{"jid": 1, "ipv4_addrs": [3]}]}}`: "want a string or an object",
	} {
		if _, err := ParseJLS([]byte(in)); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%q: got %v, want error containing %q", in, err, msg)
		}
	}
	if got, want := JLSArgv(), []string{"/usr/sbin/jls", "--libxo", "json", "-v"}; !reflect.DeepEqual(got, want) {
		t.Errorf("argv %q", got)
	}
}
