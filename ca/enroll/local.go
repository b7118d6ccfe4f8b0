package enroll

import (
	"context"
	"crypto/x509"
	"fmt"
)

// Local is an [Enroller] in process: the same checks as an EST server
// over the same [Service], for one requester, without HTTP. It is safe
// for concurrent use.
type Local struct {
	svc *Service
	who Requester
}

var _ Enroller = (*Local)(nil)

// LocalConfig configures [NewLocal]: the Service's configuration and the
// requester every enrollment is made for.
type LocalConfig struct {
	Config
	// Requester is the station (its certificate) or named requester.
	Requester Requester
}

// NewLocal returns an in-process Enroller with its own Service. To share
// one Service (and its repeat and nonce state) between requesters, use
// New and Service.Local.
func NewLocal(cfg LocalConfig) (*Local, error) {
	s, err := New(cfg.Config)
	if err != nil {
		return nil, err
	}
	if cfg.Requester.Certificate == nil && cfg.Requester.Name == "" {
		return nil, fmt.Errorf("%w: no Requester", ErrInvalidConfig)
	}
	return s.Local(cfg.Requester), nil
}

// Local returns an Enroller that enrolls through s as who (typically
// Requester{Certificate: stationCert}).
func (s *Service) Local(who Requester) *Local { return &Local{svc: s, who: who} }

// Nonce implements Enroller: [Service.Nonce] for the Local's requester.
func (l *Local) Nonce(ctx context.Context) ([]byte, error) {
	if l == nil || l.svc == nil {
		return nil, fmt.Errorf("%w: Local not made by NewLocal or Service.Local", ErrInvalidConfig)
	}
	return l.svc.Nonce(ctx, l.who)
}

// Enroll implements Enroller: [Service.Enroll] for the Local's requester,
// whose station certificate is checked first as a TLS server would.
func (l *Local) Enroll(ctx context.Context, req *Request) ([]*x509.Certificate, error) {
	if l == nil || l.svc == nil {
		return nil, fmt.Errorf("%w: Local not made by NewLocal or Service.Local", ErrInvalidConfig)
	}
	if l.who.Certificate != nil {
		if err := l.svc.VerifyStation(ctx, l.who.Certificate); err != nil {
			return nil, err
		}
	}
	return l.svc.Enroll(ctx, l.who, req, Options{})
}
