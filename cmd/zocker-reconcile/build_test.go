package main

import (
	"reflect"
	"testing"
)

func TestParseBuildArgs(t *testing.T) {
	t.Setenv("ZOCKER_TEST_FROM_ENV", "from-env")
	got, err := parseBuildArgs([]string{"A=1", "B=", "C=x=y", "ZOCKER_TEST_FROM_ENV", "ZOCKER_TEST_UNSET_XYZ"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"A": "1", "B": "", "C": "x=y", "ZOCKER_TEST_FROM_ENV": "from-env"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if _, err := parseBuildArgs([]string{"=v"}); err == nil {
		t.Error("an empty name was accepted")
	}
}

func TestBuildNeedsTag(t *testing.T) {
	if code := run([]string{"build", "."}); code != 1 {
		t.Errorf("build without -t exited %d, want 1", code)
	}
}
