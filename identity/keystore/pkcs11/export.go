//go:build cgo

package pkcs11

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"

	p11 "github.com/miekg/pkcs11"

	"github.com/ztmkit/ztm/identity/keystore"
)

// Exporter hands out the private part of exportable keys of a [Store], for
// ztm's sealed key injection: set it as ztm.StationConfig.Exporter, and the
// station seals each exported key to the device (HPKE) at once. It is safe
// for concurrent use once set up.
//
// A key leaves the token only through C_WrapKey under the wrapping key
// that [InstallWrappingKey] put on the token: an AES key that the security
// officer marked CKA_TRUSTED and that can do nothing but wrap (no unwrap,
// decrypt or encrypt, not modifiable, not copyable). Keys made exportable
// by [Store.Create] are CKA_WRAP_WITH_TRUSTED, so no other key can wrap
// them. The wrapped key is unwrapped in the process with KEK, the wrapping
// key's value, which the token never gives out: exporting needs both the
// user PIN and KEK, and neither alone reveals a key.
type Exporter struct {
	// Store is the store whose keys are exported. Required.
	Store *Store
	// WrappingKey is the CKA_LABEL of the trusted wrapping key that
	// InstallWrappingKey installed on the store's token. Required.
	WrappingKey string
	// KEK is the wrapping key's value: 16, 24 or 32 bytes. Required.
	//
	// WARNING: KEK and the user PIN together export every exportable key
	// of the token. Keep KEK as the PIN is kept (a file only the
	// injection service reads), not in a URI or a command line.
	KEK []byte
}

// ExportKey returns the private key of key, an exportable key of e.Store
// (made with [keystore.CreateRequest.Exportable]), wrapped by the token
// under the trusted wrapping key (CKM_AES_KEY_WRAP_PAD, PKCS#8 inside) and
// unwrapped with e.KEK. It checks that the key unwrapped is key's.
//
// Errors: one naming the missing field for an Exporter not set up, one
// wrapping [ErrNotExportable] for a key of another store or a key that is
// not extractable, [ErrNoWrappingKey] when the token has no trusted
// wrapping key labelled e.WrappingKey, and the errors of [Key.Sign] for a
// deleted key or a closed store.
func (e *Exporter) ExportKey(ctx context.Context, key keystore.Key) (crypto.PrivateKey, error) {
	switch {
	case e == nil || e.Store == nil:
		return nil, errors.New("pkcs11: Exporter.Store is nil")
	case e.WrappingKey == "":
		return nil, errors.New("pkcs11: Exporter.WrappingKey is empty")
	case len(e.KEK) != 16 && len(e.KEK) != 24 && len(e.KEK) != 32:
		return nil, errorf("pkcs11: Exporter.KEK is %d bytes, want 16, 24 or 32", len(e.KEK))
	}
	k, ok := key.(*Key)
	if !ok || k.store.tok != e.Store.tok {
		return nil, errorf("%w: key %q is not a key of the exporter's token", ErrNotExportable, key.Label())
	}
	s := e.Store
	if err := s.begin(); err != nil {
		return nil, err
	}
	defer s.end()
	if err := s.loggedIn(ctx); err != nil {
		return nil, err
	}
	wrapped, err := k.wrap(ctx, e.WrappingKey)
	if err != nil {
		return nil, err
	}
	der, err := unwrapKWP(e.KEK, wrapped)
	if err != nil {
		return nil, errorf("pkcs11: key %q: %w (is KEK the value of the wrapping key %q?)", k.label, err, e.WrappingKey)
	}
	defer clear(der)
	priv, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, errorf("pkcs11: key %q: the token wrapped a private key that is not PKCS#8: %w", k.label, err)
	}
	signer, ok := priv.(crypto.Signer)
	if !ok || !keystore.PublicKeysEqual(signer.Public(), k.pub) {
		return nil, errorf("pkcs11: key %q: the token wrapped another key than the one named", k.label)
	}
	return priv, nil
}

// wrap wraps k's private key object under the trusted wrapping key
// labelled wrapLabel, looking the object up again if its handle went
// stale.
func (k *Key) wrap(ctx context.Context, wrapLabel string) ([]byte, error) {
	s, o := k.store, k.obj
	if o.gone.Load() {
		return nil, errorf("pkcs11: %w: key %q was deleted", keystore.ErrNotFound, k.label)
	}
	at := o.at.Load()
	var wrapped []byte
	for attempt := 0; ; attempt++ {
		if attempt > 0 || at.epoch != s.tok.epoch.Load() {
			var err error
			if at, err = s.locate(o); err != nil {
				return nil, err
			}
		}
		err := s.do(ctx, func(sh p11.SessionHandle) error {
			hs, err := s.find(sh, []*p11.Attribute{
				p11.NewAttribute(p11.CKA_CLASS, p11.CKO_SECRET_KEY),
				p11.NewAttribute(p11.CKA_LABEL, wrapLabel),
				p11.NewAttribute(p11.CKA_TRUSTED, true),
				p11.NewAttribute(p11.CKA_WRAP, true),
			}, 2)
			if err != nil {
				return err
			}
			if len(hs) != 1 {
				return errorf("%w: %d trusted wrapping keys labelled %q on token %q, want 1", ErrNoWrappingKey, len(hs), wrapLabel, s.tok.info.Label)
			}
			wrapped, err = s.mod.ctx.WrapKey(sh, []*p11.Mechanism{p11.NewMechanism(p11.CKM_AES_KEY_WRAP_PAD, nil)}, hs[0], at.handle)
			return wrap("C_WrapKey", err)
		})
		switch {
		case err == nil:
			return wrapped, nil
		case rv(err) == p11.CKR_KEY_UNEXTRACTABLE || rv(err) == p11.CKR_KEY_NOT_WRAPPABLE:
			return nil, errorf("%w: key %q: %w", ErrNotExportable, k.label, err)
		case !handleInvalid(err) || attempt > 0:
			return nil, errorf("pkcs11: key %q: %w", k.label, err)
		}
	}
}

// InstallWrappingKey puts on the token cfg selects the trusted wrapping
// key that an [Exporter] exports keys under: an AES key with value kek
// (16, 24 or 32 bytes) and CKA_LABEL label, made by the security officer
// (logging in with soPIN) so that it can be CKA_TRUSTED, and able to do
// nothing but wrap: CKA_WRAP true; CKA_UNWRAP, CKA_ENCRYPT, CKA_DECRYPT,
// CKA_SIGN, CKA_VERIFY and CKA_DERIVE false; CKA_SENSITIVE, not
// CKA_EXTRACTABLE, not CKA_MODIFIABLE, not CKA_COPYABLE. It is a token
// object readable without login (CKA_PRIVATE false), since the SO cannot
// make private objects; it reveals nothing.
//
// It is a setup step of the token, done once, before the stores that use
// it are opened: the SO cannot log in while the process is logged in as
// the user, so it fails while a store of the process is open on the token.
// cfg's PIN is not used. Errors: those of [Open] for cfg, an error
// wrapping [keystore.ErrAuth] when the token refuses soPIN,
// [keystore.ErrExists] when a secret key already has the label.
func InstallWrappingKey(ctx context.Context, cfg Config, soPIN, label string, kek []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := cfg.check(); err != nil {
		return err
	}
	if err := validObject(label); err != nil {
		return err
	}
	if len(kek) != 16 && len(kek) != 24 && len(kek) != 32 {
		return errorf("pkcs11: a wrapping key of %d bytes, want 16, 24 or 32", len(kek))
	}
	mod, err := openModule(cfg.ModulePath)
	if err != nil {
		return err
	}
	defer mod.release()
	slot, info, err := mod.findSlot(&cfg)
	if err != nil {
		return err
	}
	mod.mu.Lock() // no store opens the token meanwhile
	defer mod.mu.Unlock()
	if mod.tokens[slot] != nil {
		return errorf("pkcs11: token %q: a store of this process is open on it; install the wrapping key before opening stores (the SO cannot log in while the user is)", info.Label)
	}
	ctx11 := mod.ctx
	sh, err := ctx11.OpenSession(slot, p11.CKF_SERIAL_SESSION|p11.CKF_RW_SESSION)
	if err != nil {
		return wrap("C_OpenSession", err)
	}
	defer ctx11.CloseSession(sh)
	if err := ctx11.Login(sh, p11.CKU_SO, soPIN); err != nil {
		return errorf("pkcs11: token %q: SO login failed: %w", info.Label, wrap("C_Login", err))
	}
	defer ctx11.Logout(sh)
	if err := ctx11.FindObjectsInit(sh, []*p11.Attribute{p11.NewAttribute(p11.CKA_CLASS, p11.CKO_SECRET_KEY), p11.NewAttribute(p11.CKA_LABEL, label)}); err != nil {
		return wrap("C_FindObjectsInit", err)
	}
	hs, _, err := ctx11.FindObjects(sh, 1)
	_ = ctx11.FindObjectsFinal(sh)
	if err != nil {
		return wrap("C_FindObjects", err)
	}
	if len(hs) > 0 {
		return errorf("pkcs11: %w: a secret key labelled %q is on token %q", keystore.ErrExists, label, info.Label)
	}
	_, err = ctx11.CreateObject(sh, wrappingKeyTemplate(label, kek))
	if err != nil {
		return errorf("pkcs11: token %q: failed to create the wrapping key: %w", info.Label, wrap("C_CreateObject", err))
	}
	return nil
}

// wrappingKeyTemplate is the template of a trusted, wrap-only AES key.
func wrappingKeyTemplate(label string, kek []byte) []*p11.Attribute {
	return []*p11.Attribute{
		p11.NewAttribute(p11.CKA_CLASS, p11.CKO_SECRET_KEY),
		p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_AES),
		p11.NewAttribute(p11.CKA_VALUE, kek),
		p11.NewAttribute(p11.CKA_LABEL, label),
		p11.NewAttribute(p11.CKA_TOKEN, true),
		p11.NewAttribute(p11.CKA_PRIVATE, false),
		p11.NewAttribute(p11.CKA_TRUSTED, true),
		p11.NewAttribute(p11.CKA_WRAP, true),
		p11.NewAttribute(p11.CKA_UNWRAP, false),
		p11.NewAttribute(p11.CKA_ENCRYPT, false),
		p11.NewAttribute(p11.CKA_DECRYPT, false),
		p11.NewAttribute(p11.CKA_SIGN, false),
		p11.NewAttribute(p11.CKA_VERIFY, false),
		p11.NewAttribute(p11.CKA_DERIVE, false),
		p11.NewAttribute(p11.CKA_SENSITIVE, true),
		p11.NewAttribute(p11.CKA_EXTRACTABLE, false),
		p11.NewAttribute(p11.CKA_MODIFIABLE, false),
		p11.NewAttribute(p11.CKA_COPYABLE, false),
	}
}
