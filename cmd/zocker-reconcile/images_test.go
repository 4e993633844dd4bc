package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/zocker-reconcile/zocker-reconcile/engine/zfs"
)

func TestImagesTable(t *testing.T) {
	id1, id2 := strings.Repeat("a", 64), strings.Repeat("b", 64)
	st := &zfs.State{
		Tags: map[string]string{"base": id1, "web": id2, "web-old": id2},
		Images: []zfs.Image{
			{ID: id1, Dataset: zfs.Dataset{Created: time.Unix(100, 0), Referenced: 2 << 20, Used: 2 << 20}},
			{ID: id2, Parent: id1, Dataset: zfs.Dataset{Created: time.Unix(200, 0), Referenced: 3 << 30, Used: 512}},
		},
		Foreign: []string{"tank/zocker/images/byhand", "tank/zocker/volumes/x"},
	}
	var out bytes.Buffer
	printImages(&out, imageRows(st))
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("output:\n%s", out.String())
	}
	for i, want := range [][]string{
		{"TAG", "IMAGE ID", "CREATED", "SIZE", "PARENT"},
		{"web,web-old", "bbbbbbbbbbbb", "3.0G (512B)", "aaaaaaaaaaaa"},
		{"base", "aaaaaaaaaaaa", "2.0M (2.0M)", "-"},
	} {
		for _, w := range want {
			if !strings.Contains(lines[i], w) {
				t.Errorf("line %d %q lacks %q", i, lines[i], w)
			}
		}
	}
	if got := foreignUnder(st, "tank/zocker/images/"); len(got) != 1 || got[0] != "tank/zocker/images/byhand" {
		t.Errorf("foreign images = %v", got)
	}
}
