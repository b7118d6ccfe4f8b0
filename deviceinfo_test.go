package ztm_test

import (
	"context"
	"crypto/rand"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ztmkit/ztm"
	"github.com/ztmkit/ztm/ca/enroll"
	"github.com/ztmkit/ztm/examples/linesim"
	"github.com/ztmkit/ztm/identity"
)

// countingEnroller counts the nonces a station asks for.
type countingEnroller struct {
	enroll.Enroller
	nonces int
}

func (e *countingEnroller) Nonce(ctx context.Context) ([]byte, error) {
	e.nonces++
	return e.Enroller.Nonce(ctx)
}

// TestProvisionChecksDeviceInfoAgainstEvidence: device info that breaks
// the certificate-to-evidence rule is refused before a nonce is asked for,
// with an error naming the field, both values and the fix; device info
// whose OEM ID or model disagrees with the evidence is refused before
// enrollment. Nothing is issued or recorded for any of them.
func TestProvisionChecksDeviceInfoAgainstEvidence(t *testing.T) {
	l := newLine(t)
	ctx := context.Background()
	cm := l.Partners[linesim.ContractManufacturer]
	enr := &countingEnroller{Enroller: l.Service.Local(enroll.Requester{Certificate: cm.Chain[0]})}
	st, err := ztm.NewStation(ztm.StationConfig{Name: "cm", Key: cm.Key, CertChain: cm.Chain,
		Enroller: enr, Verifier: l.StationVerifier, StepStore: l.Chains})
	require.NoError(t, err)
	n := uint32(500)
	for _, tc := range []struct {
		name   string
		mut    func(*identity.DeviceInfo)
		stage  ztm.Stage
		field  string
		nonces int // the nonces the station may ask for
	}{
		{"hardwareModuleName serial is the serial number, not the UEID", func(i *identity.DeviceInfo) {
			i.HardwareModule.SerialNumber = []byte(i.SerialNumber)
		}, ztm.StageInfo, "HardwareModule.SerialNumber", 0},
		{"no hardwareModuleName", func(i *identity.DeviceInfo) {
			i.HardwareModule = identity.HardwareModuleName{}
		}, ztm.StageInfo, "HardwareModule.SerialNumber", 0},
		{"OEM ID a PEN, the evidence an IEEE OUI", func(i *identity.DeviceInfo) {
			i.OEMID = identity.NewPENOEMID(32473)
		}, ztm.StageAppraisal, "OEMID", 1},
		{"another IEEE OUI", func(i *identity.DeviceInfo) {
			i.OEMID = identity.NewIEEEOEMID([3]byte{0x00, 0x1b, 0x63})
		}, ztm.StageAppraisal, "OEMID", 1},
		{"another model", func(i *identity.DeviceInfo) {
			i.HardwareModel = []byte("gadget")
		}, ztm.StageAppraisal, "HardwareModel", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n++
			d, err := l.NewDevice(n, linesim.DeviceOptions{})
			require.NoError(t, err)
			info, err := d.Info(ctx)
			require.NoError(t, err)
			tc.mut(&info)
			f := &faulty{d: d, info: func(identity.DeviceInfo) (identity.DeviceInfo, error) { return info, nil },
				// The request carries what the device says, as a device
				// built from that info would make it.
				genKey: func([]byte) ([]byte, error) { return identity.CreateCSR(rand.Reader, d.Key(), info) }}
			head, err := l.Ledger.Head(ctx)
			require.NoError(t, err)
			enr.nonces = 0

			_, err = st.Provision(ctx, f)
			var pe *ztm.ProvisionError
			require.ErrorAs(t, err, &pe)
			require.Equal(t, tc.stage, pe.Stage, "%v", err)
			require.True(t, pe.Refused)
			require.ErrorIs(t, err, identity.ErrDeviceMismatch)
			var me *identity.MismatchError
			require.ErrorAs(t, err, &me)
			require.Equal(t, tc.field, me.Field)
			require.NotEmpty(t, me.Fix)
			require.LessOrEqual(t, enr.nonces, tc.nonces, "nonces asked for")
			h, err := l.Ledger.Head(ctx)
			require.NoError(t, err)
			require.Equal(t, head.Seq, h.Seq, "a certificate was issued")
			require.Nil(t, d.Chain())
		})
	}

	// Device info built by the identity helper provisions.
	d, err := l.NewDevice(600, linesim.DeviceOptions{})
	require.NoError(t, err)
	info, err := d.Info(ctx)
	require.NoError(t, err)
	built, err := identity.DeviceInfoFromUEID(info.UEID, info.SerialNumber, info.HardwareModule.Type)
	require.NoError(t, err)
	built.OEMID, built.HardwareModel = info.OEMID, info.HardwareModel
	_, err = st.Provision(ctx, &faulty{d: d, info: func(identity.DeviceInfo) (identity.DeviceInfo, error) { return built, nil }})
	require.NoError(t, err)
	require.NotEmpty(t, d.Chain())
}

// TestCARefusesAnotherModel: the registration authority, configured with
// its device models, refuses a request whose hardwareModuleName type names
// another model than the evidence does (device info the station cannot
// check, as it does not know the models), and issues for the right one.
func TestCARefusesAnotherModel(t *testing.T) {
	l := newLine(t)
	ctx := context.Background()
	svc, err := enroll.New(enroll.Config{Authority: l.Authority, Verifier: l.CAVerifier,
		HardwareModels: []enroll.HardwareModel{{OEMID: []byte{0x00, 0x00, 0x5e}, HWModel: []byte(linesim.Model), Type: linesim.ModelOID()}}})
	require.NoError(t, err)
	cm := l.Partners[linesim.ContractManufacturer]
	st, err := ztm.NewStation(ztm.StationConfig{Name: "cm", Key: cm.Key, CertChain: cm.Chain,
		Enroller: svc.Local(enroll.Requester{Certificate: cm.Chain[0]}), Verifier: l.StationVerifier, StepStore: l.Chains})
	require.NoError(t, err)

	d, err := l.NewDevice(700, linesim.DeviceOptions{})
	require.NoError(t, err)
	info, err := d.Info(ctx)
	require.NoError(t, err)
	info.HardwareModule.Type = append(linesim.ModelOID()[:8:8], 2) // the OEM's other model
	f := &faulty{d: d, info: func(identity.DeviceInfo) (identity.DeviceInfo, error) { return info, nil },
		genKey: func([]byte) ([]byte, error) { return identity.CreateCSR(rand.Reader, d.Key(), info) }}
	head, err := l.Ledger.Head(ctx)
	require.NoError(t, err)
	_, err = st.Provision(ctx, f)
	var pe *ztm.ProvisionError
	require.ErrorAs(t, err, &pe)
	require.Equal(t, ztm.StageEnroll, pe.Stage, "%v", err)
	var re *enroll.RefusalError
	require.ErrorAs(t, err, &re)
	require.Equal(t, enroll.ReasonEvidenceBinding, re.Reason)
	require.Contains(t, err.Error(), "1.3.6.1.4.1.32473.1.2")
	h, err := l.Ledger.Head(ctx)
	require.NoError(t, err)
	require.Equal(t, head.Seq, h.Seq, "a certificate was issued")

	d, err = l.NewDevice(701, linesim.DeviceOptions{})
	require.NoError(t, err)
	_, err = st.Provision(ctx, d)
	require.NoError(t, err)

	for name, m := range map[string]enroll.HardwareModel{
		"short OEMID": {OEMID: []byte{1}, HWModel: []byte("m"), Type: linesim.ModelOID()},
		"no HWModel":  {OEMID: []byte{0, 0, 0x5e}, Type: linesim.ModelOID()},
		"no Type":     {OEMID: []byte{0, 0, 0x5e}, HWModel: []byte("m")},
	} {
		_, err := enroll.New(enroll.Config{Authority: l.Authority, Verifier: l.CAVerifier, HardwareModels: []enroll.HardwareModel{m}})
		require.ErrorIs(t, err, enroll.ErrInvalidConfig, name)
	}
}
