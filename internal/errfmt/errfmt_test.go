package errfmt

import (
	"errors"
	"io/fs"
	"testing"
)

func TestErrorf(t *testing.T) {
	inner := errors.New("tpm: read: EOF")
	err := Errorf("tpm: ", "tpm: sign %q: %w (after %v)", "k", inner, errors.New("tpm: x"))
	if got, want := err.Error(), `tpm: sign "k": read: EOF (after x)`; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(err, inner) {
		t.Fatal("the wrapped error is lost")
	}
	err = Errorf("tpm: ", "tpm: %w", fs.ErrNotExist)
	if !errors.Is(err, fs.ErrNotExist) || err.Error() != "tpm: file does not exist" {
		t.Fatalf("err = %v", err)
	}
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"no prefix", "no prefix"},
		{"a: b: a: c", "a: b: c"},
		{"x a: a: a: y", "x a: y"},
	} {
		if got := OnePrefix("a: ", tc.in); got != tc.want {
			t.Errorf("OnePrefix(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
