//go:build cgo

package pkcs11

import (
	"context"
	"crypto/subtle"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	p11 "github.com/miekg/pkcs11"

	"github.com/ztmkit/ztm/identity/keystore"
)

// A PKCS#11 module is initialized once per process (C_Initialize), and a
// login holds for every session of the process on a token. So the state of
// modules and tokens is process-wide, whatever number of stores use them:
// this table is the one piece of mutable package state, as in every
// PKCS#11 binding, and it is reference counted so that the last store to
// close finalizes the module.
var (
	modulesMu sync.Mutex
	modules   = map[string]*module{}
	// libraries keeps each module loaded once it has been loaded: some
	// modules (OpenSSL-based ones among them) do not survive being
	// unloaded and loaded again in one process. Guarded by modulesMu.
	libraries = map[string]*p11.Ctx{}
)

// module is one initialized PKCS#11 module.
type module struct {
	key   string // the module's resolved path, the key in modules
	ctx   *p11.Ctx
	owner bool // this package called C_Initialize, so it calls C_Finalize
	refs  int  // stores using the module; guarded by modulesMu

	mu     sync.Mutex
	tokens map[uint]*token // by slot id; guarded by mu
}

// token is the process-wide state of one token in a module's slot.
type token struct {
	mod  *module
	slot uint
	info p11.TokenInfo
	refs int // stores using the token; guarded by mod.mu

	// pin is the PIN the process logged in with, kept to log in again if
	// the module drops the login, and to check the PIN of later stores.
	pin      string
	loggedIn bool
	// refused is the error of the last C_Login the token refused
	// (CKR_PIN_INCORRECT, CKR_PIN_LOCKED…), nil after a login succeeds.
	// While it is set the cached PIN is not tried again: each retry
	// with a stale PIN brings a real token closer to locking it, and
	// unlocking needs the SO PIN. Only [Store.Login] and a new store
	// with a PIN try again. Guarded by loginMu.
	refused error
	// session is held open so that the login lasts while stores come and
	// go (PKCS#11 logs out when a process closes its last session).
	session p11.SessionHandle
	loginMu sync.Mutex // serializes C_Login

	// keyMu serializes Create and Delete on the token across the
	// process's stores, so that the label search and the key generation
	// are atomic for this process.
	keyMu sync.Mutex
	// algs are the algorithms the token's mechanisms support.
	algs []keystore.Algorithm

	// epoch counts the times the process logged in to the token again
	// after the module dropped the login.
	epoch atomic.Uint64

	objMu sync.Mutex
	objs  map[string]*object // private keys handed out, by objectKey; guarded by objMu
}

// object is a private key object that keys refer to, identified by its
// label and CKA_ID. Every key fetched for one object shares it, so that a
// Delete stops them all at once.
type object struct {
	label string
	id    []byte
	at    atomic.Pointer[objectAt]
	gone  atomic.Bool
}

// objectAt is the handle of an object, valid for one login epoch of its
// token: modules may renumber private objects when they log out (SoftHSM
// does), so a handle from an earlier epoch is looked up again before use.
type objectAt struct {
	handle p11.ObjectHandle
	epoch  uint64
}

func objectKey(label string, id []byte) string { return label + "\x00" + string(id) }

// openModule returns the initialized module at path, loading and
// initializing it if no store uses it yet.
func openModule(path string) (*module, error) {
	if path == "" {
		return nil, &ModuleError{Path: path, Reason: "no module path"}
	}
	if !filepath.IsAbs(path) {
		return nil, &ModuleError{Path: path, Reason: "the module path must be absolute"}
	}
	resolved, err := filepath.EvalSymlinks(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, &ModuleError{Path: path, Reason: "no such file: install the PKCS#11 library of the token (for SoftHSM2 on Debian: apt-get install softhsm2)", Err: err}
		}
		return nil, &ModuleError{Path: path, Reason: "cannot resolve the path", Err: err}
	}
	if st, err := os.Stat(resolved); err != nil {
		return nil, &ModuleError{Path: path, Reason: "cannot stat the module", Err: err}
	} else if !st.Mode().IsRegular() {
		return nil, &ModuleError{Path: path, Reason: "not a regular file"}
	}

	modulesMu.Lock()
	defer modulesMu.Unlock()
	if m := modules[resolved]; m != nil {
		m.refs++
		return m, nil
	}
	ctx := libraries[resolved]
	if ctx == nil {
		ctx = p11.New(resolved)
		if ctx == nil {
			return nil, &ModuleError{Path: path, Reason: "cannot load it as a PKCS#11 library (dlopen or C_GetFunctionList failed)"}
		}
		libraries[resolved] = ctx
	}
	owner := true
	if err := ctx.Initialize(); err != nil {
		if rv(err) != p11.CKR_CRYPTOKI_ALREADY_INITIALIZED {
			return nil, &ModuleError{Path: path, Reason: "C_Initialize failed", Err: wrap("C_Initialize", err)}
		}
		// Another library in this process initialized the module; it
		// also finalizes it.
		owner = false
	}
	m := &module{key: resolved, ctx: ctx, owner: owner, refs: 1, tokens: map[uint]*token{}}
	modules[resolved] = m
	return m, nil
}

// release drops one reference to m and finalizes it after the last.
func (m *module) release() {
	modulesMu.Lock()
	defer modulesMu.Unlock()
	m.refs--
	if m.refs > 0 {
		return
	}
	delete(modules, m.key)
	if m.owner {
		_ = m.ctx.Finalize()
	}
}

// findSlot returns the slot of the one token that cfg selects.
func (m *module) findSlot(cfg *Config) (uint, p11.TokenInfo, error) {
	slots, err := m.ctx.GetSlotList(true)
	if err != nil {
		return 0, p11.TokenInfo{}, wrap("C_GetSlotList", err)
	}
	var found []uint
	var infos []p11.TokenInfo
	for _, slot := range slots {
		if cfg.HasSlotID && slot != cfg.SlotID {
			continue
		}
		info, err := m.ctx.GetTokenInfo(slot)
		if err != nil {
			continue // the token was removed since C_GetSlotList
		}
		if info.Flags&p11.CKF_TOKEN_INITIALIZED == 0 {
			continue
		}
		if cfg.TokenLabel != "" && info.Label != cfg.TokenLabel ||
			cfg.TokenSerial != "" && info.SerialNumber != cfg.TokenSerial ||
			cfg.TokenManufacturer != "" && info.ManufacturerID != cfg.TokenManufacturer ||
			cfg.TokenModel != "" && info.Model != cfg.TokenModel {
			continue
		}
		found = append(found, slot)
		infos = append(infos, info)
	}
	switch len(found) {
	case 1:
		return found[0], infos[0], nil
	case 0:
		return 0, p11.TokenInfo{}, errorf("%w: no initialized token in %s matches %s (a module that was already initialized in this process may not see tokens created since by another process, such as softhsm2-util, until every store on it is closed)",
			ErrTokenNotFound, cfg.ModulePath, selector(cfg))
	}
	return 0, p11.TokenInfo{}, errorf("%w: %d tokens in %s match %s; add serial= to choose one", ErrTokenNotFound, len(found), cfg.ModulePath, selector(cfg))
}

// selector describes the token selectors of cfg, for errors.
func selector(cfg *Config) string {
	c := Config{TokenLabel: cfg.TokenLabel, TokenSerial: cfg.TokenSerial, TokenManufacturer: cfg.TokenManufacturer, TokenModel: cfg.TokenModel, SlotID: cfg.SlotID, HasSlotID: cfg.HasSlotID}
	return c.String()
}

// openToken returns the token state for slot, logging in with pin. The
// caller holds a reference to m.
func (m *module) openToken(slot uint, info p11.TokenInfo, pin string) (*token, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t := m.tokens[slot]
	if t == nil {
		algs, err := algorithms(m.ctx, slot)
		if err != nil {
			return nil, err
		}
		sh, err := m.ctx.OpenSession(slot, p11.CKF_SERIAL_SESSION|p11.CKF_RW_SESSION)
		if err != nil {
			return nil, wrap("C_OpenSession", err)
		}
		t = &token{mod: m, slot: slot, info: info, session: sh, algs: algs, objs: map[string]*object{}}
		if err := t.login(pin); err != nil {
			_ = m.ctx.CloseSession(sh)
			return nil, err
		}
		m.tokens[slot] = t
	} else if err := t.checkPIN(pin); err != nil {
		return nil, err
	}
	t.refs++
	return t, nil
}

// release drops one reference to t and logs out after the last.
func (t *token) release() {
	m := t.mod
	m.mu.Lock()
	defer m.mu.Unlock()
	t.refs--
	if t.refs > 0 {
		return
	}
	delete(m.tokens, t.slot)
	t.loginMu.Lock()
	defer t.loginMu.Unlock()
	if t.loggedIn {
		_ = m.ctx.Logout(t.session)
	}
	_ = m.ctx.CloseSession(t.session)
}

// login logs the process in to the token as the user, if the token needs
// it.
func (t *token) login(pin string) error {
	t.loginMu.Lock()
	defer t.loginMu.Unlock()
	return t.loginLocked(pin)
}

// loginLocked is login with t.loginMu held.
func (t *token) loginLocked(pin string) error {
	if t.info.Flags&p11.CKF_LOGIN_REQUIRED == 0 && pin == "" {
		return nil
	}
	if pin == "" && t.info.Flags&p11.CKF_PROTECTED_AUTHENTICATION_PATH == 0 {
		return errorf("pkcs11: token %q needs a PIN: give pin-source or pin-value: %w", t.info.Label, keystore.ErrAuth)
	}
	err := t.mod.ctx.Login(t.session, p11.CKU_USER, pin)
	switch rv(err) {
	case 0:
		if err != nil {
			return wrap("C_Login", err)
		}
	case p11.CKR_USER_ALREADY_LOGGED_IN:
		// Logged in by another library in this process; the PIN cannot
		// be checked.
	default:
		err = wrap("C_Login", err)
		if errors.Is(err, keystore.ErrAuth) {
			t.refused = errorf("pkcs11: token %q refused the PIN: %w", t.info.Label, err)
			return t.refused
		}
		return errorf("pkcs11: failed to log in to token %q: %w", t.info.Label, err)
	}
	t.pin = pin
	t.loggedIn = true
	t.refused = nil
	return nil
}

// needsLogin reports whether the process logged in to the token (and so
// must stay logged in to see its private objects).
func (t *token) needsLogin() bool {
	t.loginMu.Lock()
	defer t.loginMu.Unlock()
	return t.loggedIn
}

// sessionState returns the state of the login session, replacing the
// session if it was closed. t.loginMu is held.
func (t *token) sessionState() (uint, error) {
	ctx := t.mod.ctx
	info, err := ctx.GetSessionInfo(t.session)
	if err != nil {
		// The login session was closed: open another.
		sh, err := ctx.OpenSession(t.slot, p11.CKF_SERIAL_SESSION|p11.CKF_RW_SESSION)
		if err != nil {
			return 0, wrap("C_OpenSession", err)
		}
		t.session = sh
		if info, err = ctx.GetSessionInfo(sh); err != nil {
			return 0, wrap("C_GetSessionInfo", err)
		}
	}
	return info.State, nil
}

// userState reports whether a session state is logged in as the user.
func userState(state uint) bool {
	return state == p11.CKS_RO_USER_FUNCTIONS || state == p11.CKS_RW_USER_FUNCTIONS
}

// ensureLogin logs the process in again if the token was logged in and
// the module dropped the login, replacing the login session if it was
// closed. It reports whether it had to log in. After the token refused
// the PIN it makes no attempt: it returns the refusal, which wraps
// [keystore.ErrAuth] and the [*Error] with the token's CK_RV.
func (t *token) ensureLogin() (bool, error) {
	t.loginMu.Lock()
	defer t.loginMu.Unlock()
	if !t.loggedIn {
		return false, nil
	}
	state, err := t.sessionState()
	if err != nil {
		return false, err
	}
	if userState(state) {
		return false, nil
	}
	if t.refused != nil {
		return false, errorf("pkcs11: token %q logged the process out and refused the PIN at the last attempt; not trying it again (reopen the store, or call Store.Login): %w", t.info.Label, t.refused)
	}
	if err := t.loginLocked(t.pin); err != nil {
		return false, err
	}
	t.epoch.Add(1)
	return true, nil
}

// relogin is an explicit login with pin ([Store.Login], or a new store
// on a token whose PIN was refused): one C_Login at most, made only when
// the process is not logged in. When it is, pin must be the PIN of the
// login.
func (t *token) relogin(pin string) error {
	t.loginMu.Lock()
	defer t.loginMu.Unlock()
	return t.reloginLocked(pin)
}

// reloginLocked is relogin with t.loginMu held.
func (t *token) reloginLocked(pin string) error {
	state, err := t.sessionState()
	if err != nil {
		return err
	}
	if userState(state) && t.loggedIn {
		if subtle.ConstantTimeCompare([]byte(pin), []byte(t.pin)) != 1 {
			return errorf("pkcs11: token %q: the PIN differs from the one this process is logged in with: %w", t.info.Label, keystore.ErrAuth)
		}
		return nil
	}
	if err := t.loginLocked(pin); err != nil {
		return err
	}
	t.epoch.Add(1)
	return nil
}

// checkPIN checks the PIN of a second store on a token the process is
// already logged in to: PKCS#11 would accept any PIN then
// (CKR_USER_ALREADY_LOGGED_IN), so the PIN is compared with the one the
// login used.
func (t *token) checkPIN(pin string) error {
	t.loginMu.Lock()
	defer t.loginMu.Unlock()
	if !t.loggedIn {
		if pin == "" {
			return nil
		}
		return t.loginLocked(pin)
	}
	if t.refused != nil {
		// The caller supplies a PIN: one attempt.
		return t.reloginLocked(pin)
	}
	if subtle.ConstantTimeCompare([]byte(pin), []byte(t.pin)) != 1 {
		return errorf("pkcs11: token %q: the PIN differs from the one this process is logged in with: %w", t.info.Label, keystore.ErrAuth)
	}
	return nil
}

// object returns the shared state of the private key object labelled
// label with CKA_ID id, found at handle h in login epoch epoch.
func (t *token) object(label string, id []byte, h p11.ObjectHandle, epoch uint64) *object {
	t.objMu.Lock()
	defer t.objMu.Unlock()
	k := objectKey(label, id)
	o := t.objs[k]
	if o == nil || o.gone.Load() {
		o = &object{label: label, id: id}
		t.objs[k] = o
	}
	o.at.Store(&objectAt{handle: h, epoch: epoch})
	return o
}

// forget marks the object labelled label with CKA_ID id destroyed.
func (t *token) forget(label string, id []byte) {
	t.objMu.Lock()
	defer t.objMu.Unlock()
	k := objectKey(label, id)
	if o := t.objs[k]; o != nil {
		o.gone.Store(true)
		delete(t.objs, k)
	}
}

// pool is a store's set of sessions on its token.
type pool struct {
	tok   *token
	slots chan struct{}          // one per session that may be open
	idle  chan p11.SessionHandle // open sessions not in use
	done  chan struct{}          // closed by close

	mu     sync.Mutex
	closed bool
}

func newPool(t *token, max int) *pool {
	p := &pool{tok: t, slots: make(chan struct{}, max), idle: make(chan p11.SessionHandle, max), done: make(chan struct{})}
	for range max {
		p.slots <- struct{}{}
	}
	return p
}

// get returns a session, waiting while max sessions are in use.
func (p *pool) get(ctx context.Context) (p11.SessionHandle, error) {
	select {
	case <-p.slots:
	case <-p.done:
		return 0, keystore.ErrClosed
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	select {
	case sh := <-p.idle:
		return sh, nil
	default:
	}
	sh, err := p.tok.mod.ctx.OpenSession(p.tok.slot, p11.CKF_SERIAL_SESSION|p11.CKF_RW_SESSION)
	if err != nil {
		p.slots <- struct{}{}
		return 0, wrap("C_OpenSession", err)
	}
	return sh, nil
}

// put gives a session back; a session that failed is closed instead.
func (p *pool) put(sh p11.SessionHandle, err error) {
	p.mu.Lock()
	if p.closed || (err != nil && rv(err) != 0 && !harmless(err)) {
		p.mu.Unlock()
		_ = p.tok.mod.ctx.CloseSession(sh)
	} else {
		p.idle <- sh
		p.mu.Unlock()
	}
	p.slots <- struct{}{}
}

// harmless reports whether a failed call leaves its session usable: the
// codes for which no operation is left active.
func harmless(err error) bool {
	switch rv(err) {
	case p11.CKR_KEY_HANDLE_INVALID, p11.CKR_OBJECT_HANDLE_INVALID, p11.CKR_ATTRIBUTE_SENSITIVE,
		p11.CKR_ATTRIBUTE_TYPE_INVALID, p11.CKR_MECHANISM_INVALID, p11.CKR_TEMPLATE_INCONSISTENT:
		return true
	}
	return false
}

// flush closes the idle sessions, so that the next get opens a new one.
func (p *pool) flush() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		select {
		case sh := <-p.idle:
			_ = p.tok.mod.ctx.CloseSession(sh)
		default:
			return
		}
	}
}

// close closes the idle sessions and makes get fail; sessions in use are
// closed when they are put back.
func (p *pool) close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	close(p.done)
	p.mu.Unlock()
	p.flush() // put closes the sessions given back from now on
}
