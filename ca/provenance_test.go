package ca_test

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/identity/keystore"
)

func TestKeyProvenanceNames(t *testing.T) {
	t.Parallel()
	for p, name := range map[ca.KeyProvenance]string{
		ca.ProvenanceUnrecorded: "unrecorded", ca.ProvenanceUnattested: "unattested",
		ca.ProvenanceEATConfirmed: "eat-cnf", ca.ProvenanceTPMCertified: "tpm-certified",
		ca.ProvenanceInjected: "injected",
	} {
		require.Equal(t, name, p.String())
		got, ok := ca.ParseKeyProvenance(name)
		require.True(t, ok, name)
		require.Equal(t, p, got)
		require.Equal(t, p == ca.ProvenanceEATConfirmed || p == ca.ProvenanceTPMCertified, p.DeviceAttested(), name)
	}
	require.Equal(t, "KeyProvenance(5)", ca.KeyProvenance(5).String())
	for _, s := range []string{"", "device-attested", "Injected", "KeyProvenance(5)"} {
		_, ok := ca.ParseKeyProvenance(s)
		require.False(t, ok, s)
	}
}

// TestKeyProvenanceRecorded: the provenance a request carries is recorded
// with its issuance; an injected key is refused (typed, nothing issued,
// nothing recorded) unless a station authorized for key injection asks,
// and an unknown provenance is refused. Checked.SetKeyProvenance applies
// the same rule after Check.
func TestKeyProvenanceRecorded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := newPKI(t, keystore.ES256, nil)
	stationFor := func(steps ...string) *x509.Certificate {
		der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "station"}}, deviceKey(t, "P-256"))
		require.NoError(t, err)
		c, err := p.auth.Issue(ctx, &ca.Request{CSR: der, Profile: "station", Requester: "ceremony",
			Station: &ca.StationAuthorization{Steps: steps, Profiles: []string{"idevid"}}})
		require.NoError(t, err)
		return c
	}
	injector := stationFor("enrollment", ca.StepKeyInjection)
	plain := stationFor("enrollment")

	n := 0
	req := func(prov ca.KeyProvenance, station *x509.Certificate) *ca.Request {
		n++
		r := &ca.Request{CSR: idevidCSR(t, deviceKey(t, "P-256"), "PROV-"+string(rune('A'+n))), Profile: "idevid", KeyProvenance: prov}
		if station != nil {
			r.RequesterCertificate = station
		} else {
			r.Requester = "line-1"
		}
		return r
	}
	for _, tc := range []struct {
		name    string
		prov    ca.KeyProvenance
		station *x509.Certificate
	}{
		{"unrecorded", ca.ProvenanceUnrecorded, nil},
		{"unattested", ca.ProvenanceUnattested, nil},
		{"eat-cnf", ca.ProvenanceEATConfirmed, plain},
		{"tpm-certified", ca.ProvenanceTPMCertified, nil},
		{"injected by an authorized station", ca.ProvenanceInjected, injector},
	} {
		cert, err := p.auth.Issue(ctx, req(tc.prov, tc.station))
		require.NoError(t, err, tc.name)
		st, err := p.ledger.Lookup(ctx, cert.SerialNumber)
		require.NoError(t, err, tc.name)
		require.Equal(t, tc.prov, st.Issuance.KeyProvenance, tc.name)
		if tc.prov == ca.ProvenanceInjected {
			// The station that sealed the key is the record's requester.
			require.Equal(t, injector.SerialNumber, st.Issuance.RequesterSerial)
		}
	}

	before := p.records(t)
	for _, tc := range []struct {
		name    string
		prov    ca.KeyProvenance
		station *x509.Certificate
		want    error
	}{
		{"injected, no station", ca.ProvenanceInjected, nil, ca.ErrNotAuthorized},
		{"injected, station not authorized to inject", ca.ProvenanceInjected, plain, ca.ErrNotAuthorized},
		{"unknown", ca.KeyProvenance(5), injector, ca.ErrInvalidRequest},
	} {
		cert, err := p.auth.Issue(ctx, req(tc.prov, tc.station))
		require.ErrorIs(t, err, tc.want, tc.name)
		require.Nil(t, cert, tc.name)
		if tc.want == ca.ErrNotAuthorized {
			var ae *ca.AuthorizationError
			require.ErrorAs(t, err, &ae, tc.name)
		}
		// The same through Check, then SetKeyProvenance.
		c, err := p.auth.Check(ctx, req(ca.ProvenanceUnrecorded, tc.station))
		require.NoError(t, err, tc.name)
		require.ErrorIs(t, c.SetKeyProvenance(tc.prov), tc.want, tc.name)
	}
	require.Equal(t, before, p.records(t), "refusals recorded something")

	c, err := p.auth.Check(ctx, req(ca.ProvenanceUnrecorded, injector))
	require.NoError(t, err)
	require.NoError(t, c.SetKeyProvenance(ca.ProvenanceInjected))
	cert, err := p.auth.IssueChecked(ctx, c)
	require.NoError(t, err)
	st, err := p.ledger.Lookup(ctx, cert.SerialNumber)
	require.NoError(t, err)
	require.Equal(t, ca.ProvenanceInjected, st.Issuance.KeyProvenance)
	_, err = p.ledger.Verify(ctx)
	require.NoError(t, err)
}
