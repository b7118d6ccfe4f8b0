package est_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/ztmkit/ztm/internal/estline"
	"github.com/ztmkit/ztm/transport/est"
)

// FuzzDecodeCSRBody feeds the server's body decoder: it must refuse
// everything but base64 of a DER request with a valid self-signature, with
// an error wrapping ErrBadRequest, and never panic.
func FuzzDecodeCSRBody(f *testing.F) {
	d := newDevice(f, 0)
	good := d.CSR(f, "SN-FUZZ")
	f.Add(b64(good))
	f.Add([]byte(base64.StdEncoding.EncodeToString(good)[:40] + "\r\n" + base64.StdEncoding.EncodeToString(good)[40:]))
	f.Add([]byte("!!!"))
	f.Add([]byte(""))
	f.Add(b64([]byte{0x30, 0x00}))
	f.Add(b64(append(bytes.Clone(good), 0)))
	bad := bytes.Clone(good)
	bad[len(bad)-2] ^= 1
	f.Add(b64(bad))
	f.Fuzz(func(t *testing.T, body []byte) {
		der, csr, err := est.DecodeCSRBody(body)
		if err != nil {
			if !errors.Is(err, est.ErrBadRequest) {
				t.Fatalf("error %v does not wrap ErrBadRequest", err)
			}
			return
		}
		if csr.CheckSignature() != nil || !bytes.Equal(csr.Raw, der) {
			t.Fatal("accepted a request that does not verify")
		}
	})
}

// FuzzParseCSRAttrs feeds the client's csrattrs parser; what it accepts
// must re-encode to the same bytes.
func FuzzParseCSRAttrs(f *testing.F) {
	seed, _ := est.MarshalCSRAttrs([]est.CSRAttr{{OID: []int{1, 2, 840, 113549, 1, 9, 7}}, {OID: []int{2, 5, 4, 5}},
		{OID: []int{1, 2, 840, 113549, 1, 9, 14}, Values: [][]byte{{0x06, 0x03, 0x55, 0x1d, 0x11}}}})
	f.Add(seed)
	f.Add([]byte{0x30, 0x00})
	f.Add([]byte{0x30, 0x02, 0x06, 0x00})
	f.Fuzz(func(t *testing.T, der []byte) {
		attrs, err := est.ParseCSRAttrs(der)
		if err != nil {
			if !errors.Is(err, est.ErrBadResponse) {
				t.Fatalf("error %v does not wrap ErrBadResponse", err)
			}
			return
		}
		back, err := est.MarshalCSRAttrs(attrs)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(back, der) {
			t.Fatalf("re-encoding differs: %x vs %x", back, der)
		}
	})
}

// FuzzServerEnroll sends arbitrary bodies, content types and evidence
// headers to simpleenroll (HTTP Basic, no TLS, through the handler
// directly): the answer is one of the refusal codes with a short body, and
// nothing is ever issued.
func FuzzServerEnroll(f *testing.F) {
	e := newEnv(f, estline.Config{NoServer: true, Server: func(c *est.ServerConfig) {
		c.BasicAuth = []est.BasicCredential{{Username: "u", Password: "p", Profiles: []string{"idevid"}}}
	}})
	d := e.Devices[0]
	good := d.CSR(f, "SN-FZ")
	f.Add(b64(good), est.MediaTypePKCS10, "")
	f.Add(b64(good), est.MediaTypePKCS10, "AAAA")
	f.Add([]byte("%%%"), est.MediaTypePKCS10, "")
	f.Add(b64(good), "text/plain", "")
	f.Add(b64(good), "application/pkcs10; charset=x", "!!")
	before := e.Issuances()
	f.Fuzz(func(t *testing.T, body []byte, ctype, evidence string) {
		req := httptest.NewRequest(http.MethodPost, "/.well-known/est/simpleenroll", bytes.NewReader(body))
		req.Header.Set("Content-Type", ctype)
		if evidence != "" {
			req.Header.Set(est.HeaderEvidence, evidence)
		}
		req.SetBasicAuth("u", "p")
		w := httptest.NewRecorder()
		e.Server.ServeHTTP(w, req)
		switch w.Code {
		case 400, 403, 413, 415:
		default:
			t.Fatalf("status %d: %s", w.Code, w.Body.String())
		}
		if w.Body.Len() > 200 {
			t.Fatalf("long error body")
		}
		if got := e.Issuances(); got != before {
			sum := sha256.Sum256(body)
			t.Fatalf("fuzzed request %x issued a certificate", sum[:4])
		}
	})
}
