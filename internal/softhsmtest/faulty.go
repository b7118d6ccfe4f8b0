package softhsmtest

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Faulty is a fault-injecting PKCS#11 module: a pass-through shared
// library over the SoftHSM2 module that can refuse logins, as a token
// does once its user PIN changed or locked, and report the token removed.
// It counts every C_Login call made through it. [NewFaulty] compiles it
// with gcc for one test; open stores with Module as their module path.
//
// The module forwards every function to SoftHSM2, so tokens made by [New]
// are seen through it, except that:
//
//   - with [Faulty.RefuseLogin] set, C_Login returns that code without
//     calling SoftHSM2;
//   - with [Faulty.Remove] set, C_OpenSession returns
//     CKR_TOKEN_NOT_PRESENT, and C_Login, C_GetSessionInfo,
//     C_FindObjectsInit, C_GetAttributeValue, C_SignInit, C_Sign and
//     C_GenerateKeyPair return CKR_DEVICE_REMOVED.
//
// Its settings are files in its directory, read at every call, so they
// take effect at once in the test process that loaded it.
type Faulty struct {
	Module string // the module's absolute file name
	dir    string
}

// NewFaulty compiles the fault-injecting module in a temporary directory
// of t. It fails the test when gcc, the SoftHSM2 module or the PKCS#11
// headers of github.com/miekg/pkcs11 are missing (skips it under -short).
func NewFaulty(t testing.TB) *Faulty {
	t.Helper()
	need(t, ModulePath, "softhsm2")
	gcc := need(t, "gcc", "gcc")
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/miekg/pkcs11").Output()
	if err != nil {
		t.Fatalf("softhsmtest: cannot find the PKCS#11 headers of github.com/miekg/pkcs11: %v", err)
	}
	include := strings.TrimSpace(string(out))
	dir := t.TempDir()
	src := filepath.Join(dir, "faulty.c")
	if err := os.WriteFile(src, []byte(faultyC), 0o600); err != nil {
		t.Fatal(err)
	}
	f := &Faulty{Module: filepath.Join(dir, "libfaulty.so"), dir: dir}
	cmd := exec.Command(gcc, "-shared", "-fPIC", "-O1", "-Wall", "-Werror",
		"-I", include,
		"-DREAL_MODULE="+strconv.Quote(ModulePath),
		"-DCTL_DIR="+strconv.Quote(dir),
		"-o", f.Module, src, "-ldl")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("softhsmtest: compiling the faulty module: %v\n%s", err, out)
	}
	return f
}

// RefuseLogin makes C_Login return code (a CK_RV such as
// CKR_PIN_INCORRECT, 0xa0, or CKR_PIN_LOCKED, 0xa4) without calling
// SoftHSM2; 0 lets logins through again.
func (f *Faulty) RefuseLogin(t testing.TB, code uint) {
	t.Helper()
	f.set(t, "login-rv", code != 0, strconv.FormatUint(uint64(code), 10))
}

// Remove reports the token removed (true) or present again (false).
func (f *Faulty) Remove(t testing.TB, removed bool) {
	t.Helper()
	f.set(t, "removed", removed, "1")
}

func (f *Faulty) set(t testing.TB, name string, on bool, value string) {
	t.Helper()
	p := filepath.Join(f.dir, name)
	if !on {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
		return
	}
	if err := os.WriteFile(p, []byte(value+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// Logins returns the CK_RV of every C_Login call made through the module
// so far, in order (0 for CKR_OK).
func (f *Faulty) Logins(t testing.TB) []uint {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(f.dir, "logins"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []uint
	for _, line := range strings.Fields(string(b)) {
		n, err := strconv.ParseUint(line, 10, 64)
		if err != nil {
			t.Fatalf("softhsmtest: malformed login log line %q", line)
		}
		out = append(out, uint(n))
	}
	return out
}

// String describes the module for test logs.
func (f *Faulty) String() string {
	return fmt.Sprintf("faulty PKCS#11 module %s over %s", f.Module, ModulePath)
}

// faultyC is the module's source. It includes the PKCS#11 headers that
// github.com/miekg/pkcs11 ships, with the platform macros it defines.
const faultyC = `
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include "pkcs11go.h"

static CK_FUNCTION_LIST list;
static CK_FUNCTION_LIST_PTR real;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

/* setting returns the number in CTL_DIR/name, or -1 without the file. */
static long setting(const char *name) {
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", CTL_DIR, name);
	FILE *f = fopen(path, "r");
	if (!f) return -1;
	long v = -1;
	if (fscanf(f, "%ld", &v) != 1) v = -1;
	fclose(f);
	return v;
}

static int removed(void) { return setting("removed") > 0; }

static void logLogin(CK_RV rv) {
	char path[4096];
	snprintf(path, sizeof path, "%s/logins", CTL_DIR);
	pthread_mutex_lock(&mu);
	FILE *f = fopen(path, "a");
	if (f) {
		fprintf(f, "%lu\n", (unsigned long)rv);
		fclose(f);
	}
	pthread_mutex_unlock(&mu);
}

static CK_RV f_Login(CK_SESSION_HANDLE s, CK_USER_TYPE u, CK_UTF8CHAR_PTR pin, CK_ULONG n) {
	CK_RV rv;
	long refuse = setting("login-rv");
	if (removed()) rv = CKR_DEVICE_REMOVED;
	else if (refuse > 0) rv = (CK_RV)refuse;
	else rv = real->C_Login(s, u, pin, n);
	logLogin(rv);
	return rv;
}

static CK_RV f_OpenSession(CK_SLOT_ID slot, CK_FLAGS fl, CK_VOID_PTR app, CK_NOTIFY notify, CK_SESSION_HANDLE_PTR s) {
	if (removed()) return CKR_TOKEN_NOT_PRESENT;
	return real->C_OpenSession(slot, fl, app, notify, s);
}

static CK_RV f_GetSessionInfo(CK_SESSION_HANDLE s, CK_SESSION_INFO_PTR info) {
	if (removed()) return CKR_DEVICE_REMOVED;
	return real->C_GetSessionInfo(s, info);
}

static CK_RV f_FindObjectsInit(CK_SESSION_HANDLE s, CK_ATTRIBUTE_PTR t, CK_ULONG n) {
	if (removed()) return CKR_DEVICE_REMOVED;
	return real->C_FindObjectsInit(s, t, n);
}

static CK_RV f_GetAttributeValue(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_PTR t, CK_ULONG n) {
	if (removed()) return CKR_DEVICE_REMOVED;
	return real->C_GetAttributeValue(s, o, t, n);
}

static CK_RV f_SignInit(CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k) {
	if (removed()) return CKR_DEVICE_REMOVED;
	return real->C_SignInit(s, m, k);
}

static CK_RV f_Sign(CK_SESSION_HANDLE s, CK_BYTE_PTR d, CK_ULONG n, CK_BYTE_PTR sig, CK_ULONG_PTR sn) {
	if (removed()) return CKR_DEVICE_REMOVED;
	return real->C_Sign(s, d, n, sig, sn);
}

static CK_RV f_GenerateKeyPair(CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_ATTRIBUTE_PTR pt, CK_ULONG pn,
		CK_ATTRIBUTE_PTR vt, CK_ULONG vn, CK_OBJECT_HANDLE_PTR ph, CK_OBJECT_HANDLE_PTR vh) {
	if (removed()) return CKR_DEVICE_REMOVED;
	return real->C_GenerateKeyPair(s, m, pt, pn, vt, vn, ph, vh);
}

CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR out) {
	if (!out) return CKR_ARGUMENTS_BAD;
	pthread_mutex_lock(&mu);
	if (!real) {
		void *h = dlopen(REAL_MODULE, RTLD_NOW | RTLD_LOCAL);
		CK_C_GetFunctionList get = h ? (CK_C_GetFunctionList)dlsym(h, "C_GetFunctionList") : NULL;
		if (!get || get(&real) != CKR_OK) {
			real = NULL;
			pthread_mutex_unlock(&mu);
			return CKR_GENERAL_ERROR;
		}
		list = *real;
		list.C_GetFunctionList = C_GetFunctionList;
		list.C_Login = f_Login;
		list.C_OpenSession = f_OpenSession;
		list.C_GetSessionInfo = f_GetSessionInfo;
		list.C_FindObjectsInit = f_FindObjectsInit;
		list.C_GetAttributeValue = f_GetAttributeValue;
		list.C_SignInit = f_SignInit;
		list.C_Sign = f_Sign;
		list.C_GenerateKeyPair = f_GenerateKeyPair;
	}
	pthread_mutex_unlock(&mu);
	*out = &list;
	return CKR_OK;
}
`
