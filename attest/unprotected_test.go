package attest_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"
	"github.com/veraison/go-cose"

	"github.com/ztmkit/ztm/attest"
	"github.com/ztmkit/ztm/attest/devicesim"
	"github.com/ztmkit/ztm/identity/keystore"
)

// TestUnprotectedHeaderRefused: evidence and results whose unprotected
// header carries anything but a kid (a hint the signature confirms) are
// refused, and the error names the label; a COSE_Sign1 missing an item
// says so.
func TestUnprotectedHeaderRefused(t *testing.T) {
	t.Parallel()
	prot := mustCBOR(t, map[int64]any{1: -7, 4: []byte("raw")})
	for _, tc := range []struct {
		name   string
		unprot map[any]any
		label  string
	}{
		{"private label", map[any]any{int64(-70000): "x"}, "-70000"},
		{"x5chain", map[any]any{int64(33): []byte{1}}, "33 (x5chain)"},
		{"crit", map[any]any{int64(2): []int64{-70000}}, "2 (crit)"},
		{"CWT claims", map[any]any{int64(15): map[int64]any{1: "x"}}, "15"},
		{"text label", map[any]any{"note": 1}, `"note"`},
		{"kid and a private label", map[any]any{int64(4): []byte("raw"), int64(-70001): 1}, "-70001"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envOpts{tweak: withRawKey})
			ev := craftCWT(t, prot, mustCBOR(t, tc.unprot), claimsCBOR(t, goodClaims(t, e)))
			_, err := e.ver.Verify(context.Background(), ev)
			if !errors.Is(err, attest.ErrMalformed) || !strings.Contains(err.Error(), "unprotected header label "+tc.label+" not allowed") {
				t.Fatalf("got %v", err)
			}
		})
	}
	// A kid alone may be unprotected, as RFC 8392's own example has it.
	e := newEnv(t, envOpts{tweak: withRawKey})
	ev := craftCWT(t, mustCBOR(t, map[int64]any{1: -7}), mustCBOR(t, map[int64]any{4: []byte("raw")}), claimsCBOR(t, goodClaims(t, e)))
	if _, err := e.ver.Verify(context.Background(), ev); err != nil {
		t.Fatalf("unprotected kid: %v", err)
	}

	// Three items instead of four.
	var items []cbor.RawMessage
	if err := cbor.Unmarshal(ev[1:], &items); err != nil {
		t.Fatal(err)
	}
	short := append([]byte{0xd2}, mustCBOR(t, append(items[:1:1], items[2:]...))...)
	_, err := e.ver.Verify(context.Background(), short)
	if !errors.Is(err, attest.ErrMalformed) || !strings.Contains(err.Error(), "not an array of 4 items") {
		t.Fatalf("three items: %v", err)
	}

	// An EAR CWT the same.
	vkey := newKey(t, keystore.ES256)
	r := verifiedResult(t, devicesim.Tamper{})
	tok, err := r.SignCWT(nil, vkey, nil)
	if err != nil {
		t.Fatal(err)
	}
	var m cose.Sign1Message
	if err := m.UnmarshalCBOR(tok); err != nil {
		t.Fatal(err)
	}
	m.Headers.RawUnprotected = nil
	m.Headers.Unprotected = cose.UnprotectedHeader{int64(-70000): "x"}
	tok2, err := m.MarshalCBOR()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := attest.ParseResult(tok2, vkey.Public(), nil); !errors.Is(err, attest.ErrMalformed) || !strings.Contains(err.Error(), "-70000") {
		t.Fatalf("EAR: %v", err)
	}
}
