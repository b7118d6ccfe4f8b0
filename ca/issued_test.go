package ca_test

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/identity/keystore"
)

// TestIssuedCertificateIsParsed holds the certificate Issue returns, built
// from what the CA signed rather than parsed again, to what
// x509.ParseCertificate makes of its DER: every field, for every profile,
// CA key algorithm and kind of device key.
func TestIssuedCertificateIsParsed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, alg := range []keystore.Algorithm{keystore.ES256, keystore.ES384, keystore.EdDSA, keystore.PS256} {
		t.Run(alg.String(), func(t *testing.T) {
			p := newPKI(t, alg, func(c *ca.Config) {
				c.CRLDistributionPoint = "http://127.0.0.1:8080/crl"
				c.Time = func() time.Time { return testNow.Add(1234567 * time.Nanosecond) }
			})
			uri, err := url.Parse("urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66")
			require.NoError(t, err)
			reqs := map[string]func(key string) *ca.Request{
				"idevid": func(key string) *ca.Request {
					return &ca.Request{CSR: newDeviceCSR(t, deviceKey(t, key), "PARSE"), Profile: "idevid", Requester: "line"}
				},
				"ldevid": func(key string) *ca.Request {
					der, err := x509.CreateCertificateRequest(nil, &x509.CertificateRequest{
						Subject:  pkix.Name{CommonName: "sensor-7", Organization: []string{"Example"}, Country: []string{"DE"}},
						DNSNames: []string{"sensor-7.line1.example.com", "sensor-7.example.net"},
						URIs:     []*url.URL{uri},
					}, deviceKey(t, key))
					require.NoError(t, err)
					return &ca.Request{CSR: der, Profile: "ldevid", Requester: "line"}
				},
				"station": func(key string) *ca.Request {
					return &ca.Request{
						CSR:     csr(t, deviceKey(t, key), pkix.Name{CommonName: "Station 3", OrganizationalUnit: []string{"Line 1"}}),
						Profile: "station", Requester: "admin",
						Station: &ca.StationAuthorization{Steps: []string{"provision"}, Profiles: []string{"idevid"}},
					}
				},
				"ak": func(key string) *ca.Request {
					return &ca.Request{CSR: csr(t, deviceKey(t, key), pkix.Name{SerialNumber: "AK-" + key}), Profile: "ak", Requester: "line"}
				},
			}
			before := ca.IssuedParsed()
			for profile, req := range reqs {
				for _, key := range []string{"P-256", "P-384", "Ed25519", "RSA-3072"} {
					got, err := p.auth.Issue(ctx, req(key))
					require.NoError(t, err, "%s %s", profile, key)
					want, err := x509.ParseCertificate(got.Raw)
					require.NoError(t, err)
					require.Equal(t, want, got, "%s %s", profile, key)
					require.NoError(t, got.CheckSignatureFrom(p.inter))
				}
			}
			require.Equal(t, before, ca.IssuedParsed(), "an issued certificate was parsed in full")
		})
	}
}
