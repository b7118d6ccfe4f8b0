package ztm_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"testing"

	"github.com/ztmkit/ztm"
	"github.com/ztmkit/ztm/ca/enroll"
	"github.com/ztmkit/ztm/examples/linesim"
	"github.com/ztmkit/ztm/identity"
	"github.com/ztmkit/ztm/identity/keystore"
	"github.com/ztmkit/ztm/transport/est"
)

// faulty wraps a simulated device and breaks one of its answers. It hides
// the device's optional interfaces.
type faulty struct {
	d        *linesim.Device
	info     func(identity.DeviceInfo) (identity.DeviceInfo, error)
	attest   func([]byte) ([]byte, error)
	genKey   func([]byte) ([]byte, error)
	noKeyGen bool
}

func (f *faulty) Info(ctx context.Context) (identity.DeviceInfo, error) {
	i, err := f.d.Info(ctx)
	if f.info != nil {
		return f.info(i)
	}
	return i, err
}

func (f *faulty) Attest(ctx context.Context, nonce []byte) ([]byte, error) {
	ev, err := f.d.Attest(ctx, nonce)
	if f.attest != nil && err == nil {
		return f.attest(ev)
	}
	return ev, err
}

func (f *faulty) GenerateKey(ctx context.Context, alg keystore.Algorithm) ([]byte, error) {
	if f.noKeyGen {
		return nil, ztm.ErrKeyGenerationUnsupported
	}
	csr, err := f.d.GenerateKey(ctx, alg)
	if f.genKey != nil && err == nil {
		return f.genKey(csr)
	}
	return csr, err
}

func (f *faulty) InstallChain(ctx context.Context, chain []*x509.Certificate) error {
	return f.d.InstallChain(ctx, chain)
}

// failingEnroller fails every call the way a network would.
type failingEnroller struct{ nonceErr, enrollErr error }

func (e failingEnroller) Nonce(ctx context.Context) ([]byte, error) {
	if e.nonceErr != nil {
		return nil, e.nonceErr
	}
	return make([]byte, 32), nil
}

func (e failingEnroller) Enroll(ctx context.Context, req *enroll.Request) ([]*x509.Certificate, error) {
	return nil, e.enrollErr
}

func TestProvisionFailuresNameTheirStage(t *testing.T) {
	t.Parallel()
	l := newLine(t)
	ctx := context.Background()
	cm := l.Partners[linesim.ContractManufacturer].Station
	ioErr := errors.New("jig: serial line timeout")
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	n := uint32(100)
	next := func() *linesim.Device {
		n++
		d, err := l.NewDevice(n, linesim.DeviceOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	for _, tc := range []struct {
		name    string
		dev     func() ztm.Device
		stage   ztm.Stage
		refused bool
	}{
		{"info unreachable", func() ztm.Device {
			return &faulty{d: next(), info: func(identity.DeviceInfo) (identity.DeviceInfo, error) { return identity.DeviceInfo{}, ioErr }}
		}, ztm.StageInfo, false},
		{"no UEID", func() ztm.Device {
			return &faulty{d: next(), info: func(i identity.DeviceInfo) (identity.DeviceInfo, error) { i.UEID = identity.UEID{}; return i, nil }}
		}, ztm.StageInfo, true},
		{"claims another device's info, request and all", func() ztm.Device {
			otherInfo, _ := next().Info(ctx)
			return &faulty{d: next(), info: func(identity.DeviceInfo) (identity.DeviceInfo, error) { return otherInfo, nil },
				genKey: func([]byte) ([]byte, error) { return identity.CreateCSR(rand.Reader, otherKey, otherInfo) }}
		}, ztm.StageAppraisal, true},
		{"claims another device's info", func() ztm.Device {
			other := next()
			return &faulty{d: next(), info: func(identity.DeviceInfo) (identity.DeviceInfo, error) { return other.Info(ctx) }}
		}, ztm.StageCSR, true},
		{"attest fails", func() ztm.Device {
			return &faulty{d: next(), attest: func([]byte) ([]byte, error) { return nil, ioErr }}
		}, ztm.StageEvidence, false},
		{"garbage evidence", func() ztm.Device {
			return &faulty{d: next(), attest: func([]byte) ([]byte, error) { return []byte{0xd2, 0x84}, nil }}
		}, ztm.StageAppraisal, true},
		{"CSR for another serial", func() ztm.Device {
			f := &faulty{d: next()}
			f.genKey = func([]byte) ([]byte, error) {
				info, _ := f.d.Info(ctx)
				info.SerialNumber = "ZTM-9999999"
				return identity.CreateCSR(rand.Reader, otherKey, info)
			}
			return f
		}, ztm.StageCSR, true},
		{"cannot make keys, cannot import", func() ztm.Device { return &faulty{d: next(), noKeyGen: true} }, ztm.StageKey, true},
	} {
		d := tc.dev()
		head, _ := l.Ledger.Head(ctx)
		_, err := cm.Provision(ctx, d)
		var pe *ztm.ProvisionError
		if !errors.As(err, &pe) || pe.Stage != tc.stage || pe.Refused != tc.refused || errors.Is(err, ztm.ErrRefused) != tc.refused {
			t.Errorf("%s: err = %v, want stage %v refused %v", tc.name, err, tc.stage, tc.refused)
			continue
		}
		if h, _ := l.Ledger.Head(ctx); h.Seq != head.Seq {
			t.Errorf("%s: a certificate was issued", tc.name)
		}
	}

	// The CA side unreachable: nothing issued, not a refusal.
	p := l.Partners[linesim.ContractManufacturer]
	for _, tc := range []struct {
		enr   failingEnroller
		stage ztm.Stage
	}{
		{failingEnroller{nonceErr: ioErr}, ztm.StageNonce},
		{failingEnroller{enrollErr: &est.RetryLaterError{Err: est.ErrRetryLater}}, ztm.StageEnroll},
	} {
		st, err := ztm.NewStation(ztm.StationConfig{Name: "cm", Key: p.Key, CertChain: p.Chain, Enroller: tc.enr, Verifier: l.StationVerifier, StepStore: l.Chains})
		if err != nil {
			t.Fatal(err)
		}
		d := next()
		if tc.stage == ztm.StageEnroll {
			// The station's nonce is not the CA's; give it one that the
			// device's evidence answers.
			st, _ = ztm.NewStation(ztm.StationConfig{Name: "cm", Key: p.Key, CertChain: p.Chain, Enroller: nonceThenFail{l.Service.Local(enroll.Requester{Certificate: p.Chain[0]}), tc.enr.enrollErr}, Verifier: l.StationVerifier, StepStore: l.Chains})
		}
		_, err = st.Provision(ctx, d)
		var pe *ztm.ProvisionError
		if !errors.As(err, &pe) || pe.Stage != tc.stage || pe.Refused {
			t.Errorf("enroller failing at %v: err = %v", tc.stage, err)
		}
		if d.Chain() != nil {
			t.Errorf("device holds a chain")
		}
	}
}

type nonceThenFail struct {
	g   *enroll.Local
	err error
}

func (e nonceThenFail) Nonce(ctx context.Context) ([]byte, error) { return e.g.Nonce(ctx) }
func (e nonceThenFail) Enroll(ctx context.Context, req *enroll.Request) ([]*x509.Certificate, error) {
	return nil, e.err
}

func TestProvisionInjectionNeedsAStore(t *testing.T) {
	t.Parallel()
	l := newLine(t)
	p := l.Partners[linesim.ContractManufacturer]
	st, err := ztm.NewStation(ztm.StationConfig{Name: "cm", Key: p.Key, CertChain: p.Chain, Enroller: l.Service.Local(enroll.Requester{Certificate: p.Chain[0]}), Verifier: l.StationVerifier, StepStore: l.Chains})
	if err != nil {
		t.Fatal(err)
	}
	d, _ := l.NewDevice(200, linesim.DeviceOptions{NoKeyGeneration: true})
	_, err = st.Provision(context.Background(), d)
	var pe *ztm.ProvisionError
	if !errors.As(err, &pe) || pe.Stage != ztm.StageKey || !errors.Is(err, ztm.ErrInvalidConfig) {
		t.Fatalf("err = %v", err)
	}
}

func TestStageString(t *testing.T) {
	t.Parallel()
	if ztm.StageEnroll.String() != "enroll" || ztm.Stage(0).String() != "Stage(0)" || ztm.Stage(99).String() != "Stage(99)" {
		t.Error(ztm.StageEnroll, ztm.Stage(0), ztm.Stage(99))
	}
}

func TestDecommissionNeedsARevoker(t *testing.T) {
	t.Parallel()
	l := newLine(t)
	p := l.Partners[linesim.OEM]
	st, err := ztm.NewStation(ztm.StationConfig{Name: "oem", Key: p.Key, CertChain: p.Chain, Enroller: l.Service.Local(enroll.Requester{}), Verifier: l.StationVerifier, StepStore: l.Chains})
	if err != nil {
		t.Fatal(err)
	}
	d, _ := l.NewDevice(300, linesim.DeviceOptions{})
	_, err = st.Decommission(context.Background(), d, 0)
	var pe *ztm.ProvisionError
	if !errors.As(err, &pe) || pe.Stage != ztm.StageRevoke || !errors.Is(err, ztm.ErrInvalidConfig) {
		t.Fatalf("err = %v", err)
	}
	if d.Key() != nil {
		t.Fatal("unexpected key")
	}
}
