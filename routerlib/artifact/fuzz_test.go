package artifact_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
)

// FuzzParse checks that Parse never panics, and that whatever Parse accepts
// and Validate passes has one canonical form: Marshal succeeds, and Parse and
// Marshal again give the same bytes.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		topo, err := artifact.Parse(data)
		if err != nil {
			return
		}
		if topo.Validate() != nil {
			return
		}
		first, err := artifact.Marshal(topo)
		if err != nil {
			t.Fatalf("Marshal of a valid topology: %v\ninput: %q", err, data)
		}
		again, err := artifact.Parse(first)
		if err != nil {
			t.Fatalf("Parse of Marshal output: %v\noutput:\n%s", err, first)
		}
		second, err := artifact.Marshal(again)
		if err != nil {
			t.Fatalf("Marshal after re-Parse: %v\noutput:\n%s", err, first)
		}
		if !bytes.Equal(first, second) {
			t.Fatalf("Marshal is not stable:\nfirst:\n%s\nsecond:\n%s", first, second)
		}
	})
}
