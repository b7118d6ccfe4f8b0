package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ztmkit/ztm/attest/devicesim"
	"github.com/ztmkit/ztm/identity/keystore"
	"github.com/ztmkit/ztm/identity/keystore/mem"
	"github.com/ztmkit/ztm/manifest"
)

func sim(t testing.TB) *devicesim.Device {
	key, err := mem.New().Create(context.Background(), keystore.CreateRequest{Label: "ak"})
	if err != nil {
		t.Fatal(err)
	}
	d, err := devicesim.New(devicesim.Config{
		Key: key, KeyID: []byte("dev-1"),
		UEID: append([]byte{0x01}, make([]byte, 16)...), OEMID: []byte{0x00, 0x00, 0x5e}, HWModel: []byte("m1"),
		SWName: "fw", Images: map[string][]byte{"firmware": []byte("v1")},
	})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestInspect(t *testing.T) {
	d := sim(t)
	nonce := bytes.Repeat([]byte{7}, 32)
	cwt, err := d.EvidenceCWT(nonce)
	if err != nil {
		t.Fatal(err)
	}
	jwt, err := d.EvidenceJWT(nonce)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := mem.New().Create(context.Background(), keystore.CreateRequest{Label: "station"})
	step, err := manifest.SignStep(nil, &manifest.Step{Name: "final-test", Subject: []byte{1, 2, 3, 4, 5, 6, 7, 8},
		Time:      time.Unix(1772366400, 0),
		Artifacts: map[string]manifest.Digest{"log": manifest.Sum(manifest.SHA256, []byte("ok"))}}, key, manifest.SignOptions{Issuer: "oem"})
	if err != nil {
		t.Fatal(err)
	}
	chain, _ := manifest.Chain{step}.Marshal()
	for _, tc := range []struct {
		name string
		in   []byte
		want []string
	}{
		{"cwt", cwt, []string{"COSE_Sign1", "10 eat_nonce", "263 dbgstat", "10: h'0707070707", "protected   << {1: -7, 4: h'6465762d31'} >>"}},
		{"jwt", append(jwt, '\n'), []string{"JWT", `"eat_nonce": "BwcHBwcH`, `"alg": "ES256"`}},
		{"step", step.Raw, []string{"manifest step", "name       final-test", "artifact   log", "issuer     oem"}},
		{"chain", chain, []string{"manifest chain, 1 steps", "-- step 0", "final-test"}},
	} {
		var out bytes.Buffer
		if err := inspect(&out, tc.in); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		for _, w := range tc.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("%s: output lacks %q:\n%s", tc.name, w, out.String())
			}
		}
	}
	for _, bad := range [][]byte{{}, []byte("hello"), {0xa1}, []byte("eyJ.x.y"), append(bytes.Clone(cwt), 0)} {
		if err := inspect(&bytes.Buffer{}, bad); !errors.Is(err, errUnknown) {
			t.Errorf("%q: err = %v", bad, err)
		}
	}
}

// FuzzInspect checks that no input makes inspect panic, and that whatever
// it accepts it prints.
func FuzzInspect(f *testing.F) {
	d := sim(f)
	cwt, _ := d.EvidenceCWT(make([]byte, 32))
	jwt, _ := d.EvidenceJWT(make([]byte, 32))
	f.Add(cwt)
	f.Add(jwt)
	f.Add([]byte{0xd2, 0x84, 0x40, 0xa0, 0xf6, 0x40})
	f.Add([]byte("eyJhbGciOiJFUzI1NiJ9.e30.AA"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var out bytes.Buffer
		if err := inspect(&out, data); err == nil && out.Len() == 0 {
			t.Fatal("accepted input printed nothing")
		}
	})
}

// A binary item whose last byte reads as white space is not trimmed.
func TestInspectBinaryEndingInSpaceByte(t *testing.T) {
	for _, last := range []byte{'\t', '\n', '\v', '\f', '\r', ' '} {
		var out bytes.Buffer
		if err := inspect(&out, []byte{0x41, last}); err != nil {
			t.Fatalf("h'%02x': %v", last, err)
		}
	}
}
