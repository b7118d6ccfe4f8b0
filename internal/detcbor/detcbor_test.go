package detcbor

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func TestMarshalIsCoreDeterministic(t *testing.T) {
	// Keys sorted bytewise by encoding (10 < 256 < -1 as encoded: 0x0a, 0x19 0x0100, 0x20).
	got, err := Marshal(map[int]any{256: "b", -1: 1, 10: []byte{1}})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := hex.DecodeString("a30a4101190100616220" + "01")
	if !bytes.Equal(got, want) {
		t.Errorf("Marshal = %x, want %x", got, want)
	}
}

func TestUnmarshalStrict(t *testing.T) {
	tests := []struct {
		name string
		hex  string
		ok   bool
		want string
	}{
		{"map", "a10a01", true, ""},
		{"duplicate key", "a20a010a02", false, "duplicate"},
		{"indefinite map", "bf0a01ff", false, "indefinite"},
		{"indefinite bytes", "5f4101ff", false, "indefinite"},
		{"trailing data", "a10a0100", false, "trailing"},
		{"truncated", "a20a01", false, "EOF"},
		{"invalid utf-8", "a10a62c328", false, "UTF-8"},
	}
	for _, tt := range tests {
		b, _ := hex.DecodeString(tt.hex)
		var v map[int]any
		err := Unmarshal(b, &v, 0)
		if tt.ok != (err == nil) {
			t.Errorf("%s: err = %v", tt.name, err)
			continue
		}
		if err != nil && !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want it to mention %q", tt.name, err, tt.want)
		}
	}
}

func TestUnmarshalSizeLimit(t *testing.T) {
	b, _ := Marshal(bytes.Repeat([]byte{1}, 100))
	var v []byte
	if err := Unmarshal(b, &v, 50); !errors.Is(err, ErrTooLarge) {
		t.Errorf("over limit: %v", err)
	}
	if err := Unmarshal(b, &v, 200); err != nil || len(v) != 100 {
		t.Errorf("under limit: %v", err)
	}
	big, _ := Marshal(bytes.Repeat([]byte{1}, MaxSize))
	if err := Unmarshal(big, &v, 0); !errors.Is(err, ErrTooLarge) {
		t.Errorf("default limit: %v", err)
	}
}

func FuzzUnmarshal(f *testing.F) {
	for _, h := range []string{"a10a01", "a20a010a02", "bf0a01ff", "d28443a10126a0f640", "9f01ff"} {
		b, _ := hex.DecodeString(h)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var v any
		if err := Unmarshal(data, &v, 0); err != nil {
			return
		}
		// Whatever decodes strictly re-encodes and decodes to the same value.
		enc, err := Marshal(v)
		if err != nil {
			return // e.g. a map with keys that do not compare
		}
		var w any
		if err := Unmarshal(enc, &w, 1<<20); err != nil {
			t.Fatalf("re-encoding %x of accepted input %x does not decode: %v", enc, data, err)
		}
	})
}
