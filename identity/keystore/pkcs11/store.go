//go:build cgo

package pkcs11

import (
	"context"
	"crypto"
	"errors"
	"io"
	"slices"
	"sync"

	p11 "github.com/miekg/pkcs11"

	"github.com/ztmkit/ztm/identity/keystore"
)

func init() {
	keystore.Register(Scheme, func(ctx context.Context, uri string) (keystore.Store, error) {
		cfg, err := ParseURI(uri)
		if err != nil {
			return nil, err
		}
		return Open(ctx, *cfg)
	})
}

// Store is a [keystore.Store] over one token of a PKCS#11 module. It is
// safe for concurrent use: operations run on a pool of up to
// [Config.MaxSessions] sessions, and several stores, in one process, may be
// open on the same token at once.
type Store struct {
	cfg  Config // PIN cleared
	mod  *module
	tok  *token
	pool *pool

	// ops is held for reading by every operation that calls the module,
	// and for writing by Close, so that Close waits for them.
	ops    sync.RWMutex
	closed bool // guarded by ops

	// testOnlyAfterGenerate, if set, runs after a key pair is generated
	// and loaded; an error makes Create fail there.
	testOnlyAfterGenerate func() error
}

var _ keystore.Store = (*Store)(nil)

// Open opens the token cfg selects, logging in with its PIN. Errors:
// a [*ModuleError] when the module cannot be loaded or initialized (a
// missing module is named with its path), an error wrapping
// [ErrTokenNotFound] when no token, or several, match, an error wrapping
// [keystore.ErrAuth] when the token refuses the PIN, and a
// [*keystore.URIError] for a Config that cannot be used. No error message
// carries the PIN.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if cfg.MaxSessions == 0 {
		cfg.MaxSessions = DefaultMaxSessions
	}
	pin, err := cfg.pin()
	if err != nil {
		return nil, err
	}
	cfg.PIN = ""
	mod, err := openModule(cfg.ModulePath)
	if err != nil {
		return nil, err
	}
	slot, info, err := mod.findSlot(&cfg)
	if err != nil {
		mod.release()
		return nil, err
	}
	tok, err := mod.openToken(slot, info, pin)
	if err != nil {
		mod.release()
		return nil, err
	}
	return &Store{cfg: cfg, mod: mod, tok: tok, pool: newPool(tok, cfg.MaxSessions)}, nil
}

// Config returns the configuration the store was opened with, without the
// PIN.
func (s *Store) Config() Config { return s.cfg }

// Algorithms returns the algorithms the token can create keys for, found
// from its mechanism list when the store was opened, in
// [keystore.Algorithms] order. Create refuses the others with
// [keystore.ErrUnsupportedAlgorithm].
func (s *Store) Algorithms() []keystore.Algorithm {
	if s.tok == nil {
		return nil
	}
	return slices.Clone(s.tok.algs)
}

// begin starts an operation; end must follow when it returns nil.
func (s *Store) begin() error {
	if s.tok == nil || s.pool == nil {
		return errors.New("pkcs11: Store not made by Open")
	}
	s.ops.RLock()
	if s.closed {
		s.ops.RUnlock()
		return keystore.ErrClosed
	}
	return nil
}

func (s *Store) end() { s.ops.RUnlock() }

// do runs f on a session from the pool. When the module says the session
// or the login is gone (PKCS#11 logs a process out when another library in
// it calls C_Logout or closes all its sessions), do logs in again if
// needed and runs f once more on a new session. Every operation of this
// package is safe to retry.
func (s *Store) do(ctx context.Context, f func(sh p11.SessionHandle) error) error {
	for attempt := 0; ; attempt++ {
		sh, err := s.pool.get(ctx)
		if err != nil {
			return err
		}
		err = f(sh)
		s.pool.put(sh, err)
		if err == nil || attempt > 0 || !sessionLost(err) {
			return err
		}
		// What lost one session (C_CloseAllSessions, a token reset)
		// usually lost them all: retry on a new one.
		s.pool.flush()
		if _, lerr := s.tok.ensureLogin(); lerr != nil {
			// The login is what failed: its error alone (a refused PIN
			// is ErrAuth, and must not also look like a missing key).
			return errorf("%w (after %v)", lerr, err)
		}
	}
}

// loggedIn checks ctx, and that the process is still logged in to the
// token (logging in again if the module dropped the login): searches do not
// fail while logged out, they just miss the private keys.
func (s *Store) loggedIn(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	_, err := s.tok.ensureLogin()
	return err
}

// Login logs the process in to the store's token again, with pin. After
// the token refuses a PIN (CKR_PIN_INCORRECT, CKR_PIN_LOCKED…: the PIN was
// changed, or another token with the same label was put in), no store of
// the process tries the PIN again on its own, since each try brings a real
// token closer to locking the PIN: every operation fails with an error
// wrapping [keystore.ErrAuth] and the refusal's [*Error], until Login
// succeeds or the stores are closed and opened again.
//
// Login makes one C_Login, and only when the process is not logged in to
// the token; when it is, pin must be the PIN of that login. It returns an
// error wrapping [keystore.ErrAuth] when the token refuses pin, or pin
// differs from the PIN of the current login. The new PIN is used from then
// on by every store of the process on the token.
func (s *Store) Login(ctx context.Context, pin string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.begin(); err != nil {
		return err
	}
	defer s.end()
	return s.tok.relogin(pin)
}

// Create generates a key pair inside the token: the private key with
// CKA_LABEL req.Label, a random 16-byte CKA_ID shared with its public key,
// CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE and CKA_WRAP_WITH_TRUSTED true,
// no right but CKA_SIGN, and CKA_EXTRACTABLE false unless req.Exportable
// (the key then stays sensitive: it can leave the token only wrapped under
// a trusted key, never in clear). See "Keys" in the package
// documentation.
//
// The label is searched first, under a lock shared by the process's
// stores on the token, so that ErrExists is exact within one process;
// across processes it is best effort (see the package documentation). If
// any step after generation fails, the objects made are destroyed.
func (s *Store) Create(ctx context.Context, req keystore.CreateRequest) (keystore.Key, error) {
	if err := keystore.ValidateLabel(req.Label); err != nil {
		return nil, err
	}
	if !req.Algorithm.Valid() {
		return nil, errorf("pkcs11: %w: %v", keystore.ErrUnsupportedAlgorithm, req.Algorithm)
	}
	if err := s.begin(); err != nil {
		return nil, err
	}
	defer s.end()
	if !slices.Contains(s.tok.algs, req.Algorithm) {
		return nil, errorf("pkcs11: %w: token %q has no mechanisms for %v", keystore.ErrUnsupportedAlgorithm, s.tok.info.Label, req.Algorithm)
	}
	if err := s.loggedIn(ctx); err != nil {
		return nil, err
	}
	id := make([]byte, 16)
	if _, err := io.ReadFull(s.cfg.rand(), id); err != nil {
		return nil, errorf("pkcs11: failed to read a random CKA_ID: %w", err)
	}

	s.tok.keyMu.Lock()
	defer s.tok.keyMu.Unlock()
	var k *Key
	err := s.do(ctx, func(sh p11.SessionHandle) error {
		for _, class := range []uint{p11.CKO_PRIVATE_KEY, p11.CKO_PUBLIC_KEY} {
			hs, err := s.findPrivate(sh, []*p11.Attribute{
				p11.NewAttribute(p11.CKA_CLASS, class),
				p11.NewAttribute(p11.CKA_LABEL, req.Label),
			}, 1)
			if err != nil {
				return err
			}
			if len(hs) > 0 {
				return errorf("pkcs11: %w: %q", keystore.ErrExists, req.Label)
			}
		}
		pub, priv := templates(req, id)
		pubH, privH, err := s.mod.ctx.GenerateKeyPair(sh, []*p11.Mechanism{p11.NewMechanism(keyGenMechanism(req.Algorithm), nil)}, pub, priv)
		if err != nil {
			return errorf("pkcs11: failed to generate a %v key: %w", req.Algorithm, wrap("C_GenerateKeyPair", err))
		}
		k, err = s.load(sh, privH, pubH)
		if err == nil && k.alg != req.Algorithm {
			err = errorf("pkcs11: the token made a %v key when asked for %v", k.alg, req.Algorithm)
		}
		if err == nil && s.testOnlyAfterGenerate != nil {
			err = s.testOnlyAfterGenerate()
		}
		if err != nil {
			// No half keys: destroy what was made.
			derr := errors.Join(
				wrap("C_DestroyObject", s.mod.ctx.DestroyObject(sh, privH)),
				wrap("C_DestroyObject", s.mod.ctx.DestroyObject(sh, pubH)))
			if derr != nil {
				return errors.Join(err, errorf("pkcs11: failed to destroy the half-made key %q: %w", req.Label, derr))
			}
			return err
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return k, nil
}

// Get returns the key that name selects: a label, which selects the
// private key object with that CKA_LABEL, or a PKCS#11 URI (RFC 7512)
// with object (any CKA_LABEL, percent-encoded: spaces and UTF-8 too), id
// (the CKA_ID, percent-encoded bytes) or both, such as
// "pkcs11:object=station%20key" or "pkcs11:id=%01%02". The URI may be the
// one the store was opened with: its token attributes must then describe
// the store's token, and its query attributes are ignored. Keys made by
// other tools work too: the public key is the public key object with the
// same CKA_ID (or, without an id, the same label), or for RSA the
// private key's modulus.
//
// The key's Label is its CKA_LABEL when [keystore.ValidateLabel] accepts
// it, and otherwise a URI that Get accepts (see [Store.List]).
//
// Errors: one wrapping [keystore.ErrInvalidLabel] for a name that is
// neither a valid label nor a "pkcs11:" URI, a [*keystore.URIError] for a
// URI that names no key or another token, [keystore.ErrNotFound] when no
// private key matches, [keystore.ErrUnsupportedAlgorithm] for a key ztm
// does not use (such as RSA-2048 or a curve other than P-256, P-384 and
// Ed25519), and an error when several private keys match.
func (s *Store) Get(ctx context.Context, name string) (keystore.Key, error) {
	if err := s.begin(); err != nil {
		return nil, err
	}
	defer s.end()
	ref, err := s.resolve(name)
	if err != nil {
		return nil, err
	}
	if err := s.loggedIn(ctx); err != nil {
		return nil, err
	}
	var k *Key
	err = s.do(ctx, func(sh p11.SessionHandle) error {
		hs, err := s.findPrivate(sh, ref.template(), 2)
		if err != nil {
			return err
		}
		switch len(hs) {
		case 0:
			return errorf("pkcs11: %w: %q", keystore.ErrNotFound, name)
		case 2:
			return s.errAmbiguous(ref)
		}
		k, err = s.load(sh, hs[0], 0)
		return err
	})
	if err != nil {
		return nil, err
	}
	return k, nil
}

// List returns the names of the token's private keys, sorted, each of
// which Get and Delete accept: a key's CKA_LABEL when
// [keystore.ValidateLabel] accepts it and no other private key has it,
// and otherwise a PKCS#11 URI with its label and CKA_ID, percent-encoded
// ("pkcs11:object=station%20key;id=%01", "pkcs11:id=%01" for a key with
// no label). Keys made by other tools may have any label, or none. Only a
// private key with neither a label nor an id is left out: no URI can
// name it. Keys that Get refuses as unsupported (such as RSA-2048) are
// listed, so that they can be found and deleted.
func (s *Store) List(ctx context.Context) ([]string, error) {
	if err := s.begin(); err != nil {
		return nil, err
	}
	defer s.end()
	if err := s.loggedIn(ctx); err != nil {
		return nil, err
	}
	type ident struct{ label, id string }
	var keys []ident
	err := s.do(ctx, func(sh p11.SessionHandle) error {
		keys = keys[:0]
		hs, err := s.findPrivate(sh, []*p11.Attribute{p11.NewAttribute(p11.CKA_CLASS, p11.CKO_PRIVATE_KEY)}, 0)
		if err != nil {
			return err
		}
		for _, h := range hs {
			attrs, err := s.mod.ctx.GetAttributeValue(sh, h, []*p11.Attribute{p11.NewAttribute(p11.CKA_LABEL, nil), p11.NewAttribute(p11.CKA_ID, nil)})
			if err != nil {
				if rv(err) == p11.CKR_OBJECT_HANDLE_INVALID {
					continue // destroyed since the search
				}
				return wrap("C_GetAttributeValue", err)
			}
			keys = append(keys, ident{string(attrs[0].Value), string(attrs[1].Value)})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	count := map[string]int{}
	for _, k := range keys {
		count[k.label]++
	}
	var names []string
	for _, k := range keys {
		if n := keyName(k.label, []byte(k.id), count[k.label] == 1); n != "" {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return slices.Compact(names), nil
}

// Delete destroys the private key that name selects (a label or a URI,
// as for [Store.Get]) and the public key objects with its label and
// CKA_ID. Keys fetched earlier stop signing with [keystore.ErrNotFound].
func (s *Store) Delete(ctx context.Context, name string) error {
	if err := s.begin(); err != nil {
		return err
	}
	defer s.end()
	ref, err := s.resolve(name)
	if err != nil {
		return err
	}
	if err := s.loggedIn(ctx); err != nil {
		return err
	}
	s.tok.keyMu.Lock()
	defer s.tok.keyMu.Unlock()
	return s.do(ctx, func(sh p11.SessionHandle) error {
		privs, err := s.findPrivate(sh, ref.template(), 2)
		if err != nil {
			return err
		}
		switch len(privs) {
		case 0:
			return errorf("pkcs11: %w: %q", keystore.ErrNotFound, name)
		case 2:
			return errorf("%w; not deleting", s.errAmbiguous(ref))
		}
		attrs, err := s.mod.ctx.GetAttributeValue(sh, privs[0], []*p11.Attribute{p11.NewAttribute(p11.CKA_LABEL, nil), p11.NewAttribute(p11.CKA_ID, nil)})
		if err != nil {
			return wrap("C_GetAttributeValue", err)
		}
		label, id := string(attrs[0].Value), attrs[1].Value
		pubTmpl := []*p11.Attribute{p11.NewAttribute(p11.CKA_CLASS, p11.CKO_PUBLIC_KEY)}
		if label != "" {
			pubTmpl = append(pubTmpl, p11.NewAttribute(p11.CKA_LABEL, label))
		}
		if len(id) > 0 {
			pubTmpl = append(pubTmpl, p11.NewAttribute(p11.CKA_ID, id))
		}
		pubs, err := s.find(sh, pubTmpl, 0)
		if err != nil {
			return err
		}
		// The private key first: once it is gone the key cannot sign.
		if err := s.mod.ctx.DestroyObject(sh, privs[0]); err != nil {
			return errorf("pkcs11: failed to destroy key %q: %w", name, wrap("C_DestroyObject", err))
		}
		s.tok.forget(label, id)
		for _, h := range pubs {
			if err := s.mod.ctx.DestroyObject(sh, h); err != nil && rv(err) != p11.CKR_OBJECT_HANDLE_INVALID {
				return errorf("pkcs11: destroyed the private key %q but not its public key: %w", name, wrap("C_DestroyObject", err))
			}
		}
		return nil
	})
}

// Close releases the store's sessions, and logs out of the token and
// finalizes the module when no other store in the process uses them. It
// waits for operations in flight. Keys fetched from the store then fail
// with [keystore.ErrClosed]. Close is idempotent.
func (s *Store) Close() error {
	s.ops.Lock()
	defer s.ops.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.pool.close()
	s.tok.release()
	s.mod.release()
	return nil
}

// locate finds o's private key object again, by label and CKA_ID, for
// the current login epoch. It returns an error wrapping
// [keystore.ErrNotFound] when the object is gone.
func (s *Store) locate(o *object) (*objectAt, error) {
	epoch := s.tok.epoch.Load()
	// A label or id the object lacks is matched as empty: the module
	// compares attribute values, and an absent label is an empty one.
	tmpl := []*p11.Attribute{
		p11.NewAttribute(p11.CKA_CLASS, p11.CKO_PRIVATE_KEY),
		p11.NewAttribute(p11.CKA_LABEL, o.label),
		p11.NewAttribute(p11.CKA_ID, o.id),
	}
	var hs []p11.ObjectHandle
	err := s.do(context.Background(), func(sh p11.SessionHandle) error {
		var err error
		hs, err = s.findPrivate(sh, tmpl, 2)
		return err
	})
	if err != nil {
		return nil, err
	}
	switch len(hs) {
	case 0:
		s.tok.forget(o.label, o.id)
		return nil, errorf("pkcs11: %w: key %q was deleted", keystore.ErrNotFound, o.label)
	case 2:
		return nil, errorf("pkcs11: several private keys on token %q have the label %q and the same CKA_ID", s.tok.info.Label, o.label)
	}
	at := &objectAt{handle: hs[0], epoch: epoch}
	o.at.Store(at)
	return at, nil
}

// find returns the handles of up to max objects (all if max is 0) that
// match tmpl.
func (s *Store) find(sh p11.SessionHandle, tmpl []*p11.Attribute, max int) ([]p11.ObjectHandle, error) {
	ctx := s.mod.ctx
	if err := ctx.FindObjectsInit(sh, tmpl); err != nil {
		return nil, wrap("C_FindObjectsInit", err)
	}
	var out []p11.ObjectHandle
	for {
		n := 64
		if max > 0 {
			n = max - len(out)
		}
		hs, _, err := ctx.FindObjects(sh, n)
		if err != nil {
			_ = ctx.FindObjectsFinal(sh)
			return nil, wrap("C_FindObjects", err)
		}
		out = append(out, hs...)
		if len(hs) == 0 || (max > 0 && len(out) >= max) {
			break
		}
	}
	if err := ctx.FindObjectsFinal(sh); err != nil {
		return nil, wrap("C_FindObjectsFinal", err)
	}
	return out, nil
}

// findPrivate is find for a search that may match private objects, which
// a module hides while the process is logged out: when the session turns
// out not to be logged in, it fails with CKR_USER_NOT_LOGGED_IN, so that
// [Store.do] logs in again (or reports why it cannot) and the search is
// not taken for an answer.
func (s *Store) findPrivate(sh p11.SessionHandle, tmpl []*p11.Attribute, max int) ([]p11.ObjectHandle, error) {
	hs, err := s.find(sh, tmpl, max)
	if err != nil || !s.tok.needsLogin() {
		return hs, err
	}
	info, err := s.mod.ctx.GetSessionInfo(sh)
	if err != nil {
		return nil, wrap("C_GetSessionInfo", err)
	}
	if !userState(info.State) {
		return nil, &Error{Op: "C_FindObjects", Code: p11.CKR_USER_NOT_LOGGED_IN}
	}
	return hs, nil
}

// attr returns one attribute of object h.
func (s *Store) attr(sh p11.SessionHandle, h p11.ObjectHandle, typ uint) ([]byte, error) {
	attrs, err := s.mod.ctx.GetAttributeValue(sh, h, []*p11.Attribute{p11.NewAttribute(typ, nil)})
	if err != nil {
		return nil, wrap("C_GetAttributeValue", err)
	}
	return attrs[0].Value, nil
}

// load builds the key for private key object priv. pub is the public key
// object if known (0: search by CKA_ID, then label).
func (s *Store) load(sh p11.SessionHandle, priv, pub p11.ObjectHandle) (*Key, error) {
	epoch := s.tok.epoch.Load()
	attrs, err := s.mod.ctx.GetAttributeValue(sh, priv, []*p11.Attribute{
		p11.NewAttribute(p11.CKA_KEY_TYPE, nil),
		p11.NewAttribute(p11.CKA_ID, nil),
		p11.NewAttribute(p11.CKA_LABEL, nil),
	})
	if err != nil {
		return nil, wrap("C_GetAttributeValue", err)
	}
	id, label := attrs[1].Value, string(attrs[2].Value)
	name := keyName(label, id, true)
	keyType, ok := ulong(attrs[0].Value)
	if !ok {
		return nil, errorf("pkcs11: key %q: malformed CKA_KEY_TYPE", name)
	}
	pubKey, err := s.publicKey(sh, name, label, keyType, id, priv, pub)
	if err != nil {
		return nil, err
	}
	alg, err := keystore.AlgorithmOf(pubKey)
	if err != nil {
		return nil, errorf("pkcs11: key %q: %w", name, err)
	}
	return &Key{store: s, label: name, alg: alg, pub: pubKey, obj: s.tok.object(label, id, priv, epoch)}, nil
}

// publicKey reads the public key of a key pair; name is the key's name
// for errors.
func (s *Store) publicKey(sh p11.SessionHandle, name, label string, keyType uint, id []byte, priv, pub p11.ObjectHandle) (crypto.PublicKey, error) {
	switch keyType {
	case p11.CKK_RSA:
		attrs, err := s.mod.ctx.GetAttributeValue(sh, priv, []*p11.Attribute{
			p11.NewAttribute(p11.CKA_MODULUS, nil),
			p11.NewAttribute(p11.CKA_PUBLIC_EXPONENT, nil),
		})
		if err != nil {
			return nil, wrap("C_GetAttributeValue", err)
		}
		return rsaPublicKey(attrs[0].Value, attrs[1].Value)
	case p11.CKK_EC, ckkECEdwards:
	default:
		return nil, errorf("pkcs11: key %q: %w: PKCS#11 key type %#x", name, keystore.ErrUnsupportedAlgorithm, keyType)
	}
	params, err := s.attr(sh, priv, p11.CKA_EC_PARAMS)
	if err != nil {
		return nil, err
	}
	if pub == 0 {
		tmpls := [][]*p11.Attribute{}
		if len(id) > 0 {
			tmpls = append(tmpls, []*p11.Attribute{
				p11.NewAttribute(p11.CKA_CLASS, p11.CKO_PUBLIC_KEY),
				p11.NewAttribute(p11.CKA_KEY_TYPE, keyType),
				p11.NewAttribute(p11.CKA_ID, id),
			})
		}
		if label != "" {
			tmpls = append(tmpls, []*p11.Attribute{
				p11.NewAttribute(p11.CKA_CLASS, p11.CKO_PUBLIC_KEY),
				p11.NewAttribute(p11.CKA_KEY_TYPE, keyType),
				p11.NewAttribute(p11.CKA_LABEL, label),
			})
		}
		for _, tmpl := range tmpls {
			hs, err := s.find(sh, tmpl, 1)
			if err != nil {
				return nil, err
			}
			if len(hs) == 1 {
				pub = hs[0]
				break
			}
		}
		if pub == 0 {
			return nil, errorf("pkcs11: key %q: no public key object with its CKA_ID or label", name)
		}
	}
	point, err := s.attr(sh, pub, p11.CKA_EC_POINT)
	if err != nil {
		return nil, err
	}
	if keyType == ckkECEdwards {
		return edPublicKey(params, point)
	}
	return ecPublicKey(params, point)
}
