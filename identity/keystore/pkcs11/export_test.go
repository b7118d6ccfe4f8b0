//go:build cgo

package pkcs11_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"strings"
	"testing"

	p11 "github.com/miekg/pkcs11"

	"github.com/ztmkit/ztm/identity/keyseal"
	"github.com/ztmkit/ztm/identity/keystore"
	_ "github.com/ztmkit/ztm/identity/keystore/mem"
	"github.com/ztmkit/ztm/identity/keystore/pkcs11"
	"github.com/ztmkit/ztm/internal/softhsmtest"
)

// exportToken makes a token with a trusted wrapping key installed by the
// SO, and opens a store on it.
func exportToken(t *testing.T) (softhsmtest.Token, *pkcs11.Store, *pkcs11.Exporter) {
	t.Helper()
	tok := softhsmtest.New(t)
	kek := make([]byte, 32)
	rand.Read(kek)
	ctx := context.Background()
	if err := pkcs11.InstallWrappingKey(ctx, config(tok), tok.SOPIN, "ztm-export", kek); err != nil {
		t.Fatalf("InstallWrappingKey: %v", err)
	}
	if err := pkcs11.InstallWrappingKey(ctx, config(tok), tok.SOPIN, "ztm-export", kek); !errors.Is(err, keystore.ErrExists) {
		t.Fatalf("second InstallWrappingKey: err = %v, want ErrExists", err)
	}
	if err := pkcs11.InstallWrappingKey(ctx, config(tok), "wrong-so-pin", "other", kek); !errors.Is(err, keystore.ErrAuth) {
		t.Fatalf("InstallWrappingKey with a wrong SO PIN: err = %v, want ErrAuth", err)
	}
	s := openToken(t, tok)
	if err := pkcs11.InstallWrappingKey(ctx, config(tok), tok.SOPIN, "other", kek); err == nil {
		t.Fatal("InstallWrappingKey succeeded while a store is open on the token")
	}
	return tok, s, &pkcs11.Exporter{Store: s, WrappingKey: "ztm-export", KEK: kek}
}

// Keys generated in a SoftHSM2 token are injected into a simulated device:
// exported under the trusted wrapping key, sealed to the device's
// attestation key with HPKE, opened by the device, which then signs as the
// token's key.
func TestExportSealedToDevice(t *testing.T) {
	_, s, e := exportToken(t)
	ctx := context.Background()
	ak, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ueid := []byte{0x02, 0, 0, 0xfe, 0, 0, 0, 1}
	for _, alg := range keystore.Algorithms() {
		k, err := s.Create(ctx, keystore.CreateRequest{Label: "inject-" + strings.ToLower(alg.String()), Algorithm: alg, Exportable: true})
		if err != nil {
			t.Fatal(err)
		}
		priv, err := e.ExportKey(ctx, k)
		if alg == keystore.EdDSA {
			// SoftHSM 2.6 wraps no Edwards private keys
			// (CKR_KEY_NOT_WRAPPABLE): refused, and said so.
			if !errors.Is(err, pkcs11.ErrNotExportable) {
				t.Fatalf("EdDSA on SoftHSM 2.6: ExportKey err = %v, want ErrNotExportable", err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%v: ExportKey: %v", alg, err)
		}
		sealed, err := keyseal.Seal(ak.Public(), ueid, priv)
		if err != nil {
			t.Fatalf("%v: Seal: %v", alg, err)
		}
		got, err := keyseal.Open(ak, ueid, sealed) // on the device
		if err != nil {
			t.Fatalf("%v: Open: %v", alg, err)
		}
		if !got.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(k.Public()) {
			t.Fatalf("%v: the device holds another key than the token's", alg)
		}
		msg := []byte("signed by the device with the injected key")
		sig, err := got.Sign(rand.Reader, digestOf(alg, msg), alg.SignerOpts())
		if err != nil {
			t.Fatal(err)
		}
		opensslVerify(t, k, msg, sig)
	}

	// Refusals.
	fixed, err := s.Create(ctx, keystore.CreateRequest{Label: "fixed"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.ExportKey(ctx, fixed); !errors.Is(err, pkcs11.ErrNotExportable) {
		t.Fatalf("ExportKey of a non-exportable key: err = %v, want ErrNotExportable", err)
	}
	k, err := s.Get(ctx, "inject-es256")
	if err != nil {
		t.Fatal(err)
	}
	bad := *e
	bad.WrappingKey = "no-such-key"
	if _, err := bad.ExportKey(ctx, k); !errors.Is(err, pkcs11.ErrNoWrappingKey) {
		t.Fatalf("ExportKey under a missing wrapping key: err = %v, want ErrNoWrappingKey", err)
	}
	bad = *e
	bad.KEK = make([]byte, 32)
	if _, err := bad.ExportKey(ctx, k); err == nil {
		t.Fatal("ExportKey unwrapped with the wrong KEK")
	}
	for _, c := range []*pkcs11.Exporter{nil, {}, {Store: s}, {Store: s, WrappingKey: "ztm-export", KEK: []byte("short")}} {
		if _, err := c.ExportKey(ctx, k); err == nil {
			t.Fatalf("ExportKey with %+v succeeded", c)
		}
	}
	mem, err := keystore.Open(ctx, "mem:")
	if err != nil {
		t.Fatal(err)
	}
	other, err := mem.Create(ctx, keystore.CreateRequest{Label: "soft"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.ExportKey(ctx, other); !errors.Is(err, pkcs11.ErrNotExportable) {
		t.Fatalf("ExportKey of a key of another store: err = %v, want ErrNotExportable", err)
	}
}

// With the user PIN alone, the trusted wrapping key reveals nothing: a key
// wrapped under it cannot be unwrapped or decrypted in the token, and the
// wrapping key cannot be given those rights or copied with them.
func TestWrappingKeyIsWrapOnly(t *testing.T) {
	tok, s, _ := exportToken(t)
	ctx := context.Background()
	if _, err := s.Create(ctx, keystore.CreateRequest{Label: "victim", Exportable: true}); err != nil {
		t.Fatal(err)
	}
	r := openRaw(t, tok)
	wk := r.find(t, p11.CKO_SECRET_KEY, "ztm-export")
	victim := r.find(t, p11.CKO_PRIVATE_KEY, "victim")
	if len(wk) != 1 || len(victim) != 1 {
		t.Fatalf("%d wrapping keys, %d victims", len(wk), len(victim))
	}
	kwp := []*p11.Mechanism{p11.NewMechanism(p11.CKM_AES_KEY_WRAP_PAD, nil)}
	wrapped, err := r.ctx.WrapKey(r.sh, kwp, wk[0], victim[0])
	if err != nil {
		t.Fatalf("the user cannot wrap under the trusted key either: %v", err)
	}
	if _, err := r.ctx.UnwrapKey(r.sh, kwp, wk[0], wrapped, []*p11.Attribute{
		p11.NewAttribute(p11.CKA_CLASS, p11.CKO_PRIVATE_KEY),
		p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_EC),
		p11.NewAttribute(p11.CKA_TOKEN, false),
		p11.NewAttribute(p11.CKA_SENSITIVE, false),
		p11.NewAttribute(p11.CKA_EXTRACTABLE, true),
	}); err == nil {
		t.Fatal("unwrapped the key in the token with the wrapping key")
	}
	if err := r.ctx.DecryptInit(r.sh, []*p11.Mechanism{p11.NewMechanism(p11.CKM_AES_ECB, nil)}, wk[0]); err == nil {
		t.Fatal("the wrapping key decrypts")
	}
	if err := r.ctx.SetAttributeValue(r.sh, wk[0], []*p11.Attribute{p11.NewAttribute(p11.CKA_UNWRAP, true)}); err == nil {
		t.Fatal("the user gave the wrapping key CKA_UNWRAP")
	}
	if _, err := r.ctx.CopyObject(r.sh, wk[0], []*p11.Attribute{p11.NewAttribute(p11.CKA_UNWRAP, true), p11.NewAttribute(p11.CKA_TOKEN, false)}); err == nil {
		t.Fatal("the user copied the wrapping key with CKA_UNWRAP")
	}
	if _, err := r.ctx.GetAttributeValue(r.sh, wk[0], []*p11.Attribute{p11.NewAttribute(p11.CKA_VALUE, nil)}); err == nil {
		t.Fatal("the wrapping key's value can be read")
	}
}
