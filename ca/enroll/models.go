package enroll

import (
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"strconv"

	"github.com/ztmkit/ztm/attest"
	"github.com/ztmkit/ztm/identity"
)

// HardwareModel ties a device model, as its evidence names it (the EAT
// oemid and hwmodel claims), to the hardwareModuleName type (hwType) that
// its IDevIDs carry: the OID the manufacturer assigned to the model.
type HardwareModel struct {
	// OEMID is the model's oemid claim: 3 bytes (an IEEE OUI) or 16
	// (random).
	OEMID []byte
	// HWModel is the model's hwmodel claim, 1 to 32 bytes.
	HWModel []byte
	// Type is the hwType of the model's devices' hardwareModuleName.
	Type asn1.ObjectIdentifier
}

// hardwareModels is Config.HardwareModels indexed by (oemid, hwmodel).
type hardwareModels map[string]asn1.ObjectIdentifier

func modelKey(oemid, hwmodel []byte) string {
	return string(append(append([]byte{byte(len(oemid))}, oemid...), hwmodel...))
}

// newHardwareModels checks and indexes the models; nil when there are none.
func newHardwareModels(models []HardwareModel) (hardwareModels, error) {
	if len(models) == 0 {
		return nil, nil
	}
	m := make(hardwareModels, len(models))
	for i, hm := range models {
		switch {
		case len(hm.OEMID) != 3 && len(hm.OEMID) != 16:
			return nil, fmt.Errorf("%w: HardwareModels[%d]: an OEMID of %d bytes (want 3 or 16)", ErrInvalidConfig, i, len(hm.OEMID))
		case len(hm.HWModel) == 0 || len(hm.HWModel) > identity.MaxHardwareModelLen:
			return nil, fmt.Errorf("%w: HardwareModels[%d]: a HWModel of %d bytes (want 1 to %d)", ErrInvalidConfig, i, len(hm.HWModel), identity.MaxHardwareModelLen)
		}
		if err := (identity.HardwareModuleName{Type: hm.Type, SerialNumber: []byte{0}}).Validate(); err != nil {
			return nil, fmt.Errorf("%w: HardwareModels[%d]: %w", ErrInvalidConfig, i, err)
		}
		k := modelKey(hm.OEMID, hm.HWModel)
		if _, dup := m[k]; dup {
			return nil, fmt.Errorf("%w: HardwareModels[%d] repeats oemid %x hwmodel %q", ErrInvalidConfig, i, hm.OEMID, hm.HWModel)
		}
		m[k] = append(asn1.ObjectIdentifier(nil), hm.Type...)
	}
	return m, nil
}

// check refuses a request whose hardwareModuleName type is not the one of
// the model its evidence names, and evidence of a model not listed.
func (m hardwareModels) check(csr *x509.CertificateRequest, ev *attest.Evidence) error {
	if m == nil {
		return nil
	}
	var oemid, hwmodel []byte
	if ev != nil && ev.Claims != nil {
		oemid, hwmodel = ev.Claims.OEMID, ev.Claims.HWModel
	}
	want, ok := m[modelKey(oemid, hwmodel)]
	if !ok {
		return fmt.Errorf("the evidence names oemid %x hwmodel %s, not a model of Config.HardwareModels", oemid, strconv.Quote(string(hwmodel)))
	}
	hw, ok, err := identity.HardwareModuleNameFromExtensions(csr.Extensions)
	switch {
	case err != nil:
		return err
	case !ok:
		return fmt.Errorf("request carries no hardwareModuleName")
	case !hw.Type.Equal(want):
		return fmt.Errorf("hardwareModuleName type %v is not %v, the type of the evidence's model (oemid %x hwmodel %s): the device info names another model",
			hw.Type, want, oemid, strconv.Quote(string(hwmodel)))
	}
	return nil
}
