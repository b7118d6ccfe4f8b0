package attest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var cacheT0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type cacheCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

var cacheSerial atomic.Int64

func cacheCertify(t *testing.T, cn string, parent *cacheCA, ca bool, notAfter time.Time) *cacheCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(cacheSerial.Add(1)), Subject: pkix.Name{CommonName: cn},
		NotBefore: cacheT0.Add(-time.Hour), NotAfter: notAfter, KeyUsage: x509.KeyUsageDigitalSignature,
	}
	if ca {
		tmpl.IsCA, tmpl.BasicConstraintsValid, tmpl.KeyUsage = true, true, x509.KeyUsageCertSign
	}
	issuer, signer := tmpl, key
	if parent != nil {
		issuer, signer = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, key.Public(), signer)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &cacheCA{cert: cert, key: key, pool: pool}
}

// counting is a VerifyFunc that verifies with crypto/x509 and counts its
// calls.
type countingVerify struct{ n atomic.Int64 }

func (c *countingVerify) verify(certs []*x509.Certificate, roots *x509.CertPool, now time.Time) ([]*x509.Certificate, error) {
	c.n.Add(1)
	inter := x509.NewCertPool()
	for _, cert := range certs[1:] {
		inter.AddCert(cert)
	}
	chains, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil {
		return nil, err
	}
	return chains[0], nil
}

func cacheDERs(certs ...*x509.Certificate) [][]byte {
	out := make([][]byte, len(certs))
	for i, c := range certs {
		out[i] = c.Raw
	}
	return out
}

func TestCacheServesOnlyWhatWasVerified(t *testing.T) {
	t.Parallel()
	far := cacheT0.Add(10 * 365 * 24 * time.Hour)
	root := cacheCertify(t, "AK Root", nil, true, far)
	other := cacheCertify(t, "Other Root", nil, true, far)
	inter := cacheCertify(t, "AK Intermediate", root, true, far)
	leaf := cacheCertify(t, "ak-1", inter, false, cacheT0.Add(24*time.Hour))
	chain := cacheDERs(leaf.cert, inter.cert)

	c := newChainCache(0, 0)
	var v countingVerify
	got, err := c.Verify(chain, root.pool, cacheT0, v.verify)
	require.NoError(t, err)
	require.Len(t, got, 3)
	require.Equal(t, root.cert.Raw, got[2].Raw)
	require.EqualValues(t, 1, v.n.Load())

	// Same bytes, same roots, within validity: from the cache.
	again, err := c.Verify(chain, root.pool, cacheT0.Add(time.Hour), v.verify)
	require.NoError(t, err)
	require.Equal(t, got, again)
	require.EqualValues(t, 1, v.n.Load())

	// Same bytes under other roots: verified again, and refused; the
	// refusal is not remembered, nor does it evict the entry for root.
	for range 2 {
		_, err = c.Verify(chain, other.pool, cacheT0, v.verify)
		var ua x509.UnknownAuthorityError
		require.ErrorAs(t, err, &ua)
	}
	require.EqualValues(t, 3, v.n.Load())
	require.Equal(t, 1, c.len())

	// Past the leaf's notAfter: not served; verified again and refused.
	_, err = c.Verify(chain, root.pool, cacheT0.Add(25*time.Hour), v.verify)
	var ci x509.CertificateInvalidError
	require.ErrorAs(t, err, &ci)
	require.Equal(t, x509.Expired, ci.Reason)
	require.EqualValues(t, 4, v.n.Load())
	require.Zero(t, c.len())

	// Before the leaf's notBefore: likewise.
	_, err = c.Verify(chain, root.pool, cacheT0, v.verify)
	require.NoError(t, err)
	_, err = c.Verify(chain, root.pool, cacheT0.Add(-2*time.Hour), v.verify)
	require.ErrorAs(t, err, &ci)

	// Another chain with the same leaf and another intermediate (an
	// impostor with the same name) is another entry, and refused.
	impostor := cacheCertify(t, "AK Intermediate", nil, true, far)
	_, err = c.Verify(cacheDERs(leaf.cert, impostor.cert), root.pool, cacheT0, v.verify)
	require.Error(t, err)
}

func TestCacheSharesParsedIntermediates(t *testing.T) {
	t.Parallel()
	far := cacheT0.Add(365 * 24 * time.Hour)
	root := cacheCertify(t, "AK Root", nil, true, far)
	a := cacheCertify(t, "ak-a", root, false, far)
	b := cacheCertify(t, "ak-b", root, false, far)
	c := newChainCache(0, 0)
	var v countingVerify
	ca, err := c.Verify(cacheDERs(a.cert, root.cert), root.pool, cacheT0, v.verify)
	require.NoError(t, err)
	cb, err := c.Verify(cacheDERs(b.cert, root.cert), root.pool, cacheT0, v.verify)
	require.NoError(t, err)
	require.EqualValues(t, 2, v.n.Load())
	require.Equal(t, a.cert.Raw, ca[0].Raw)
	require.Equal(t, b.cert.Raw, cb[0].Raw)
	require.Len(t, c.parsed, 1)
	// A caller's append does not write into the cached chain.
	grown := append(ca, b.cert)
	again, err := c.Verify(cacheDERs(a.cert, root.cert), root.pool, cacheT0, v.verify)
	require.NoError(t, err)
	require.Len(t, again, len(ca))
	require.NotSame(t, &grown[0], &again[0])
}

func TestCacheBoundsAndErrors(t *testing.T) {
	t.Parallel()
	far := cacheT0.Add(365 * 24 * time.Hour)
	root := cacheCertify(t, "AK Root", nil, true, far)
	c := newChainCache(2, 1)
	var v countingVerify
	for i := range 4 {
		leaf := cacheCertify(t, "ak", root, false, far)
		inter := cacheCertify(t, "spare", nil, true, far) // a stray extra certificate
		_, err := c.Verify(cacheDERs(leaf.cert, inter.cert), root.pool, cacheT0, v.verify)
		require.NoError(t, err, "chain %d", i)
	}
	require.Equal(t, 2, c.len())
	require.Len(t, c.parsed, 1)

	_, err := c.Verify([][]byte{root.cert.Raw, []byte("not a certificate")}, root.pool, cacheT0, v.verify)
	var pe *chainParseError
	require.ErrorAs(t, err, &pe)
	require.Equal(t, 1, pe.index)

	sentinel := errors.New("refused")
	_, err = c.Verify(cacheDERs(root.cert), root.pool, cacheT0, func([]*x509.Certificate, *x509.CertPool, time.Time) ([]*x509.Certificate, error) {
		return nil, sentinel
	})
	require.ErrorIs(t, err, sentinel)
}

func TestCacheConcurrent(t *testing.T) {
	t.Parallel()
	far := cacheT0.Add(365 * 24 * time.Hour)
	root := cacheCertify(t, "AK Root", nil, true, far)
	leaves := []*cacheCA{cacheCertify(t, "a", root, false, far), cacheCertify(t, "b", root, false, far), cacheCertify(t, "c", root, false, far)}
	c := newChainCache(2, 1)
	var v countingVerify
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 20 {
				l := leaves[(i+j)%len(leaves)]
				got, err := c.Verify(cacheDERs(l.cert, root.cert), root.pool, cacheT0, v.verify)
				if err != nil || got[0] != nil && string(got[0].Raw) != string(l.cert.Raw) {
					t.Errorf("chain %d: %v", j, err)
				}
			}
		})
	}
	wg.Wait()
}
