package ca_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/ca/ledger/ledgertest"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// goldenRecords are fixed records whose canonical encodings and chain
// hashes are kept in testdata/ledger-chain.txt, so that any other ledger
// implementation can check its encoding byte for byte.
func goldenRecords() []*ca.Record {
	serial, _ := new(big.Int).SetString("8f3a5c2e91d04b7a6e1f2d3c4b5a6978", 16)
	return []*ca.Record{
		{
			Seq: 1, Kind: ca.KindIssuance, Serial: serial,
			Subject:        "SERIALNUMBER=PID-0042",
			PublicKeyHash:  bytes.Repeat([]byte{0xab}, 32),
			Profile:        "idevid",
			Requester:      "station-3",
			EvidenceDigest: bytes.Repeat([]byte{0x01}, 32),
			Time:           time.Date(2026, 11, 25, 8, 0, 0, 123456789, time.UTC),
			Certificate:    []byte{0x30, 0x03, 0x02, 0x01, 0x01},
		},
		{
			Seq: 2, Kind: ca.KindRevocation, Serial: serial,
			Requester: "security-team",
			Time:      time.Date(2026, 11, 26, 9, 30, 0, 0, time.UTC),
			Reason:    ca.ReasonKeyCompromise,
		},
		{
			Seq: 3, Kind: ca.KindIssuance, Serial: big.NewInt(0x0102030405),
			Subject:         "SERIALNUMBER=PID-0043",
			PublicKeyHash:   bytes.Repeat([]byte{0xcd}, 32),
			Profile:         "idevid",
			Requester:       "station:" + strings.Repeat("ef", 32),
			IdempotencyKey:  []byte("request-7"),
			RequesterSerial: big.NewInt(0x0a0b),
			Time:            time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC),
			Certificate:     []byte{0x30, 0x03, 0x02, 0x01, 0x02},
		},
		{
			// A device's IDevID whose key its TPM certified (keys 15 and
			// 16); the records above, made without them, keep their
			// encodings and hashes.
			Seq: 4, Kind: ca.KindIssuance, Serial: big.NewInt(0x0607),
			Subject:       "SERIALNUMBER=PID-0044",
			PublicKeyHash: bytes.Repeat([]byte{0x44}, 32),
			Profile:       "idevid",
			Requester:     "station:" + strings.Repeat("ef", 32),
			Device:        []byte{0x30, 0x06, 0x06, 0x01, 0x2a, 0x04, 0x01, 0x44},
			KeyProvenance: ca.ProvenanceTPMCertified,
			Time:          time.Date(2026, 11, 26, 11, 0, 0, 0, time.UTC),
			Certificate:   []byte{0x30, 0x03, 0x02, 0x01, 0x03},
		},
	}
}

func TestCanonicalEncodingGolden(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	prev := make([]byte, 32)
	for _, r := range goldenRecords() {
		enc, err := r.CanonicalEncoding()
		if err != nil {
			t.Fatal(err)
		}
		h, err := r.ChainHash(prev)
		if err != nil {
			t.Fatal(err)
		}
		want := sha256.Sum256(append(append([]byte{}, prev...), enc...))
		if !bytes.Equal(h, want[:]) {
			t.Fatal("ChainHash is not SHA-256(prev || encoding)")
		}
		b.WriteString("encoding " + hex.EncodeToString(enc) + "\n")
		b.WriteString("hash " + hex.EncodeToString(h) + "\n")
		prev = h
	}
	path := filepath.Join("testdata", "ledger-chain.txt")
	if *update {
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	golden, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	if string(golden) != b.String() {
		t.Fatalf("canonical encoding changed:\ngot\n%s\nwant\n%s", b.String(), golden)
	}
}

func TestCanonicalEncodingRefuses(t *testing.T) {
	t.Parallel()
	for name, r := range map[string]*ca.Record{
		"no serial":                        {Seq: 1, Kind: ca.KindIssuance},
		"negative serial":                  {Seq: 1, Kind: ca.KindIssuance, Serial: big.NewInt(-1)},
		"bad kind":                         {Seq: 1, Kind: 9, Serial: big.NewInt(1)},
		"negative requester serial":        {Seq: 1, Kind: ca.KindIssuance, Serial: big.NewInt(1), RequesterSerial: big.NewInt(-2)},
		"requester serial on a revocation": {Seq: 1, Kind: ca.KindRevocation, Serial: big.NewInt(1), RequesterSerial: big.NewInt(2)},
		"unknown key provenance":           {Seq: 1, Kind: ca.KindIssuance, Serial: big.NewInt(1), KeyProvenance: 5},
		"key provenance on a revocation":   {Seq: 1, Kind: ca.KindRevocation, Serial: big.NewInt(1), KeyProvenance: ca.ProvenanceInjected},
	} {
		if err := r.CheckAppendable(); err == nil {
			t.Errorf("%s: appendable", name)
		}
		if _, err := r.CanonicalEncoding(); err == nil {
			t.Errorf("%s: encoded", name)
		}
	}
	if _, err := (&ca.Record{Seq: 1, Kind: ca.KindIssuance, Serial: big.NewInt(1)}).ChainHash([]byte{1}); err == nil {
		t.Error("ChainHash accepted a short previous hash")
	}
}

func TestChainVerifier(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
	build := func() []*ca.Record {
		iss := mustIssuance(t, "s", at)
		iss.Seq = 1
		rev := &ca.Record{Seq: 2, Kind: ca.KindRevocation, Serial: iss.Serial, Requester: "admin", Time: at, Reason: ca.ReasonSuperseded}
		iss2 := mustIssuance(t, "s", at)
		iss2.Seq = 3
		rs := []*ca.Record{iss, rev, iss2}
		prev := make([]byte, 32)
		for _, r := range rs {
			r.PrevHash = prev
			r.Hash, _ = r.ChainHash(prev)
			prev = r.Hash
		}
		return rs
	}
	run := func(rs []*ca.Record) (ca.Head, error) {
		var v ca.ChainVerifier
		for _, r := range rs {
			if err := v.Add(r); err != nil {
				return v.Head(), err
			}
		}
		return v.Head(), nil
	}
	rs := build()
	if h, err := run(rs); err != nil || h.Seq != 3 || !bytes.Equal(h.Hash, rs[2].Hash) {
		t.Fatalf("valid chain: %v %v", h, err)
	}
	relink := func(rs []*ca.Record) {
		prev := make([]byte, 32)
		for i, r := range rs {
			r.Seq = uint64(i + 1)
			r.PrevHash = prev
			r.Hash, _ = r.ChainHash(prev)
			prev = r.Hash
		}
	}
	// An issuance requested by a station issued before and not revoked.
	rs = []*ca.Record{mustIssuance(t, "station-setup", at), mustIssuance(t, "s", at)}
	rs[1].RequesterSerial = rs[0].Serial
	relink(rs)
	if _, err := run(rs); err != nil {
		t.Fatalf("issuance by a live station: %v", err)
	}
	for name, m := range map[string]func(rs []*ca.Record) []*ca.Record{
		"gap":                  func(rs []*ca.Record) []*ca.Record { return []*ca.Record{rs[0], rs[2]} },
		"bad link":             func(rs []*ca.Record) []*ca.Record { rs[1].PrevHash = make([]byte, 32); return rs },
		"bad hash":             func(rs []*ca.Record) []*ca.Record { rs[0].Hash[0] ^= 1; return rs },
		"changed field":        func(rs []*ca.Record) []*ca.Record { rs[0].Requester = "x"; return rs },
		"certificate swapped":  func(rs []*ca.Record) []*ca.Record { rs[0].Certificate = rs[2].Certificate; relink(rs); return rs },
		"key hash wrong":       func(rs []*ca.Record) []*ca.Record { rs[0].PublicKeyHash = make([]byte, 32); relink(rs); return rs },
		"revoked before issue": func(rs []*ca.Record) []*ca.Record { rs[1].Serial = rs[2].Serial; relink(rs); return rs },
		"requester revoked before": func(rs []*ca.Record) []*ca.Record {
			rs[2].RequesterSerial = rs[0].Serial
			relink(rs)
			return rs
		},
		"requester never issued": func(rs []*ca.Record) []*ca.Record {
			rs[2].RequesterSerial = big.NewInt(12345)
			relink(rs)
			return rs
		},
		"issued twice": func(rs []*ca.Record) []*ca.Record {
			rs[2].Serial, rs[2].Certificate = rs[0].Serial, rs[0].Certificate
			relink(rs)
			return rs
		},
	} {
		_, err := run(m(build()))
		var ce *ca.ChainError
		if !errors.Is(err, ca.ErrLedgerCorrupt) || !errors.As(err, &ce) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func mustIssuance(t testing.TB, requester string, at time.Time) *ca.Record {
	t.Helper()
	r, err := ledgertest.NewIssuance(requester, at)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestCheckAppendable(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
	if err := mustIssuance(t, "s", at).CheckAppendable(); err != nil {
		t.Fatalf("good issuance: %v", err)
	}
	for name, r := range map[string]*ca.Record{
		"nil":                              nil,
		"no serial":                        {Kind: ca.KindIssuance},
		"bad kind":                         {Kind: 9, Serial: big.NewInt(1)},
		"long idempotency key":             {Kind: ca.KindIssuance, Serial: big.NewInt(1), IdempotencyKey: make([]byte, ca.MaxIdempotencyKey+1)},
		"idempotency key on a revocation":  {Kind: ca.KindRevocation, Serial: big.NewInt(1), IdempotencyKey: []byte("k")},
		"negative requester serial":        {Kind: ca.KindIssuance, Serial: big.NewInt(1), RequesterSerial: big.NewInt(-1)},
		"long requester serial":            {Kind: ca.KindIssuance, Serial: big.NewInt(1), RequesterSerial: new(big.Int).Lsh(big.NewInt(1), 64*8)},
		"requester serial on a revocation": {Kind: ca.KindRevocation, Serial: big.NewInt(1), RequesterSerial: big.NewInt(2)},
	} {
		if err := r.CheckAppendable(); err == nil {
			t.Errorf("%s: appendable", name)
		}
	}
}
