package attest_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ztmkit/ztm/attest"
	"github.com/ztmkit/ztm/attest/devicesim"
	"github.com/ztmkit/ztm/identity/keystore"
	"github.com/ztmkit/ztm/internal/nodetest"
)

// veraisonKey reads the P-256 public key of veraison/ear's tests.
func veraisonKey(t *testing.T) (*ecdsa.PublicKey, string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "veraison-ear-es256-pub.jwk"))
	if err != nil {
		t.Fatal(err)
	}
	var jwk struct{ X, Y string }
	if err := json.Unmarshal(b, &jwk); err != nil {
		t.Fatal(err)
	}
	x, err1 := base64.RawURLEncoding.DecodeString(jwk.X)
	y, err2 := base64.RawURLEncoding.DecodeString(jwk.Y)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
	if err != nil {
		t.Fatal(err)
	}
	return pub, string(b)
}

// TestInteropVeraisonEARJWT verifies the EAR JWT that Veraison's Go library
// signed for its own tests: ztm names the same developer and build, and
// honours its nbf.
func TestInteropVeraisonEARJWT(t *testing.T) {
	t.Parallel()
	pub, _ := veraisonKey(t)
	b, err := os.ReadFile(filepath.Join("testdata", "veraison-ear-verify-pass.jwt"))
	if err != nil {
		t.Fatal(err)
	}
	tok := []byte(strings.TrimSpace(string(b)))
	nbf := time.Unix(1676472709, 0)
	at := func(t time.Time) *attest.ResultOptions {
		return &attest.ResultOptions{Time: func() time.Time { return t }}
	}
	r, err := attest.ParseResult(tok, pub, at(nbf))
	if err != nil {
		t.Fatal(err)
	}
	if r.VerifierID.Developer != "Acme Inc." || r.VerifierID.Build != "rrtrap-v1.0.0" {
		t.Errorf("verifier id %+v", r.VerifierID)
	}
	a := r.Submods["test"]
	if a == nil || a.Status != attest.StatusAffirming || a.PolicyID != "policy://test/01234" ||
		r.IssuedAt.Unix() != 1666091373 || !r.NotBefore.Equal(nbf) {
		t.Errorf("result %+v %+v", r, a)
	}
	// Within the clock-skew allowance of nbf it is accepted; before that,
	// refused; with no allowance, refused a second early.
	if _, err := attest.ParseResult(tok, pub, at(nbf.Add(-attest.DefaultClockSkew))); err != nil {
		t.Errorf("at nbf - skew: %v", err)
	}
	if _, err := attest.ParseResult(tok, pub, at(nbf.Add(-attest.DefaultClockSkew-time.Second))); !errors.Is(err, attest.ErrNotYetValid) || !errors.Is(err, attest.ErrVerification) {
		t.Errorf("before nbf - skew: %v", err)
	}
	o := at(nbf.Add(-time.Second))
	o.ClockSkew = -1
	if _, err := attest.ParseResult(tok, pub, o); !errors.Is(err, attest.ErrNotYetValid) {
		t.Errorf("a second before nbf, no skew: %v", err)
	}
}

// TestEARReadByIndependentReader signs an EAR CWT with ztm and reads it
// with a node script that knows only the draft's keys: it verifies the
// signature and names the right developer and build.
func TestEARReadByIndependentReader(t *testing.T) {
	t.Parallel()
	// cose-js brings the cbor package; the manifest interop tests share
	// the same installation.
	mods := nodetest.Modules(t, "cose-js", "0.9.0")
	vkey := newKey(t, keystore.ES256)
	r := verifiedResult(t, devicesim.Tamper{})
	r.Expiry = r.IssuedAt.Add(time.Hour)
	tok, err := r.SignCWT(nil, vkey, nil)
	if err != nil {
		t.Fatal(err)
	}
	jwk := jwkOf(t, vkey.Public().(*ecdsa.PublicKey))
	out := nodetest.Run(t, mods, filepath.Join("testdata", "ear_read.js"), hex.EncodeToString(tok), jwk)
	var got struct {
		Developer, Build string
		IAT, Exp         int64
		Status           map[string]int
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if got.Developer != "https://example.com/ztm" || got.Build != "ztm-test 1" ||
		got.IAT != r.IssuedAt.Unix() || got.Exp != r.Expiry.Unix() || got.Status["device"] != int(attest.StatusAffirming) {
		t.Errorf("node read %+v", got)
	}
}

func jwkOf(t *testing.T, pub *ecdsa.PublicKey) string {
	t.Helper()
	b, err := pub.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding
	j, _ := json.Marshal(map[string]string{"kty": "EC", "crv": "P-256", "x": enc.EncodeToString(b[1:33]), "y": enc.EncodeToString(b[33:])})
	return string(j)
}

// TestResultExpiry: a result past its exp or before its nbf is refused, in
// both forms, with the clock-skew allowance documented on ResultOptions.
func TestResultExpiry(t *testing.T) {
	t.Parallel()
	vkey := newKey(t, keystore.ES256)
	r := verifiedResult(t, devicesim.Tamper{})
	iat := r.IssuedAt
	for _, form := range []string{"JWT", "CWT"} {
		sign := func(r *attest.Result) []byte {
			var tok []byte
			var err error
			if form == "JWT" {
				tok, err = r.SignJWT(nil, vkey, nil)
			} else {
				tok, err = r.SignCWT(nil, vkey, nil)
			}
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}
		at := func(now time.Time) *attest.ResultOptions {
			return &attest.ResultOptions{Time: func() time.Time { return now }}
		}
		r.Expiry, r.NotBefore = iat.Add(10*time.Minute), iat
		tok := sign(r)
		p, err := attest.ParseResult(tok, vkey.Public(), at(iat.Add(5*time.Minute)))
		if err != nil || !p.Expiry.Equal(r.Expiry) || !p.NotBefore.Equal(r.NotBefore) {
			t.Fatalf("%s: in its window: %v %v", form, p, err)
		}
		for name, tc := range map[string]struct {
			now  time.Time
			want error
		}{
			"at exp + skew":    {r.Expiry.Add(attest.DefaultClockSkew), attest.ErrExpired},
			"a day after exp":  {r.Expiry.Add(24 * time.Hour), attest.ErrExpired},
			"before nbf-skew":  {iat.Add(-attest.DefaultClockSkew - time.Second), attest.ErrNotYetValid},
			"just before exp":  {r.Expiry.Add(attest.DefaultClockSkew - time.Second), nil},
			"nbf - skew":       {iat.Add(-attest.DefaultClockSkew), nil},
			"no exp, far away": {iat.Add(1000 * time.Hour), nil},
		} {
			tk := tok
			if name == "no exp, far away" {
				r.Expiry = time.Time{}
				tk = sign(r)
				r.Expiry = iat.Add(10 * time.Minute)
			}
			_, err := attest.ParseResult(tk, vkey.Public(), at(tc.now))
			if (tc.want == nil && err != nil) || (tc.want != nil && (!errors.Is(err, tc.want) || !errors.Is(err, attest.ErrVerification))) {
				t.Errorf("%s %s: %v, want %v", form, name, err, tc.want)
			}
		}
	}
}

// TestEvidenceExpiry: EAT evidence (CWT and JWT) past its exp or before
// its nbf is refused, and the result says why.
func TestEvidenceExpiry(t *testing.T) {
	t.Parallel()
	for _, form := range []string{"CWT", "JWT"} {
		for name, tc := range map[string]struct {
			exp, nbf time.Duration // from now; 0 is absent
			want     error
		}{
			"expired":          {exp: -2 * time.Minute, want: attest.ErrExpired},
			"exp within skew":  {exp: -30 * time.Second},
			"not yet valid":    {nbf: 2 * time.Minute, want: attest.ErrNotYetValid},
			"nbf within skew":  {nbf: 30 * time.Second},
			"valid window":     {exp: time.Minute, nbf: -time.Minute},
			"neither exp, nbf": {},
		} {
			e := newEnv(t, envOpts{tweak: withRawKey})
			c := goodClaims(t, e)
			now := e.clock.Now()
			if tc.exp != 0 {
				c.Expiry = now.Add(tc.exp)
			}
			if tc.nbf != 0 {
				c.NotBefore = now.Add(tc.nbf)
			}
			var ev []byte
			if form == "CWT" {
				ev = craftCWT(t, mustCBOR(t, map[int64]any{1: -7, 4: []byte("raw")}), []byte{0xa0}, claimsCBOR(t, c))
			} else {
				ev = craftJWT(`{"alg":"ES256","kid":"raw"}`, claimsJSON(t, c), es256Raw(t))
			}
			r, err := e.ver.Verify(context.Background(), ev)
			if tc.want == nil {
				if err != nil {
					t.Errorf("%s %s: %v", form, name, err)
				}
				continue
			}
			if !errors.Is(err, tc.want) || r == nil || r.Status() != attest.StatusContraindicated {
				t.Errorf("%s %s: %v, %v", form, name, err, r)
			}
		}
	}
}

// TestDebugStatusJSON: dbgstat in a JWT is written and read in its RFC 9711
// JSON form, and the CBOR integer form is refused there.
func TestDebugStatusJSON(t *testing.T) {
	t.Parallel()
	for d := attest.DebugEnabled; d <= attest.DebugDisabledFullyAndPermanently; d++ {
		c := attest.Claims{DebugStatus: attest.DebugPtr(d)}
		j, err := c.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		if want := `{"dbgstat":"` + d.String() + `"}`; string(j) != want {
			t.Errorf("%v: %s, want %s", d, j, want)
		}
		var back attest.Claims
		if err := back.UnmarshalJSON(j); err != nil || back.DebugStatus == nil || *back.DebugStatus != d {
			t.Errorf("%v: read back %v, %v", d, back.DebugStatus, err)
		}
	}
	for _, bad := range []string{`{"dbgstat":2}`, `{"dbgstat":"Disabled"}`, `{"dbgstat":"disabled-forever"}`, `{"dbgstat":null}`} {
		var c attest.Claims
		if err := c.UnmarshalJSON([]byte(bad)); err == nil {
			t.Errorf("%s accepted as %v", bad, *c.DebugStatus)
		}
	}
}
