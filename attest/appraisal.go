package attest

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ztmkit/ztm/identity"
)

// ReferenceValues are what a verifier expects of one device model, named by
// its (OEMID, HWModel) pair. The zero value of every check is the strict
// one: debug disabled, secure boot on.
type ReferenceValues struct {
	// OEMID and HWModel name the model; both are required.
	OEMID   []byte
	HWModel []byte
	// Measurements are the expected component digests. Each must appear
	// in the evidence with the same name, algorithm and digest; a
	// component in the evidence that is not listed here gives a warning.
	Measurements []Measurement
	// SWName, if set, must equal the swname claim.
	SWName string
	// MinSWVersion, if set, is the lowest acceptable swversion. Versions
	// are compared as dot-separated non-negative integers ("1.10.2" is
	// above "1.9"); a version that is not of that form fails the check.
	MinSWVersion string
	// MinDebugStatus is the least locked-down dbgstat accepted. Zero
	// means [DebugDisabled]. A missing dbgstat claim always fails.
	MinDebugStatus DebugStatus
	// AllowSecureBootOff accepts evidence without oemboot = true (secure boot).
	//
	// WARNING: a device that does not boot securely proves nothing about
	// the software it runs. Set it only for development boards.
	AllowSecureBootOff bool
	// AllowDebug accepts any dbgstat, including enabled (MinDebugStatus
	// is then ignored).
	//
	// WARNING: an open debug port lets anyone rewrite the device. Set it
	// only for development boards.
	AllowDebug bool
	// Submods are the reference values of the device's submodules, by
	// submodule name (their OEMID and HWModel are not used). Each listed
	// submodule must be present in the evidence and is appraised like the
	// device; a submodule in the evidence that is not listed gives a
	// warning.
	Submods map[string]*ReferenceValues
}

// clone returns a deep copy of rv, so that a verifier's policy does not
// change with the caller's slices. Submodules deeper than NewVerifier
// accepts are left shared (it refuses them), so that a cycle ends.
func (rv *ReferenceValues) clone(depth int) *ReferenceValues {
	c := *rv
	c.OEMID, c.HWModel = bytes.Clone(rv.OEMID), bytes.Clone(rv.HWModel)
	if rv.Measurements != nil {
		c.Measurements = make([]Measurement, len(rv.Measurements))
		for i, m := range rv.Measurements {
			m.Digest = bytes.Clone(m.Digest)
			c.Measurements[i] = m
		}
	}
	if rv.Submods != nil {
		c.Submods = make(map[string]*ReferenceValues, len(rv.Submods))
		for name, s := range rv.Submods {
			if s != nil && depth < maxSubmodDepth+1 {
				s = s.clone(depth + 1)
			}
			c.Submods[name] = s
		}
	}
	return &c
}

type refKey struct{ oemid, hwmodel string }

// reference is a model's reference values, prepared for appraisal.
type reference struct {
	*ReferenceValues
	minVersion []uint64
	subs       map[string]*reference
}

// prepare checks rv and parses what appraisal needs.
func prepare(rv *ReferenceValues, depth int) (*reference, error) {
	if depth > maxSubmodDepth {
		return nil, fmt.Errorf("submodules nested deeper than %d", maxSubmodDepth)
	}
	if rv.MinDebugStatus != 0 && !rv.MinDebugStatus.Valid() {
		return nil, fmt.Errorf("MinDebugStatus %d out of range", int(rv.MinDebugStatus))
	}
	ref := &reference{ReferenceValues: rv}
	if rv.MinSWVersion != "" {
		var err error
		if ref.minVersion, err = parseVersion(rv.MinSWVersion); err != nil {
			return nil, err
		}
	}
	for _, m := range rv.Measurements {
		if m.Name == "" || len(m.Digest) == 0 {
			return nil, errors.New("measurement without name or digest")
		}
	}
	for name, sub := range rv.Submods {
		if sub == nil {
			return nil, fmt.Errorf("submodule %q: nil reference values", name)
		}
		p, err := prepare(sub, depth+1)
		if err != nil {
			return nil, fmt.Errorf("submodule %q: %w", name, err)
		}
		if ref.subs == nil {
			ref.subs = make(map[string]*reference, len(rv.Submods))
		}
		ref.subs[name] = p
	}
	return ref, nil
}

func indexReferenceValues(rvs []ReferenceValues) (map[refKey]*reference, error) {
	out := make(map[refKey]*reference, len(rvs))
	for i := range rvs {
		rv := &rvs[i]
		if len(rv.OEMID) == 0 || len(rv.HWModel) == 0 {
			return nil, fmt.Errorf("attest: reference values %d: OEMID and HWModel are required", i)
		}
		ref, err := prepare(rv, 0)
		if err != nil {
			return nil, fmt.Errorf("attest: reference values %d: %w", i, err)
		}
		k := refKey{string(rv.OEMID), string(rv.HWModel)}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("attest: reference values %d repeat oemid %x hwmodel %x", i, rv.OEMID, rv.HWModel)
		}
		out[k] = ref
	}
	return out, nil
}

func parseVersion(s string) ([]uint64, error) {
	if s == "" {
		return nil, errors.New("empty version")
	}
	parts := strings.Split(s, ".")
	out := make([]uint64, len(parts))
	for i, p := range parts {
		n, err := strconv.ParseUint(p, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("version %q is not dot-separated integers", s)
		}
		out[i] = n
	}
	return out, nil
}

// compareVersions returns -1, 0 or 1; missing trailing parts count as 0.
func compareVersions(a, b []uint64) int {
	for i := 0; i < len(a) || i < len(b); i++ {
		var x, y uint64
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}

// finding is one failed or doubtful check.
type finding struct {
	reason Reason
	detail string
}

// appraiseClaims checks claims against rv and returns the trust vector, the
// findings and whether any is a contraindication; it is the appraisal
// [EATVerifier.Verify] applies once the evidence is authentic and fresh.
func appraiseClaims(c *Claims, rv *reference) (TrustVector, []finding, bool) {
	tv := TrustVector{InstanceIdentity: TrustRecognizedInstance, Hardware: TrustGenuineHardware}
	var fs []finding
	contra := false

	// Configuration: debug and secure boot.
	tv.Configuration = TrustApprovedConfig
	if !rv.AllowDebug {
		min := rv.MinDebugStatus
		if min == 0 {
			min = DebugDisabled
		}
		switch {
		case c.DebugStatus == nil:
			fs = append(fs, finding{ReasonDebugEnabled, "no dbgstat claim"})
			tv.Configuration, contra = TrustUnsupportableConfig, true
		case *c.DebugStatus < min:
			fs = append(fs, finding{ReasonDebugEnabled, fmt.Sprintf("dbgstat %v, want at least %v", *c.DebugStatus, min)})
			tv.Configuration, contra = TrustUnsupportableConfig, true
		}
	}
	if !rv.AllowSecureBootOff && (c.SecureBoot == nil || !*c.SecureBoot) {
		fs = append(fs, finding{ReasonSecureBootOff, "oemboot (secure boot) is not true"})
		tv.Configuration, contra = TrustUnsupportableConfig, true
	}

	// Executables: measurements and software version.
	tv.Executables = TrustApprovedRuntime
	for _, want := range rv.Measurements {
		got, ok := findMeasurement(c.Measurements, want.Name)
		switch {
		case !ok:
			fs = append(fs, finding{ReasonMeasurementMismatch, fmt.Sprintf("no measurement of %q", want.Name)})
			tv.Executables, contra = TrustContraindicatedRuntime, true
		case got.Alg != want.Alg || !bytes.Equal(got.Digest, want.Digest):
			fs = append(fs, finding{ReasonMeasurementMismatch, fmt.Sprintf("measurement of %q is %d:%x, want %d:%x", want.Name, got.Alg, got.Digest, want.Alg, want.Digest)})
			tv.Executables, contra = TrustContraindicatedRuntime, true
		}
	}
	for _, got := range c.Measurements {
		if _, ok := findMeasurement(rv.Measurements, got.Name); !ok && tv.Executables == TrustApprovedRuntime {
			tv.Executables = TrustUnrecognizedRuntime
			fs = append(fs, finding{ReasonMeasurementMismatch, fmt.Sprintf("measurement of %q has no reference value (warning)", got.Name)})
		}
	}
	if rv.SWName != "" && c.SWName != rv.SWName {
		fs = append(fs, finding{ReasonSoftwareVersion, fmt.Sprintf("swname %q, want %q", c.SWName, rv.SWName)})
		tv.Executables, contra = TrustContraindicatedRuntime, true
	}
	if rv.MinSWVersion != "" {
		min := rv.minVersion
		got, err := parseVersion(c.SWVersion)
		switch {
		case c.SWVersion == "":
			fs = append(fs, finding{ReasonSoftwareVersion, "no swversion claim"})
			tv.Executables, contra = TrustContraindicatedRuntime, true
		case err != nil:
			fs = append(fs, finding{ReasonSoftwareVersion, err.Error()})
			tv.Executables, contra = TrustContraindicatedRuntime, true
		case compareVersions(got, min) < 0:
			fs = append(fs, finding{ReasonSoftwareVersion, fmt.Sprintf("swversion %s is below the minimum %s", c.SWVersion, rv.MinSWVersion)})
			tv.Executables, contra = TrustContraindicatedRuntime, true
		}
	}
	// Submodules: each one the reference lists is appraised like the
	// device, and its findings count for the device.
	names := make([]string, 0, len(rv.subs))
	for name := range rv.subs {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		sc, ok := c.Submods[name]
		if !ok {
			fs = append(fs, finding{ReasonMeasurementMismatch, fmt.Sprintf("no submodule %q", name)})
			tv.Executables, contra = TrustContraindicatedRuntime, true
			continue
		}
		stv, sfs, scontra := appraiseClaims(sc, rv.subs[name])
		for _, f := range sfs {
			fs = append(fs, finding{f.reason, fmt.Sprintf("submodule %q: %s", name, f.detail)})
		}
		if scontra {
			contra = true
		}
		tv = worstVector(tv, stv)
	}
	for name := range c.Submods {
		if _, ok := rv.subs[name]; !ok {
			fs = append(fs, finding{ReasonMeasurementMismatch, fmt.Sprintf("submodule %q has no reference values (warning)", name)})
			if tv.Executables.Tier() < StatusWarning {
				tv.Executables = TrustUnrecognizedRuntime
			}
		}
	}
	return tv, fs, contra
}

// worstVector keeps, entry by entry, the claim of the worse tier.
func worstVector(a, b TrustVector) TrustVector {
	ae, be := a.entries(), b.entries()
	for i := range ae {
		if be[i].Tier() > ae[i].Tier() {
			*ae[i] = *be[i]
		}
	}
	return a
}

func findMeasurement(ms []Measurement, name string) (Measurement, bool) {
	for _, m := range ms {
		if m.Name == name {
			return m, true
		}
	}
	return Measurement{}, false
}

// requiredClaims checks the claims every appraisal needs.
func requiredClaims(c *Claims, needNonce bool) *VerificationError {
	var missing []string
	if needNonce && c.Nonce == nil {
		missing = append(missing, "eat_nonce")
	}
	if c.UEID == nil {
		missing = append(missing, "ueid")
	}
	if c.OEMID == nil {
		missing = append(missing, "oemid")
	}
	if c.HWModel == nil {
		missing = append(missing, "hwmodel")
	}
	if len(missing) > 0 {
		return verr(ReasonMissingClaim, nil, "%s", strings.Join(missing, ", "))
	}
	// The device's own ueid must be one of the types RFC 9711 defines,
	// well formed (a relying party otherwise treats it as opaque bytes).
	if _, err := identity.UEIDFromBytes(c.UEID); err != nil {
		return verr(ReasonMalformed, err, "ueid")
	}
	return nil
}

// appraise turns authentic evidence into a Result.
func (v *EATVerifier) appraise(now time.Time, ev *Evidence) (*Result, error) {
	c := ev.Claims
	if e := requiredClaims(c, v.cfg.Nonces != nil); e != nil {
		return v.refusal(now, nil, ev, e), e
	}
	if v.cfg.Nonces != nil {
		if e := v.cfg.Nonces.consume(c.Nonce); e != nil {
			return v.refusal(now, nil, ev, e), e
		}
	}
	rv := v.refs[refKey{string(c.OEMID), string(c.HWModel)}]
	if rv == nil {
		e := verr(ReasonNoReferenceValues, nil, "oemid %x hwmodel %x", c.OEMID, c.HWModel)
		return v.refusal(now, nil, ev, e), e
	}
	tv, fs, contra := appraiseClaims(c, rv)
	r := v.newResult(now, ev)
	a := r.Submods[v.cfg.Submod]
	a.TrustVector = tv
	for _, f := range fs {
		a.Reasons = append(a.Reasons, f.reason.String()+": "+f.detail)
	}
	a.Status = tv.Status()
	if contra {
		a.Status = StatusContraindicated
		var details []string
		first := Reason(-1)
		for _, f := range fs {
			if strings.HasSuffix(f.detail, "(warning)") {
				continue
			}
			if first < 0 {
				first = f.reason
			}
			details = append(details, f.detail)
		}
		return r, verr(first, nil, "%s", strings.Join(details, "; "))
	}
	return r, nil
}

func (v *EATVerifier) newResult(now time.Time, ev *Evidence) *Result {
	a := &Appraisal{PolicyID: v.cfg.PolicyID}
	r := &Result{
		Profile:    EARProfile,
		IssuedAt:   now.Truncate(time.Second),
		VerifierID: v.cfg.VerifierID,
		Submods:    map[string]*Appraisal{v.cfg.Submod: a},
	}
	if ev != nil {
		a.EvidenceDigest = ev.Digest
		r.Evidence = ev
		if ev.Claims != nil {
			r.Nonce = ev.Claims.Nonce
			a.UEID = ev.Claims.UEID
		}
	}
	return r
}

// refusal builds the contraindicated Result for a refused token. raw is the
// evidence when it could not be decoded (to digest it), ev the decoded
// evidence otherwise.
func (v *EATVerifier) refusal(now time.Time, raw []byte, ev *Evidence, e *VerificationError) *Result {
	r := v.newResult(now, ev)
	a := r.Submods[v.cfg.Submod]
	if ev == nil && raw != nil && e.Reason != ReasonTooLarge {
		d := sha256.Sum256(raw)
		a.EvidenceDigest = d[:]
	}
	a.TrustVector = refusalVector(e.Reason)
	a.Status = StatusContraindicated
	a.Reasons = []string{e.Reason.String() + ": " + e.Detail}
	return r
}

func refusalVector(r Reason) TrustVector {
	var tv TrustVector
	switch r {
	case ReasonMissingClaim, ReasonNoReferenceValues:
		tv.InstanceIdentity = TrustUnrecognizedInstance
		if r == ReasonNoReferenceValues {
			tv.Hardware = TrustUnrecognizedHardware
		}
	case ReasonNonceUnknown, ReasonNonceReused, ReasonNonceExpired, ReasonExpired, ReasonNotYetValid:
		tv.InstanceIdentity = TrustUntrustworthyInstance
	default:
		tv.SetAll(TrustCryptoValidationFailed)
	}
	return tv
}
